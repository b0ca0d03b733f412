// Settings → the organization → "Device sync", in both projects (JavaScript off and
// hydrated): an administrator sees the demo account's last sync and what it copied besides
// the devices (users, groups, Blueprints, ...), presses "Sync now", and sees a newer run
// finish. Both projects share one server, so either may start the run the other waits for;
// a second "Sync now" while one runs is refused with a message, which is fine here.
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn } from "../fixtures/auth";

test.describe.configure({ timeout: 120_000 });

test("an administrator reads the sync's health and what it copied, and syncs now", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}) => {
  const js = javaScriptEnabled !== false;
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await shell.navLink("Settings").click();
  await shell.ready();
  await shell.main.getByRole("link", { name: "Demo organization" }).click();
  await shell.ready();
  const settings = page.url();
  await expect(page.getByRole("heading", { name: "Device sync" })).toBeVisible();
  const item = page.locator("li.sync-item").first();
  const state = item.getByTestId("sync-state");

  // The demo's first sync starts with the server; wait until one has finished.
  await expect(async () => {
    await shell.goto(settings);
    await expect(state).toHaveText(/^Last synced/, { timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  const before = Number(await item.getAttribute("data-run"));
  expect(before).toBeGreaterThan(0);
  const copied = item.getByTestId("sync-directory");
  await expect(copied).toContainText(/^Also copied: [\d,]+ users · [\d,]+ user groups/);
  await expect(copied).toContainText("Blueprints");
  await expectAccessible();

  await item.getByRole("button", { name: "Sync now" }).click();
  if (!js) await shell.ready();
  // A newer run than the one shown before ends (hydrated, the section follows it by itself;
  // without JavaScript, reload as a person would).
  await expect(async () => {
    if (!js) await shell.goto(settings);
    const run = Number(await item.getAttribute("data-run", { timeout: 1_000 }));
    expect(run).toBeGreaterThan(before);
    await expect(state).toHaveText("Last synced just now", { timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  await expect(copied).toContainText(/[\d,]+ users/);
});
