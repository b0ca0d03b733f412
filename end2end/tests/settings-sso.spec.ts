// Single sign-on in Settings: the provider as configured, and group → role rules that an
// instance administrator adds and removes (both projects: JavaScript off and hydrated).
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn } from "../fixtures/auth";

test("an administrator sees the provider and manages group rules", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}, testInfo) => {
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await shell.goto("/settings");
  await page.getByRole("navigation", { name: "Settings" }).getByRole("link", { name: "Single sign-on" }).click();
  await shell.ready();

  await expect(page).toHaveURL(/\/settings\/sso$/);
  await expect(page.getByText(`${process.env.ORCHARD_E2E_OIDC_PORT}`, { exact: false }).first()).toBeVisible();
  const configured = page.getByRole("table", { name: "From the configuration file" });
  await expect(configured.getByRole("row", { name: /orchard-admins.*Demo organization.*admin/ })).toBeVisible();
  await expectAccessible();

  const group = `e2e-${testInfo.project.name}`;
  await page.getByLabel("Group (exactly as in the groups claim)").fill(group);
  await page.getByLabel("Organization", { exact: true }).selectOption({ label: "Demo organization" });
  await page.getByLabel("Role", { exact: true }).selectOption("helpdesk");
  await page.getByRole("button", { name: "Add rule" }).click();

  const added = page.getByRole("table", { name: "Added here" });
  await expect(added.getByRole("row", { name: new RegExp(`${group}.*Demo organization.*helpdesk`) })).toBeVisible();

  // The same rule twice is refused next to the field.
  await shell.ready();
  await page.getByLabel("Group (exactly as in the groups claim)").fill(group);
  await page.getByLabel("Organization", { exact: true }).selectOption({ label: "Demo organization" });
  await page.getByRole("button", { name: "Add rule" }).click();
  await expect(page.locator("#sso-group-error")).toContainText("already has a role");

  await shell.ready();
  await page.getByRole("button", { name: `Remove the rule for ${group} in Demo organization` }).click();
  await expect(page.getByRole("button", { name: `Remove the rule for ${group} in Demo organization` })).toHaveCount(0);
});
