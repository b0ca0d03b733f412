// User administration end to end, in both projects (JavaScript off and hydrated): an
// administrator creates a helpdesk user, that user signs in with their role and is
// refused the administration pages, and the administrator finds it all in the audit log.
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn, signOut } from "../fixtures/auth";
import { UsersPage } from "../fixtures/users";

// Long walks, each step a full page load without JavaScript in the ssr project: 25 s on a
// busy 2-core machine, so they get twice the default time.
test.describe.configure({ timeout: 60_000 });

test("an administrator creates a helpdesk user who signs in but cannot administer users", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}, testInfo) => {
  const username = `helen-${testInfo.project.name}`;
  const password = "helpdesk e2e passphrase";
  const users = new UsersPage(page, shell);

  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await users.open();
  await expect(users.row(ADMIN.username)).toContainText("Instance admin");
  await expectAccessible();

  // A typo in the confirmation is caught and described next to the field.
  await users.create({ username, displayName: "Helen Desk", password, confirm: "something else" });
  const confirm = users.createForm.getByLabel("Repeat the password");
  await expect(page.locator("#new-user-password_confirm-error")).toHaveText("The two passwords differ.");
  if (javaScriptEnabled) {
    await expect(confirm).toHaveAttribute("aria-describedby", "new-user-password_confirm-error");
  }
  await expectAccessible();
  await shell.ready();

  await users.create({ username, displayName: "Helen Desk", password, role: "helpdesk" });
  await expect(users.row(username)).toContainText("Demo organization: Helpdesk");
  await expect(users.row(username)).toContainText("Never");
  await expect(users.row(username)).toContainText("TOTP off");
  await shell.ready();

  await signOut(page);
  await signIn(page, username, password, { javaScriptEnabled });
  await expect(page.locator("[data-slot=user]")).toContainText("Helen Desk");
  await expect(page.locator("[data-slot=organization]")).toContainText("Demo organization · helpdesk");
  const refused = await page.goto("/settings/users");
  expect(refused?.status()).toBe(403);
  await shell.ready();
  await expect(shell.heading).toHaveText("Users");
  await expect(shell.main.getByRole("alert")).toHaveText(/^Not allowed\s*Your role does not allow this\.$/);
  const audit = await page.goto("/settings/audit");
  expect(audit?.status()).toBe(403);
  await shell.ready();
  await expect(shell.main.getByRole("alert")).toContainText("Your role does not allow this.");

  await signOut(page);
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled, next: "/settings/audit" });
  await expect(shell.heading).toHaveText("Orchard audit log");
  await expect(page.getByTestId("chain-status")).toHaveText(/The hash chain verifies/);
  await expectAccessible();

  // Only what was done to or by the new user: filter by the action, then by the actor.
  await page.getByLabel("Action").selectOption("user.create");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=user.create/);
  await shell.ready();
  const created = page.getByRole("row").filter({ hasText: `user ${username}` });
  await expect(created).toHaveCount(1);
  await expect(created).toContainText(ADMIN.username);
  await expect(created).toContainText("127.0.0.1");

  await shell.goto(`/settings/audit?actor=${username}`);
  await expect(page.getByLabel("Actor")).toHaveValue(username);
  const signInRow = page.getByRole("row").filter({ hasText: "auth.sign_in" });
  await expect(signInRow.first()).toContainText(username);
  await shell.goto("/settings/audit?action=user.set_role");
  await expect(page.getByRole("row").filter({ hasText: `user ${username}` })).toContainText("helpdesk");
});

test("an administrator disables a user, enables them again and resets their password", async ({
  page,
  shell,
  javaScriptEnabled,
  browser,
}, testInfo) => {
  // Long enough to pass the browser's minlength check when used as a password below.
  const username = `dora-disabled-${testInfo.project.name}`;
  const password = "disabled e2e passphrase";
  const users = new UsersPage(page, shell);
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await users.open();
  await users.create({ username, displayName: "Dora Disabled", password, role: "viewer" });
  await expect(users.row(username)).toContainText("Viewer");

  // Dora is signed in in her own browser when the administrator disables her.
  const doraContext = await browser.newContext({ javaScriptEnabled });
  const dora = await doraContext.newPage();
  await signIn(dora, username, password, { javaScriptEnabled });
  await shell.ready();
  await users.row(username).getByRole("button", { name: `Disable ${username}` }).click();
  // Not the row's text: "Disabled" is in her display name from the start.
  await expect(users.row(username).getByRole("button", { name: `Enable ${username}` })).toBeVisible();
  await expect(users.row(ADMIN.username).getByRole("button", { name: /Disable/ })).toHaveCount(0);

  await dora.goto("/account");
  await expect(dora).toHaveURL(/\/login/);
  await dora.getByLabel("Username").fill(username);
  await dora.getByLabel("Password").fill(password);
  await dora.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(dora.locator("#sign-in-password-error")).toBeVisible();
  await doraContext.close();

  await shell.ready();
  await users.row(username).getByRole("button", { name: `Enable ${username}` }).click();
  await expect(users.row(username).getByRole("button", { name: `Disable ${username}` })).toBeVisible();
  await shell.ready();

  // A refused password reset is reported once: in its row when hydrated, above the table
  // without JavaScript (the redirect cannot say which row posted).
  const message = "The password must not be the username.";
  await users.resetPassword(username, username);
  await expect(page.getByText(message)).toHaveCount(1);
  if (javaScriptEnabled) await expect(users.row(username)).toContainText(message);
  await shell.ready();
  await users.resetPassword(username, "a reset e2e passphrase");
  await expect(page.getByText(message)).toHaveCount(0);
  if (javaScriptEnabled) await expect(users.row(username)).toContainText("Password changed.");
  await shell.ready();
  await signOut(page);
  await signIn(page, username, "a reset e2e passphrase", { javaScriptEnabled });
  await expect(page.locator("[data-slot=user]")).toContainText("Dora Disabled");
});
