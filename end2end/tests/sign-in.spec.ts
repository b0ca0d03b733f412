// Signing in and out with a local account, in both projects (JavaScript off and hydrated).
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn, signInAtProvider, signOut } from "../fixtures/auth";

test("a signed-out visitor is sent to sign in and comes back to the page they asked for", async ({
  page,
  shell,
  expectAccessible,
}) => {
  await shell.goto("/fleet?from=link");
  await expect(page).toHaveURL(/\/login\?next=%2Ffleet%3Ffrom%3Dlink$|\/login\?next=\/fleet%3Ffrom%3Dlink$/);
  await expect(shell.heading).toHaveText("Sign in");
  await expect(page.locator("[data-slot=user]")).toContainText("Not signed in");
  await expect(shell.nav).toHaveCount(0);
  await expectAccessible();

  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();

  await expect(page).toHaveURL(/\/fleet\?from=link$/);
  await shell.ready();
  await expect(page.locator("[data-slot=user]")).toContainText(ADMIN.username);
  await expect(page.locator("[data-slot=organization]")).toContainText("Demo organization · admin");
});

test("a wrong password gets one plain message and keeps the visitor on the page", async ({
  page,
  shell,
  expectAccessible,
}) => {
  await shell.goto("/login");
  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password").fill("not the password at all");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();

  await expect(page.locator("#sign-in-password-error")).toHaveText(
    "The username or password is not correct.",
  );
  await expect(page).toHaveURL(/\/login/);
  await expectAccessible();

  await shell.ready();
  await page.getByLabel("Username").fill("nobody-by-this-name");
  await page.getByLabel("Password").fill("not the password at all");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.locator("#sign-in-password-error")).toHaveText(
    "The username or password is not correct.",
  );
});

test("signing out ends the session: the old cookie no longer opens pages", async ({
  page,
  shell,
  javaScriptEnabled,
  context,
}) => {
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  const before = (await context.cookies()).find((c) => c.name === "orchard_session");
  expect(before?.httpOnly).toBe(true);
  expect(before?.sameSite).toBe("Lax");

  await signOut(page);
  await shell.ready();
  await expect(shell.heading).toHaveText("Sign in");

  // Replaying the old cookie does not bring the session back.
  await context.addCookies([{ ...before!, value: before!.value }]);
  await shell.goto("/devices");
  await expect(page).toHaveURL(/\/login/);
});

test("SSO signs in through the identity provider and maps groups to roles", async ({
  page,
  shell,
}) => {
  await shell.goto("/login?next=/audit");
  await page.getByRole("link", { name: "Sign in with Test SSO" }).click();

  // The provider's development login form: the login name picks the account.
  await signInAtProvider(page, "hank");

  await expect(page).toHaveURL(/\/audit$/);
  await shell.ready();
  await expect(page.locator("[data-slot=user]")).toContainText("Hank Helpdesk");
  await expect(page.locator("[data-slot=organization]")).toContainText("Demo organization · helpdesk");
  // Helpdesk may not administer anything: no Settings in the navigation, and the page refuses.
  await expect(shell.navLink("Audit")).toBeVisible();
  await expect(shell.navLink("Settings")).toHaveCount(0);
  const settings = await page.goto("/settings");
  expect(settings?.status()).toBe(403);
  await expect(page.getByRole("alert")).toContainText("Your role does not allow this.");
  // The SSO settings page calls an instance-administration server function: refused too.
  const sso = await page.goto("/settings/sso");
  expect(sso?.status()).toBe(403);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Settings");
  await expect(page.getByRole("alert")).toContainText("Not allowed");
  await expect(page.getByRole("alert")).toContainText("Your role does not allow this.");
});

test("a replayed SSO callback is refused with a plain message", async ({ page, shell }) => {
  await shell.goto("/login");
  await page.getByRole("link", { name: "Sign in with Test SSO" }).click();
  let callback = "";
  page.on("request", (request) => {
    if (request.url().includes("/auth/oidc/callback")) callback = request.url();
  });
  await signInAtProvider(page, "victor");
  await expect(page).toHaveURL(/\/$/);
  expect(callback).toContain("code=");

  await page.goto(callback);
  await shell.ready();
  await expect(page).toHaveURL(/\/login\?sso_error=/);
  await expect(page.getByRole("alert")).toContainText("already used or has expired");
});
