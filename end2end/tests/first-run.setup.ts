// The first start of a new instance: no user exists, every page leads to setup, and the
// one-time link from the console creates the first administrator, who lands signed in.
import { test, expect } from "../fixtures/orchard";
import { ADMIN, setupLink } from "../fixtures/auth";

test("first-run setup creates the administrator from the one-time link", async ({ page, shell }) => {
  await shell.goto("/devices");
  await expect(page).toHaveURL(/\/setup$/);
  await expect(shell.heading).toHaveText("Set up Orchard");
  await expect(shell.main.getByRole("status")).toContainText("one-time setup link");

  const link = new URL(setupLink());
  await shell.goto(link.pathname + link.search);
  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password (at least 12 characters)").fill("too short");
  await page.getByLabel("Password again").fill("too short");
  await page.getByRole("button", { name: "Create administrator" }).click();
  await expect(page.locator("#setup-password-error")).toContainText("12");

  await page.getByLabel("Password (at least 12 characters)").fill(ADMIN.password);
  await page.getByLabel("Password again").fill(ADMIN.password);
  await page.getByRole("button", { name: "Create administrator" }).click();

  await expect(page).toHaveURL(/\/welcome$/);
  await expect(shell.heading).toHaveText("Orchard is ready");
  await expect(page.locator("[data-slot=user]")).toContainText(ADMIN.username);
  await expect(page.getByRole("link", { name: "Open Demo organization" })).toBeVisible();

  // The link is single-use.
  await shell.goto(link.pathname + link.search);
  await page.getByLabel("Username").fill("second-admin");
  await page.getByLabel("Password (at least 12 characters)").fill(ADMIN.password);
  await page.getByLabel("Password again").fill(ADMIN.password);
  await page.getByRole("button", { name: "Create administrator" }).click();
  await expect(page.getByRole("alert")).toContainText("already complete");
});
