// A job Apple partly refuses, in both projects (JavaScript off and hydrated): a device leaves
// the organization at Apple after Orchard's last sync, so the mirror still lists it and the
// wizard sends it. Apple's activity log reports it failed with Apple's reason while the other
// device succeeds; the operator retries the failure from the job's page (a new job, linked
// to the first), and the Jobs page lists both with who started them and how they ended; the
// device's own page lists the jobs that included it.
import type { Locator, Page } from "@playwright/test";
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn, signOut } from "../fixtures/auth";
import { demoDevices, signInAfterSync, untilJobStatus } from "../fixtures/demo";

test.describe.configure({ timeout: 150_000 });

/** The demo account's API base URL: the built-in simulator, as Settings shows it. */
async function demoAppleUrl(page: Page, shell: import("../fixtures/shell").Shell, javaScriptEnabled: boolean) {
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await shell.navLink("Settings").click();
  await shell.ready();
  await shell.main.getByRole("link", { name: "Demo organization" }).click();
  await shell.ready();
  const card = page.getByRole("article", { name: "Demo (simulator)", exact: true });
  const url = (await card
    .locator("div", { has: page.getByText("API base URL", { exact: true }) })
    .locator("dd")
    .textContent())!.trim();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await signOut(page);
  return url;
}

/** The result row of `serial` on a job page. */
function result(page: Page, serial: string): Locator {
  return page.locator("tbody tr[data-outcome]", { hasText: serial });
}

test("a device Apple no longer has fails with Apple's reason, is retried, and both jobs are listed", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}) => {
  const js = javaScriptEnabled !== false;
  const apple = await demoAppleUrl(page, shell, js);

  await signInAfterSync(page, shell, "olivia");
  await shell.navLink("Assign devices").click();
  await shell.ready();
  const org = (await page.locator("#devices-form input[name=org]").getAttribute("value"))!;
  // Two unassigned devices of this project's own (the assign spec takes the first 200).
  const devices = await demoDevices(page, org);
  const unassigned = devices.slice(js ? 350 : 250, js ? 450 : 350).filter((d) => d.service === "" && d.status !== "ASSIGNED");
  const [gone, kept] = unassigned;
  expect(kept, "the demo organization has unassigned devices").toBeTruthy();
  const target = devices.find((d) => d.service !== "")!.service;
  await page.getByLabel("Serial numbers or a CSV file", { exact: true }).fill(`${gone.serial}\n${kept.serial}`);
  await page.getByRole("button", { name: "Continue", exact: true }).click();
  await shell.ready();
  await page.getByLabel("Device management service", { exact: true }).selectOption(target);
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  await shell.ready();
  await expect(page.getByTestId("count-assign")).toHaveText("2");
  await page.getByRole("link", { name: "Continue to confirm" }).click();
  await shell.ready();
  await expect(page.getByTestId("confirm-summary")).toContainText("2 devices will change");
  // Below the threshold: no number to type.
  await expect(page.getByLabel(/^Type \d+ to confirm$/)).toHaveCount(0);
  // The organization lets `gone` go at Apple just now; Orchard's mirror does not know yet
  // (done this late because the sync spec's "Sync now", in parallel, would tell it).
  const released = await page.request.post(`${apple}/_sim/mutate`, {
    data: { op: "releaseDevices", serials: [gone.serial] },
  });
  expect(released.status()).toBe(200);
  await page.getByRole("button", { name: "Start the job" }).click();

  await expect(page).toHaveURL(/\/jobs\/\d+\?org=/);
  await shell.ready();
  const first = page.url().match(/\/jobs\/(\d+)/)![1];
  await untilJobStatus(page, js, "completed_with_failures", 60_000);
  await expect(page.getByTestId("count-succeeded")).toHaveText("1");
  await expect(page.getByTestId("count-failed")).toHaveText("1");
  await expect(result(page, gone.serial)).toContainText("Failed");
  await expect(result(page, gone.serial)).toContainText("Device not found in organization");
  await expect(result(page, kept.serial)).toContainText("Succeeded");
  await expectAccessible();

  // Retry the failure: a new job with that device only, linked both ways.
  await page.getByRole("button", { name: "Retry the 1 failed" }).click();
  await expect(page).not.toHaveURL(new RegExp(`/jobs/${first}\\?`));
  await expect(page).toHaveURL(/\/jobs\/\d+\?org=/);
  await shell.ready();
  const retry = page.url().match(/\/jobs\/(\d+)/)![1];
  await expect(shell.main.getByRole("link", { name: `job #${first}` })).toBeVisible();
  // Apple still does not have the device: the retry fails the same way.
  await untilJobStatus(page, js, "failed", 60_000);
  await expect(result(page, gone.serial)).toContainText("Device not found in organization");
  await expect(result(page, kept.serial)).toHaveCount(0);
  await shell.main.getByRole("link", { name: `job #${first}` }).click();
  await shell.ready();
  await expect(shell.main.getByRole("link", { name: `job #${retry}` })).toBeVisible();

  // The Jobs page: both, newest first, with who started them and how they ended.
  await shell.navLink("Jobs").click();
  await shell.ready();
  await expect(shell.heading).toHaveText("Jobs");
  const row = (id: string) => page.locator(`tbody tr[data-job="${id}"]`);
  await expect(row(first)).toContainText("Olivia Operator");
  await expect(row(first)).toContainText("Completed with failures");
  await expect(row(retry)).toContainText("Failed");
  await expectAccessible();
  await row(retry).getByRole("link", { name: `#${retry}` }).click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${retry}\\?org=`));

  // Each device's page tells its story in Orchard, newest first.
  await shell.goto(`/devices/${gone.serial}?org=${org}`);
  const history = page.getByTestId("device-jobs");
  await expect(history.locator("tbody tr")).toHaveCount(2);
  await expect(history.locator("tbody tr").first()).toHaveAttribute("data-job", retry);
  await expect(history.locator(`tr[data-job="${first}"]`)).toContainText(
    "Failed: Device not found in organization",
  );
  await expectAccessible();
  await shell.goto(`/devices/${kept.serial}?org=${org}`);
  await expect(page.getByTestId("device-jobs").locator(`tr[data-job="${first}"]`)).toContainText("Succeeded");

  // "Refresh from Apple" reads the record and Apple's audit events now, before any sync:
  // Apple's record of the assigned device names the job's assignment...
  const events = page.getByTestId("apple-events");
  await refreshFromApple(page, shell, js, kept.serial);
  await expect(events).toContainText("Assigned to");
  await expect(page.getByTestId("assignment")).toContainText("Assigned to");
  // ...and the device Apple let go shows as released, with Apple's event.
  await shell.goto(`/devices/${gone.serial}?org=${org}`);
  await refreshFromApple(page, shell, js, gone.serial);
  await expect(page.getByText(/Apple no longer returns this device/)).toBeVisible();
  await expect(events).toContainText("Released from the organization");
  await expectAccessible();
});

/**
 * Presses "Refresh from Apple" on a device's page. Without JavaScript the form post brings
 * the page back; hydrated, the page reloads the record in place (callers wait for it).
 */
async function refreshFromApple(page: Page, shell: import("../fixtures/shell").Shell, js: boolean, serial: string) {
  await page.getByRole("button", { name: "Refresh from Apple" }).click();
  if (!js) {
    await expect(page).toHaveURL(new RegExp(`/devices/${serial}\\?org=`));
    await shell.ready();
  }
}
