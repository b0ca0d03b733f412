// The helpdesk's question, "where is serial X?", in both projects (JavaScript off and
// hydrated): a helpdesk user signs in, types part of a serial, sees the device appear,
// exports exactly the filtered list as CSV, and opens the device's record, whose AppleCare
// coverage and Activation Lock are fetched from Apple on demand (after which the list's
// AppleCare filter knows the device); and anyone narrows the list
// by purchase source, days added and model. The data is the demo organization, synced from
// the built-in simulator when the server starts.
import { readFileSync } from "node:fs";
import { test, expect } from "../fixtures/orchard";
import { signInAtProvider } from "../fixtures/auth";
import { exportRows, signInAfterSync } from "../fixtures/demo";

test("helpdesk finds a device while typing, exports the filtered list and opens the device", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}) => {
  await signInAfterSync(page, shell, "hank");
  await expect(shell.heading).toHaveText("Devices");
  // 500 in the demo; 499 once the jobs spec's device released at Apple has reached the
  // mirror (its "Refresh from Apple", or a sync), which may happen first.
  await expect(page.getByTestId("freshness")).toContainText(/\b(500|499) devices\b/);
  await expectAccessible();

  const box = page.getByRole("searchbox", { name: /Serial number, model/ });
  await expect(box).toBeFocused();
  // Each project its own device, so neither finds the other's AppleCare answer cached.
  const serial = (await page.locator("tbody tr").nth(javaScriptEnabled ? 1 : 0).getAttribute("data-serial"))!;
  expect(serial).toMatch(/^[A-Z0-9]{8,14}$/);
  const part = serial.slice(3, 8);

  if (javaScriptEnabled) {
    // "/" brings the focus back to the search box from anywhere on the page.
    await shell.heading.click();
    await expect(box).not.toBeFocused();
    await page.keyboard.press("/");
    await expect(box).toBeFocused();
    // Results follow the typing, with no button pressed. A pause after two characters: the
    // URL and the list follow them, and the search box stays as it is, focused, so the
    // keyboard's next characters land in it (the page was opened without `org`, which the
    // first update adds).
    const start = part.slice(0, 2);
    await box.pressSequentially(start);
    await expect(page).toHaveURL(new RegExp(`[?&]q=${start}(&|$)`));
    await expect(page.getByTestId("result-count")).not.toHaveText(/^(500|499) devices/);
    await expect(box).toBeFocused();
    await expect(box).toHaveValue(start);
    await page.keyboard.type(part.slice(2), { delay: 40 });
    await expect(page).toHaveURL(new RegExp(`[?&]q=${part}(&|$)`));
  } else {
    await box.fill(part);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`[?&]q=${part}(&|$)`));
  }
  const row = page.locator(`tbody tr[data-serial="${serial}"]`);
  await expect(row).toBeVisible();
  const count = page.getByTestId("result-count");
  await expect(count).toHaveText(/^(1 device matches|\d+ devices match)/);
  const matches = Number((await count.textContent())!.match(/^(\d+)/)![1]);
  expect(matches).toBeLessThan(500);
  await expect(page.locator("tbody tr")).toHaveCount(Math.min(matches, 50));

  // The export holds exactly the filtered devices.
  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export CSV" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe("demo-organization-devices.csv");
  const csv = readFileSync((await download.path())!, "utf8").trimEnd().split("\r\n");
  expect(csv[0]).toBe(
    "serial_number,model,product_family,product_type,capacity,color,status,service_id,service_name,part_number,order_number,purchase_source_type,purchase_source_id,added_to_org,imei,meid,eid,released_since,applecare",
  );
  expect(csv).toHaveLength(matches + 1);
  expect(csv.some((line) => line.startsWith(`${serial},`))).toBe(true);

  // The device's record.
  await row.getByRole("link", { name: serial, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/devices/${serial}\\?org=`));
  await shell.ready();
  await expect(shell.heading).toHaveText(serial);
  await expect(page.getByTestId("assignment")).toContainText(/Assigned to|Not assigned/);
  await expect(page.getByText("Added to the organization", { exact: true })).toBeVisible();
  // Blueprint membership and Apple's audit events come from the mirror's directory sync.
  await expect(page.getByTestId("blueprints")).toHaveText(/^(In no Blueprint|Blueprints?: .+)$/);
  await expect(page.getByRole("heading", { name: "Apple's record of this device" })).toBeVisible();

  // AppleCare and Activation Lock come from Apple on demand: the page shows what Orchard has
  // cached (nothing yet), then the browser asks Apple; without JavaScript, the person does.
  const coverageStatus = page.getByTestId("coverage-status");
  if (!javaScriptEnabled) {
    await expect(coverageStatus).toHaveText("Not fetched from Apple yet.");
    await page.getByRole("button", { name: "Refresh from Apple" }).click();
    await expect(page).toHaveURL(new RegExp(`/devices/${serial}\\?org=`));
    await shell.ready();
  }
  await expect(coverageStatus).toHaveText("From Apple just now.");
  await expect(page.getByTestId("coverage")).toContainText("Limited Warranty");
  await expect(page.getByTestId("activation-lock")).toHaveText(/^(On|Off)/);
  await expectAccessible();
  // Covered when any item is active (and not canceled, which reads "Canceled").
  const covered = (await page.getByTestId("coverage").getByRole("cell", { name: "Active", exact: true }).count()) > 0;

  // Back to the list, which now knows the device's AppleCare state: the device is under
  // that filter, and no longer among those not checked yet.
  await page.locator(".breadcrumb").getByRole("link", { name: "Devices" }).click();
  await expect(page).toHaveURL(/\/devices\?org=/);
  await shell.ready();
  const form = page.getByRole("search");
  await form.getByRole("searchbox", { name: /Serial number, model/ }).fill(serial);
  const applecare = form.getByLabel("AppleCare", { exact: true });
  const filterBy = async (label: string, value: string) => {
    await applecare.selectOption({ label });
    if (!javaScriptEnabled) await form.getByRole("button", { name: "Search", exact: true }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("applecare")).toBe(value);
    await expect(applecare).toHaveValue(value);
  };
  await filterBy(covered ? "Covered" : "Not covered", covered ? "covered" : "not_covered");
  await expect(row).toBeVisible();
  await expect(count).toHaveText("1 device matches.");
  await filterBy(covered ? "Not covered" : "Covered", covered ? "not_covered" : "covered");
  await expect(count).toHaveText("No devices match.");
  await filterBy("Not checked yet", "unchecked");
  await expect(count).toHaveText("No devices match.");
  await expect(row).toHaveCount(0);
});

test("a bad filter in the URL is explained, not a crash", async ({ page, shell }) => {
  await shell.goto("/login?next=/devices%3Fsort%3Dsideways");
  await page.getByRole("link", { name: "Sign in with Test SSO" }).click();
  await signInAtProvider(page, "hank");
  await shell.ready();
  await expect(page.getByRole("alert")).toContainText("unknown sort `sideways`");
  await expect(page.getByRole("searchbox", { name: /Serial number, model/ })).toBeVisible();
});

test("a person narrows the list by purchase source, days added and model, and the URL keeps them", async ({
  page,
  shell,
  javaScriptEnabled,
  expectAccessible,
}) => {
  await signInAfterSync(page, shell, "hank");
  const form = page.getByRole("search");
  const org = (await form.locator("input[name=org]").getAttribute("value"))!;
  const all = exportRows(await (await page.request.get(`/devices/export.csv?org=${org}`)).text());
  // The middle half of the days on which resellers' devices were added.
  const days = all
    .filter((d) => d.source === "RESELLER")
    .map((d) => d.added)
    .sort();
  const [from, until] = [days[Math.floor(days.length / 4)], days[Math.floor((days.length * 3) / 4)]];
  const inRange = all.filter((d) => d.source === "RESELLER" && d.added >= from && d.added <= until);
  expect(inRange.length).toBeGreaterThan(1);
  expect(inRange.length).toBeLessThan(days.length);

  await form.getByLabel("Purchase source", { exact: true }).selectOption({ label: "Reseller" });
  await form.getByLabel("Added from", { exact: true }).fill(from);
  await form.getByLabel("Added until", { exact: true }).fill(until);
  if (!javaScriptEnabled) await form.getByRole("button", { name: "Search", exact: true }).click();

  const param = (name: string) => new URL(page.url()).searchParams.get(name);
  await expect.poll(() => [param("source"), param("added_from"), param("added_to")]).toEqual(["RESELLER", from, until]);
  const count = page.getByTestId("result-count");
  const rows = page.locator("tbody tr");
  const expectList = async (expected: typeof all) => {
    const n = expected.length;
    await expect(count).toHaveText(n === 1 ? "1 device matches." : new RegExp(`^${n} devices match`));
    await expect(rows).toHaveCount(Math.min(n, 50));
    const wanted = new Set(expected.map((d) => d.serial));
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-serial")));
    expect(shown.filter((s) => !wanted.has(s!))).toEqual([]);
  };
  await expectList(inRange);
  await expectAccessible();

  // The export link carries the same filter.
  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export CSV" }).click();
  const exported = exportRows(readFileSync((await (await downloading).path())!, "utf8"));
  expect(exported.map((d) => d.serial).sort()).toEqual(inRange.map((d) => d.serial).sort());

  // A model narrows it further.
  const model = inRange[0].model;
  await form.getByLabel("Model", { exact: true }).selectOption({ label: model });
  if (!javaScriptEnabled) await form.getByRole("button", { name: "Search", exact: true }).click();
  await expect.poll(() => param("model")).toBe(model);
  await expectList(inRange.filter((d) => d.model === model));

  // The URL is the whole filter: opened again, the form shows it.
  await shell.goto(page.url());
  await expect(form.getByLabel("Purchase source", { exact: true })).toHaveValue("RESELLER");
  await expect(form.getByLabel("Added from", { exact: true })).toHaveValue(from);
  await expect(form.getByLabel("Added until", { exact: true })).toHaveValue(until);
  await expect(form.getByLabel("Model", { exact: true })).toHaveValue(model);
  await expectList(inRange.filter((d) => d.model === model));
});
