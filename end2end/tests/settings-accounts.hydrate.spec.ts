// With JavaScript, the private key of a new API account can come from a .pem file: the
// page reads the file into the key field (the file itself is never uploaded).
import { generateKeyPairSync } from "node:crypto";
import { test, expect } from "../fixtures/orchard";
import { ADMIN, signIn } from "../fixtures/auth";

test("a chosen .pem file fills the private key field", async ({ page, shell, javaScriptEnabled, expectAccessible }) => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  await signIn(page, ADMIN.username, ADMIN.password, { javaScriptEnabled });
  await shell.goto("/settings");
  await shell.main.getByRole("link", { name: "Demo organization" }).click();
  const form = page.getByRole("region", { name: "Add an API account" });

  await form.getByLabel("Or read it from a file").setInputFiles({
    name: "AuthKey.pem",
    mimeType: "application/x-pem-file",
    buffer: Buffer.from(pem),
  });

  await expect(form.getByLabel("Private key (.pem)")).toHaveValue(pem);
  await expect(form.getByText("Read AuthKey.pem.")).toBeVisible();
  await expectAccessible();
});
