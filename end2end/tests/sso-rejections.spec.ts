// SSO through a provider whose ID tokens were tampered with on the way (end2end/oidc/provider.mjs,
// the `mallory-*` accounts): each token fails exactly one check — issuer, audience, expiry,
// signature — and each must leave the browser signed out, create no account, and leave the
// failed check in the audit log. The tampering accounts are in the administrators' group, so a
// token that slipped through would sign in with every right. The control account goes through
// the same re-signing unchanged and must sign in, which shows the refusals come from the claim
// that was altered and not from the tampering itself.
import type { Page } from "@playwright/test";
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn, signInAtProvider, signOut } from "../fixtures/auth";

const REJECTIONS = [
  { login: "mallory-issuer", what: "another issuer", check: /the issuer .*\/elsewhere.* does not match the configured issuer/ },
  { login: "mallory-audience", what: "another audience", check: /not meant for this client/ },
  { login: "mallory-expired", what: "an expiry in the past", check: /the ID token has expired/ },
  { login: "mallory-signature", what: "a signature by an unpublished key", check: /signature does not verify/ },
] as const;

async function ssoAtProvider(page: Page, login: string) {
  await page.goto("/login");
  await page.getByRole("link", { name: "Sign in with Test SSO" }).click();
  await signInAtProvider(page, login);
}

for (const { login, what, check } of REJECTIONS) {
  test(`an ID token with ${what} is refused and signs nobody in`, async ({
    page,
    shell,
    javaScriptEnabled,
  }) => {
    await ssoAtProvider(page, login);

    await expect(page).toHaveURL(/\/login\?sso_error=/);
    await shell.ready();
    await expect(page.getByRole("alert")).toContainText("did not pass Orchard's checks");
    await expect(page.locator("[data-slot=user]")).toContainText("Not signed in");
    await shell.goto("/devices");
    await expect(page).toHaveURL(/\/login\?next=/);

    // The administrator sees which check failed, and that no account was created.
    await signIn(page, ADMIN.username, ADMIN.password, {
      javaScriptEnabled,
      next: "/settings/audit?action=auth.sign_in_failed",
    });
    await expect(shell.heading).toHaveText("Orchard audit log");
    await expect(page.locator("tbody tr").filter({ hasText: check }).first()).toBeVisible();
    await shell.goto("/settings/users");
    await expect(page.locator(`tr[data-username="${ADMIN.username}"]`)).toBeVisible();
    await expect(page.locator("tr[data-username]").filter({ hasText: login })).toHaveCount(0);
    await signOut(page);
  });
}

test("the control: a token re-signed unchanged by the same tampering proxy signs in", async ({
  page,
  shell,
}) => {
  await ssoAtProvider(page, "mallory-resigned");
  await expect(page).toHaveURL(/\/$/);
  await shell.ready();
  await expect(page.locator("[data-slot=user]")).toContainText("Mallory resigned");
  await expect(page.locator("[data-slot=organization]")).toContainText("Demo organization · admin");
});
