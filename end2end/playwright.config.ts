// Playwright drives Debian's Chromium against a freshly built release server.
//
// Every spec runs twice: with JavaScript disabled (what the server renders) and
// hydrated (after the wasm has taken over, marked by <html data-hydrated>).
// Specs named *.hydrate.spec.ts need JavaScript and run only in the second project.
import { defineConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// The config is evaluated in the runner and again in each worker; the runner's
// choices travel to the workers through the environment.
const freePort = () =>
  execFileSync(process.execPath, [
    "-e",
    "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ])
    .toString()
    .trim();
if (!process.env.ORCHARD_E2E_PORT) process.env.ORCHARD_E2E_PORT = freePort();
if (!process.env.ORCHARD_E2E_OIDC_PORT) process.env.ORCHARD_E2E_OIDC_PORT = freePort();
if (!process.env.ORCHARD_E2E_DATA) {
  process.env.ORCHARD_E2E_DATA = mkdtempSync(join(tmpdir(), "orchard-e2e-"));
}

const port = process.env.ORCHARD_E2E_PORT;
const baseURL = `http://127.0.0.1:${port}`;
const data = process.env.ORCHARD_E2E_DATA;
const oidcPort = process.env.ORCHARD_E2E_OIDC_PORT;
const issuer = `http://127.0.0.1:${oidcPort}`;

// SSO against the real provider in end2end/oidc/provider.mjs: its groups map to roles in
// the demo organization. The role map can only be written in the config file.
const configFile = join(data, "orchard.toml");
writeFileSync(
  configFile,
  `[oidc]
enabled = true
issuer = "${issuer}"
client_id = "orchard"
client_secret = "orchard-test-secret"
display_name = "Sign in with Test SSO"

[[oidc.role_map]]
group = "orchard-admins"
organization = "demo-organization"
role = "admin"

[[oidc.role_map]]
group = "orchard-operators"
organization = "demo-organization"
role = "operator"

[[oidc.role_map]]
group = "orchard-helpdesk"
organization = "demo-organization"
role = "helpdesk"

[[oidc.role_map]]
group = "orchard-viewers"
organization = "demo-organization"
role = "viewer"
`,
);
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
    // First run: creates the administrator every other spec signs in as.
    {
      name: "setup",
      testMatch: /.*\.setup\.ts/,
      use: { javaScriptEnabled: true },
    },
    {
      name: "ssr",
      use: { javaScriptEnabled: false },
      testIgnore: /.*\.hydrate\.spec\.ts/,
      dependencies: ["setup"],
    },
    {
      name: "hydrated",
      use: { javaScriptEnabled: true },
      dependencies: ["setup"],
    },
  ],
  webServer: [
    {
      command: `node oidc/provider.mjs ${oidcPort}`,
      cwd: __dirname,
      url: `${issuer}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: "pipe",
      stderr: "pipe",
      env: { OIDC_REDIRECT_URIS: `${baseURL}/auth/oidc/callback` },
    },
    {
      command: server,
      cwd: root,
      url: `${baseURL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        ORCHARD_SERVER__LISTEN: `127.0.0.1:${port}`,
        ORCHARD_DATABASE__URL: `sqlite://${data}/orchard.db`,
        ORCHARD_VAULT__KEY_FILE: join(data, "master.key"),
        ORCHARD_SITE__ROOT: join(root, "target/site"),
        ORCHARD_LOG__FILTER: "info",
        ORCHARD_CONFIG: configFile,
        ORCHARD_AUTH__SETUP_LINK_FILE: join(data, "setup-link.txt"),
        // Every browser of the suite signs in from 127.0.0.1; the per-address limit of
        // sign-in attempts is tested in server/tests, not here.
        ORCHARD_AUTH__ADDRESS_MAX_ATTEMPTS: "100000",
        ORCHARD_DEMO__DEVICES: "500",
        // The demo's Apple runs 20 times faster (an assignment takes half a second and shows
        // in the device lists 1.5 s later) and the job runner polls and verifies to match.
        ORCHARD_DEMO__TIME_SCALE: "20",
        // Orchard's read budget at the same pace (Apple's 20 a minute, 20 times faster), so a
        // whole sync run (devices, then the directory: about 60 reads) takes seconds.
        ORCHARD_BUDGET__READS_PER_MINUTE: "400",
        ORCHARD_JOBS__TICK_MS: "500",
        ORCHARD_JOBS__POLL_FIRST_MS: "300",
        ORCHARD_JOBS__POLL_MAX_MS: "1000",
        ORCHARD_JOBS__ASSIGNMENT_LAG_MS: "2000",
        // Typed confirmation from 50 devices, so the 100-serial flow exercises it.
        ORCHARD_JOBS__CONFIRM_THRESHOLD: "50",
      },
    },
  ],
});
