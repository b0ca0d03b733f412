import { AREAS } from "../fixtures/shell";
import { expect, test } from "../fixtures/orchard";
import { ADMIN, signIn } from "../fixtures/auth";

test.beforeEach(async ({ page, javaScriptEnabled }) => {
  await signIn(page, ADMIN.username, ADMIN.password, {
    javaScriptEnabled: javaScriptEnabled !== false,
  });
});

test("the start page shows the layout, every area and the server status", async ({
  shell,
  page,
  expectAccessible,
}) => {
  const response = await shell.goto("/");

  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle("Orchard");
  await expect(shell.heading).toHaveText("Welcome to Orchard");
  for (const area of AREAS) {
    await expect(shell.navLink(area.label)).toHaveAttribute("href", area.path);
  }
  await expect(page.locator("[data-slot=organization]")).toContainText("Demo organization");
  await expect(page.locator("[data-slot=user]")).toContainText(ADMIN.username);
  await expect(shell.statusLine).toContainText("storage: SQLite");
  await expectAccessible();
});

// Built areas have their own specs: Settings in tests/settings-*.spec.ts, Devices in
// tests/devices.spec.ts, Assign devices in tests/assign.spec.ts.
const BUILT = ["/settings", "/devices", "/assign"];
for (const area of AREAS.filter((a) => !BUILT.includes(a.path))) {
  test(`the ${area.label} page says plainly that it is not built yet`, async ({
    shell,
    page,
    expectAccessible,
  }) => {
    await shell.goto("/");

    await shell.navLink(area.label).click();

    await expect(page).toHaveURL(area.path);
    await expect(shell.heading).toHaveText(area.label);
    await expect(shell.main.getByRole("status")).toContainText("not built yet");
    await expect(shell.navLink(area.label)).toHaveAttribute("aria-current", "page");
    await expect(page).toHaveTitle(`${area.label} · Orchard`);
    await expectAccessible();
  });
}

test("an unknown address gets a 404 page with a way back", async ({
  shell,
  page,
  expectAccessible,
}) => {
  const response = await page.goto("/no/such/page");
  await shell.ready();

  expect(response?.status()).toBe(404);
  await expect(shell.heading).toHaveText("Page not found");
  await shell.main.getByRole("link", { name: "Go to the start page" }).click();
  await expect(shell.heading).toHaveText("Welcome to Orchard");
  await expectAccessible();
});

test("the theme follows the system until a person picks one, and the choice sticks", async ({
  shell,
  page,
  expectAccessible,
}) => {
  await shell.goto("/devices");
  expect(await shell.documentTheme()).toBe("system");
  await expect(shell.themeButton("System")).toHaveAttribute("aria-pressed", "true");

  await shell.chooseTheme("Dark");

  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await expect(page).toHaveURL(/\/devices\??$/);
  await expect(page.locator("html")).toHaveCSS("background-color", "rgb(17, 22, 20)");
  await expectAccessible();

  await page.reload();
  await shell.ready();
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");

  await shell.chooseTheme("Light");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");
  await expectAccessible();
});

test("keyboard users can skip straight to the content", async ({ shell, page }) => {
  await shell.goto("/fleet");

  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to content" });
  await expect(skip).toBeFocused();
  await page.keyboard.press("Enter");

  await expect(page).toHaveURL(/#main$/);
});
