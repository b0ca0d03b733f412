// The account page in both projects (JavaScript off and hydrated): a person turns on
// two-step sign-in with the key the page shows, saves the recovery codes shown once, and
// from then on signing in asks for a code.
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn, signOut } from "../fixtures/auth";
import { UsersPage, totpCode } from "../fixtures/users";

test("a user enrols TOTP and must then give a code to sign in", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}, testInfo) => {
  const username = `toni-${testInfo.project.name}`;
  const password = "two step e2e passphrase";
  const users = new UsersPage(page, shell);
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await users.open();
  await users.create({ username, displayName: "Toni Totp", password, role: "operator" });
  await expect(users.row(username)).toContainText("Operator");
  await shell.ready();
  await signOut(page);

  await signIn(page, username, password, { javaScriptEnabled, next: "/account" });
  await expect(shell.heading).toHaveText("Your account");
  await expect(page.getByTestId("totp-state")).toContainText("Off.");
  await page.getByRole("button", { name: "Set up two-step sign-in" }).click();
  const secret = (await page.getByTestId("totp-secret").textContent())!.trim();
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  await expect(page.getByRole("link", { name: /^otpauth:\/\/totp\/Orchard:/ })).toBeVisible();
  await expectAccessible();
  await shell.ready();

  await page.getByLabel("Then type the 6-digit code it shows").fill("000000");
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await expect(page.locator("#totp-code-error")).toContainText("not correct");
  await shell.ready();
  await page.getByLabel("Then type the 6-digit code it shows").fill(totpCode(secret));
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();

  const codes = page.getByTestId("recovery-codes").getByRole("listitem");
  await expect(codes).toHaveCount(10);
  await expect(page.getByTestId("totp-state")).toContainText("On.");
  await expect(page.getByTestId("recovery-left")).toHaveText("10 unused recovery codes left.");
  await expectAccessible();
  await shell.goto("/account");
  await expect(page.getByTestId("recovery-codes")).toHaveCount(0);

  await signOut(page);
  await shell.ready();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByLabel("One-time code")).toBeVisible();
  await shell.ready();
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("One-time code").fill(totpCode(secret, 1));
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page).not.toHaveURL(/\/login/);
  await shell.ready();
  await expect(page.locator("[data-slot=user]")).toContainText("Toni Totp");
});

test("a user changes their password after proving the current one", async ({
  page,
  shell,
  javaScriptEnabled,
}, testInfo) => {
  const username = `pat-${testInfo.project.name}`;
  const password = "first e2e passphrase";
  const changed = "second e2e passphrase";
  const users = new UsersPage(page, shell);
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await users.open();
  await users.create({ username, displayName: "Pat Password", password, role: "viewer" });
  await expect(users.row(username)).toContainText("Viewer");
  await shell.ready();
  await signOut(page);

  await signIn(page, username, password, { javaScriptEnabled, next: "/account" });
  const form = page.getByRole("region", { name: "Password" });
  await form.getByLabel("Current password").fill("not my password at all");
  await form.getByLabel("New password", { exact: true }).fill(changed);
  await form.getByLabel("Repeat the new password").fill(changed);
  await form.getByRole("button", { name: "Change password" }).click();
  await expect(page.locator("#password-current_password-error")).toHaveText(
    "This is not your current password.",
  );
  await shell.ready();

  await form.getByLabel("Current password").fill(password);
  await form.getByLabel("New password", { exact: true }).fill(changed);
  await form.getByLabel("Repeat the new password").fill(changed);
  await form.getByRole("button", { name: "Change password" }).click();
  if (javaScriptEnabled) await expect(form.getByText("Your password was changed.")).toBeVisible();
  await expect(page.locator("#password-current_password-error")).toBeHidden();
  await shell.ready();

  await signOut(page);
  await signIn(page, username, changed, { javaScriptEnabled });
  await expect(page.locator("[data-slot=user]")).toContainText("Pat Password");
});
