// Playwright drives Debian's Chromium against a freshly built release server.
//
// Every spec runs twice: with JavaScript disabled (what the server renders) and
// hydrated (after the wasm has taken over, marked by <html data-hydrated>).
// Specs named *.hydrate.spec.ts need JavaScript and run only in the second project.
import { defineConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// The config is evaluated in the runner and again in each worker; the runner's
// choices travel to the workers through the environment.
if (!process.env.ORCHARD_E2E_PORT) {
  process.env.ORCHARD_E2E_PORT = execFileSync(process.execPath, [
    "-e",
    "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ])
    .toString()
    .trim();
}
if (!process.env.ORCHARD_E2E_DATA) {
  process.env.ORCHARD_E2E_DATA = mkdtempSync(join(tmpdir(), "orchard-e2e-"));
}

const port = process.env.ORCHARD_E2E_PORT;
const baseURL = `http://127.0.0.1:${port}`;
const root = resolve(__dirname, "..");
const server = process.env.ORCHARD_E2E_SERVER ?? join(root, "target/release/orchard");

export default defineConfig({
  testDir: "./tests",
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: process.env.CI ? [["list"]] : [["list"], ["html", { open: "never" }]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  projects: [
    {
      name: "ssr",
      use: { javaScriptEnabled: false },
      testIgnore: /.*\.hydrate\.spec\.ts/,
    },
    {
      name: "hydrated",
      use: { javaScriptEnabled: true },
    },
  ],
  webServer: {
    command: server,
    cwd: root,
    url: `${baseURL}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ORCHARD_SERVER__LISTEN: `127.0.0.1:${port}`,
      ORCHARD_DATABASE__URL: `sqlite://${process.env.ORCHARD_E2E_DATA}/orchard.db`,
      ORCHARD_SITE__ROOT: join(root, "target/site"),
      ORCHARD_LOG__FILTER: "info",
    },
  },
});
