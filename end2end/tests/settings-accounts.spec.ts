// Settings → Organizations → Apple API accounts, as an administrator, in both projects
// (JavaScript off: every form is a plain POST that returns to the page; hydrated: the
// same forms without reloads).
import { generateKeyPairSync, randomUUID } from "node:crypto";
import type { Locator, Page } from "@playwright/test";
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn } from "../fixtures/auth";

/** A fresh P-256 private key as PKCS#8 PEM, the format Apple Business hands out. */
function newPrivateKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

/** The account card of `name` on an organization page. */
function account(page: Page, name: string): Locator {
  return page.getByRole("article", { name, exact: true });
}

/** The value shown next to `term` in a card's facts or health line. */
function fact(card: Locator, term: string): Locator {
  return card.locator("div", { has: card.page().getByText(term, { exact: true }) }).locator("dd");
}

// A long walk (test, add, rotate, revoke, delete), each step a full page load without
// JavaScript: about 30 s on a busy 2-core machine, so it gets twice the default time.
test.describe.configure({ timeout: 60_000 });

test("an administrator tests the demo account, then adds, revokes and deletes an account", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}, testInfo) => {
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });

  await shell.navLink("Settings").click();
  await shell.ready();
  await expect(shell.heading).toHaveText("Settings");
  const sub = page.getByRole("navigation", { name: "Settings" });
  await expect(sub.getByRole("link", { name: "Organizations" })).toHaveAttribute("aria-current", "page");
  await expect(sub.getByRole("link", { name: "Users" })).toHaveAttribute("href", "/settings/users");
  await expect(sub.getByRole("link", { name: "Audit log" })).toHaveAttribute("href", "/settings/audit");
  await expectAccessible();

  await shell.main.getByRole("link", { name: "Demo organization" }).click();
  await shell.ready();
  await expect(shell.heading).toHaveText("Demo organization");
  await expect(page).toHaveTitle("Demo organization · Settings · Orchard");

  // The demo account is served by the built-in simulator: its test succeeds.
  const demo = account(page, "Demo (simulator)");
  await demo.getByRole("button", { name: "Test connection" }).click();
  if (javaScriptEnabled) {
    await expect(demo.getByRole("status")).toHaveText(
      "Connection OK: Apple issued a token and answered a test read.",
    );
  }
  await expect(demo.locator(".badge")).toHaveText("Working");
  await expect(fact(demo, "Last error")).toHaveText("None");
  await expect(fact(demo, "Last success")).toContainText("UTC");
  const apiBaseUrl = (await fact(demo, "API base URL").textContent())!.trim();
  const tokenUrl = (await fact(demo, "Token URL").textContent())!.trim();
  expect(apiBaseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await expectAccessible();

  // A client id of the wrong shape is refused next to its field; nothing is added.
  const name = `E2E ${testInfo.project.name} ${randomUUID().slice(0, 8)}`;
  const pem = newPrivateKeyPem();
  const form = page.getByRole("region", { name: "Add an API account" });
  const fill = async (clientId: string) => {
    await form.getByLabel("Name", { exact: true }).fill(name);
    await form.getByLabel("Client ID", { exact: true }).fill(clientId);
    await form.getByLabel("Key ID", { exact: true }).fill(randomUUID());
    await form.getByLabel("Private key (.pem)").fill(pem);
    if (!(await form.getByLabel("API base URL").isVisible())) {
      await form.getByText("Endpoints (optional)").click();
    }
    await form.getByLabel("API base URL").fill(apiBaseUrl);
    await form.getByLabel("Token URL").fill(tokenUrl);
  };
  await fill("BUSINESSAPI.not-a-uuid");
  await form.getByRole("button", { name: "Add account" }).click();
  await shell.ready();

  const clientId = form.getByLabel("Client ID", { exact: true });
  await expect(form.locator("#account-client-id-error")).toHaveText(
    "The client id must be BUSINESSAPI.<uuid>, as shown in Apple Business.",
  );
  await expect(clientId).toHaveAttribute("aria-invalid", "true");
  await expect(clientId).toHaveAttribute("aria-describedby", /account-client-id-error/);
  await expect(account(page, name)).toHaveCount(0);
  await expectAccessible();

  // Corrected, it is added with its identity and an untested health line.
  await fill(`BUSINESSAPI.${randomUUID()}`);
  await form.getByRole("button", { name: "Add account" }).click();
  await shell.ready();
  const added = account(page, name);
  await expect(added.locator(".badge")).toHaveText("Not tested yet");
  await expect(fact(added, "API base URL")).toHaveText(apiBaseUrl);
  await expect(fact(added, "Last token")).toHaveText("Never");
  await expect(form.locator("#account-client-id-error")).toHaveCount(0);
  await expect(page.locator("body")).not.toContainText(pem.split("\n")[1]);

  // A malformed key id on rotation is refused; a good one replaces the key. With
  // JavaScript the message sits in the row, without it above the list.
  await added.getByText("Rotate key…").click();
  await added.getByLabel("New key ID").fill("ABC123");
  await added.getByLabel("Private key (.pem)").fill(newPrivateKeyPem());
  await added.getByRole("button", { name: "Rotate key", exact: true }).click();
  await shell.ready();
  await expect(page.getByText(/The key id must be a UUID/)).toBeVisible();
  await expectAccessible();
  const newKeyId = randomUUID();
  if (!(await added.getByLabel("New key ID").isVisible())) await added.getByText("Rotate key…").click();
  await added.getByLabel("New key ID").fill(newKeyId);
  await added.getByLabel("Private key (.pem)").fill(newPrivateKeyPem());
  await added.getByRole("button", { name: "Rotate key", exact: true }).click();
  await shell.ready();
  await expect(fact(added, "Key ID")).toHaveText(newKeyId);
  await expect(fact(added, "Key rotated")).toContainText("UTC");

  // The simulator does not know this key: the test fails and says so.
  await added.getByRole("button", { name: "Test connection" }).click();
  await shell.ready();
  await expect(added.locator(".badge")).toHaveText("Failing");
  await expect(fact(added, "Last error")).not.toHaveText("None");

  await added.getByRole("button", { name: "Revoke" }).click();
  await shell.ready();
  await expect(added.locator(".badge")).toHaveText("Revoked");
  await expect(added.getByRole("button", { name: "Test connection" })).toBeDisabled();

  // Deleting takes a second, explicit step.
  await added.getByText("Delete…").click();
  await added.getByRole("button", { name: `Delete ${name} permanently` }).click();
  await shell.ready();
  await expect(account(page, name)).toHaveCount(0);
  await expect(demo).toBeVisible();
});
