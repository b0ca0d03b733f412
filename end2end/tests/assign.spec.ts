// The bulk-assignment wizard from paste to per-serial result, in both projects (JavaScript off
// and hydrated): an operator pastes 100 serial numbers of the demo organization with junk mixed
// in (malformed tokens, repeats, lower case, a serial the organization does not have), chooses
// a device management service, sees exactly the expected count in every group, downloads the
// preview as CSV, confirms by typing the number of devices, watches the job finish against the
// demo organization's simulated Apple, and downloads the result of every serial number.
// A helpdesk user cannot reach the wizard.
//
// The UI actions of the flow (sign-in aside) are counted and logged: the bar is at most
// 10 through the download of the results. Each project takes its own 100 devices, so the two
// runs can assign at the same time without changing each other's expectations.
import { readFileSync } from "node:fs";
import { test, expect } from "../fixtures/orchard";
import { cellsOf, demoDevices, signInAfterSync, untilJobStatus } from "../fixtures/demo";

// Each test may wait up to a minute for the demo organization's first sync.
test.describe.configure({ timeout: 120_000 });

test("an operator pastes serials with junk, previews, confirms, watches the job and downloads the result", async ({
  page,
  shell,
  expectAccessible,
}) => {
  test.setTimeout(150_000);
  await signInAfterSync(page, shell, "olivia");
  await expect(shell.navLink("Assign devices")).toBeVisible();

  // 100 devices of the organization, from the device export.
  await shell.goto("/assign");
  await expect(shell.heading).toHaveText("Assign devices");
  const org = (await page.locator("#devices-form input[name=org]").getAttribute("value"))!;
  const offset = test.info().project.name === "hydrated" ? 100 : 0;
  const all = await demoDevices(page, org);
  const devices = all.slice(offset, offset + 100);
  expect(devices).toHaveLength(100);
  // The target is the service the fewest of these devices are on, so most of them change and
  // the confirmation needs the typed count. (The demo organization is generated from the day's
  // date: which service a given device is on changes from one day to the next.)
  const services = [...new Set(all.map((d) => d.service).filter((s) => s !== ""))];
  expect(services.length, "the demo organization has two services or more").toBeGreaterThan(1);
  const onService = (s: string) => devices.filter((d) => d.service === s).length;
  const target = services.reduce((best, s) => (onService(s) < onService(best) ? s : best));
  const expected = {
    already_there: devices.filter((d) => d.service === target).length,
    move: devices.filter((d) => d.service !== target && (d.service !== "" || d.status === "ASSIGNED")).length,
    assign: devices.filter((d) => d.service === "" && d.status !== "ASSIGNED").length,
    duplicate: 2,
    malformed: 3,
    not_in_org: 1,
  };
  expect(expected.already_there + expected.move + expected.assign).toBe(100);

  // Any separators, lower case, repeats, junk and a serial nobody has.
  const serials = devices.map((d, i) => (i % 7 === 3 ? d.serial.toLowerCase() : d.serial));
  const seps = ["\n", ", ", "\t", " ", ";"];
  let text = serials.map((s, i) => s + seps[i % seps.length]).join("");
  text += `\n${devices[0].serial.toLowerCase()}\n"${devices[1].serial}"\nbad!\nX\nC02-XL0GSJ\nUNKNOWN0001\n`;

  let actions = 0;
  await expectAccessible();
  await page.getByLabel("Serial numbers or a CSV file", { exact: true }).fill(text);
  actions++;
  await page.getByRole("button", { name: "Continue", exact: true }).click();
  actions++;
  await expect(page).toHaveURL(/\/assign\/[0-9a-f-]{36}\/action$/);
  await shell.ready();
  await expect(page.getByTestId("input-summary")).toContainText(
    "106 entries: 101 serial numbers, 2 repeated, 3 not serial numbers",
  );
  await expectAccessible();

  await page.getByLabel("Device management service", { exact: true }).selectOption(target);
  actions++;
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  actions++;
  await expect(page).toHaveURL(/\/assign\/[0-9a-f-]{36}\/preview$/);
  await shell.ready();
  await expect(page.getByTestId("preview-action")).toContainText("Assign to ");
  for (const [group, count] of Object.entries(expected)) {
    const cell = page.getByTestId(`count-${group}`);
    if (count === 0) await expect(cell).toHaveCount(0);
    else await expect(cell).toHaveText(String(count));
  }
  await expect(page.getByTestId("count-all")).toHaveText("106");
  const toSend = expected.assign + expected.move;
  expect(toSend, "more devices change than the typed-confirmation threshold (50)").toBeGreaterThan(50);
  await expect(page.getByTestId("preview-summary")).toHaveText(
    `${toSend} will be sent to Apple; ${106 - toSend} skipped. Nothing has been sent yet.`,
  );
  // The full list, 100 entries a page.
  await expect(page.locator("tbody tr[data-group]")).toHaveCount(100);
  await expect(page.getByRole("navigation", { name: "Preview pages" })).toContainText("Page 1 of 2");
  await expectAccessible();

  // The preview as CSV: every entry, with what happens to it.
  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download the preview (CSV)" }).click();
  actions++;
  const download = await downloading;
  expect(download.suggestedFilename()).toMatch(/^assignment-preview-[0-9a-f]{8}\.csv$/);
  const csv = readFileSync((await download.path())!, "utf8").trimEnd().split("\r\n");
  expect(csv[0]).toBe("line,column,input,serial_number,result,group,reason,current_service,target_service");
  expect(csv).toHaveLength(107);
  const cells = csv.slice(1).map(cellsOf);
  expect(cells.filter((c) => c[4] === "send")).toHaveLength(toSend);
  for (const [group, count] of Object.entries(expected)) {
    expect(cells.filter((c) => c[5] === group), group).toHaveLength(count);
  }
  expect(csv.some((line) => line.includes(",UNKNOWN0001,UNKNOWN0001,skip,not_in_org,"))).toBe(true);
  expect(csv.some((line) => line.includes(",bad!,,skip,malformed,"))).toBe(true);

  // Step 4: confirm. Above the threshold (50 devices in this suite) the number is typed.
  await page.getByRole("link", { name: "Continue to confirm" }).click();
  actions++;
  await expect(page).toHaveURL(/\/assign\/[0-9a-f-]{36}\/confirm$/);
  await shell.ready();
  await expect(page.getByTestId("confirm-summary")).toContainText(`${toSend} devices will change`);
  await expectAccessible();
  const typed = page.getByLabel(`Type ${toSend} to confirm`);
  await typed.fill(String(toSend + 1));
  await page.getByRole("button", { name: "Start the job" }).click();
  await expect(page.getByText(`Type ${toSend}, the number of devices that will change, to confirm.`)).toBeVisible();
  await page.getByLabel(`Type ${toSend} to confirm`).fill(String(toSend));
  actions++;
  await page.getByRole("button", { name: "Start the job" }).click();
  actions++;

  // Step 5: live progress until Apple (the simulator) has done it and Orchard checked it.
  await expect(page).toHaveURL(/\/jobs\/\d+\?org=/);
  await shell.ready();
  await untilJobStatus(page, test.info().project.name === "hydrated", "completed", 90_000);
  const skipped = expected.already_there + expected.malformed + expected.not_in_org;
  await expect(page.getByTestId("count-succeeded")).toHaveText(String(toSend));
  await expect(page.getByTestId("count-failed")).toHaveText("0");
  await expect(page.getByTestId("count-skipped")).toHaveText(String(skipped));
  await expectAccessible();

  // Step 6: the result of every serial number, downloaded.
  const downloadingResults = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download results (CSV)" }).click();
  actions++;
  const results = readFileSync((await (await downloadingResults).path())!, "utf8").trimEnd().split("\r\n");
  expect(results[0]).toBe("serial_number,result,verified_at_apple,activity_id,reason");
  expect(results).toHaveLength(1 + toSend + skipped);
  const outcomes = results.slice(1).map((line) => line.split(","));
  const succeeded = outcomes.filter((c) => c[1] === "succeeded");
  expect(succeeded).toHaveLength(toSend);
  expect(succeeded.every((c) => c[2] === "yes"), "every assignment was seen at Apple").toBe(true);
  expect(outcomes.find((c) => c[0] === "UNKNOWN0001")?.[1]).toBe("skipped");

  console.log(`assign wizard: ${actions} UI actions from the paste to the downloaded result`);
  expect(actions).toBeLessThanOrEqual(10);
});

test("a helpdesk user cannot reach the wizard", async ({ page, shell }) => {
  await signInAfterSync(page, shell, "hank");
  await expect(shell.navLink("Assign devices")).toHaveCount(0);
  const response = await page.goto("/assign");
  await shell.ready();
  expect(response?.status()).toBe(403);
  await expect(shell.main.getByText("Your role does not allow this.")).toBeVisible();
  await expect(page.getByLabel("Serial numbers or a CSV file", { exact: true })).toHaveCount(0);
});

test("rows selected on the Devices page arrive in the wizard", async ({ page, shell }) => {
  await signInAfterSync(page, shell, "olivia");
  const rows = page.locator("tbody tr");
  const first = (await rows.nth(0).getAttribute("data-serial"))!;
  const second = (await rows.nth(1).getAttribute("data-serial"))!;
  await page.getByRole("checkbox", { name: `Select ${first}` }).check();
  await page.getByRole("checkbox", { name: `Select ${second}` }).check();
  await page.getByRole("button", { name: "Assign selected…" }).click();
  await expect(page).toHaveURL(/\/assign\?org=.*serials=/);
  await shell.ready();
  await expect(page.getByLabel("Serial numbers or a CSV file", { exact: true })).toHaveValue(`${first}\n${second}`);
});
