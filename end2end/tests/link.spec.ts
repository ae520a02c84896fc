import { expect, test } from "@playwright/test";
import { admin, failOnPageErrors, hydrated, logIn } from "./helpers";

// `cargo xtask test` runs a local fake WhatsApp server that speaks the real protocol, and passes the
// address of its control API, through which this test plays the phone.
const fakewa = process.env.BALAS_E2E_FAKEWA;
if (!fakewa) throw new Error("BALAS_E2E_FAKEWA is not set: run the end-to-end tests with `cargo xtask test`");

async function phone(path: string, body: object) {
  const response = await fetch(`${fakewa}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.text()).toBe(200);
}

test("an admin links a WhatsApp number by QR code, sees it connect, and links it again by phone code after a logout", async ({
  page,
}) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  // The login page is hydrated too: wait for the inbox before waiting for hydration.
  await expect(page).toHaveURL(/\/inbox/);
  await hydrated(page);
  await page.getByRole("link", { name: "Channels", exact: true }).click();
  const form = page.getByTestId("link-form");

  // Bad input is refused next to its field.
  await form.getByLabel("Name").fill("Support");
  await form.getByLabel("Phone number").fill("12");
  await form.getByRole("button", { name: "Link number" }).click();
  await expect(form.getByText("Enter the number in international form")).toBeVisible();

  await form.getByLabel("Phone number").fill("+62 812 9000 0001");
  await form.getByRole("button", { name: "Link number" }).click();
  const row = page.getByTestId("channels").locator("tr[data-phone='+6281290000001']");
  const pairing = page.locator("[data-pairing-for='+6281290000001']");
  await expect(row).toContainText("Support");
  // The same number cannot be linked twice.
  await form.getByLabel("Name").fill("Support again");
  await form.getByLabel("Phone number").fill("+62 812 9000 0001");
  await form.getByRole("button", { name: "Link number" }).click();
  await expect(form.getByText("This is already in use.")).toBeVisible();
  await expect(page.getByTestId("channels").locator("tr[data-phone='+6281290000001']")).toHaveCount(1);

  // The QR code shows with its countdown, as soon as WhatsApp sends it.
  const qr = pairing.getByTestId("pairing-qr");
  await expect(qr.locator("svg")).toBeVisible({ timeout: 20_000 });
  await expect(row.locator("[data-state]")).toHaveAttribute("data-state", "pairing");
  await expect(pairing.getByTestId("pairing-countdown")).toContainText(/Expires in \d+ s/);
  const code = await qr.getAttribute("data-code");
  expect(code).toBeTruthy();

  // The phone scans it: the page shows the account and "Connected" without a reload.
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  await phone("/scan", { code, phone: "6281290000001", name: "Toko Maju CS" });
  await expect(row.getByTestId("linked-as")).toContainText("Linked as Toko Maju CS", { timeout: 20_000 });
  await expect(row.locator("[data-state]")).toHaveAttribute("data-state", "connected", { timeout: 30_000 });
  await expect(pairing).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);

  // The phone ends the link: the channel says so and offers to link it again, this time with a
  // code typed on the phone.
  await phone("/kick", { phone: "6281290000001", kick: "logged_out" });
  await expect(row.locator("[data-state]")).toHaveAttribute("data-state", "logged_out", { timeout: 20_000 });
  await pairing.getByTestId("relink-code").click();
  const shown = pairing.getByTestId("pairing-code");
  await expect(shown).toHaveText(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/, { timeout: 30_000 });
  const typed = (await shown.textContent())!.replace("-", "");
  await phone("/enter-code", { phone: "6281290000001", code: typed, name: "Toko Maju CS" });
  await expect(row.locator("[data-state]")).toHaveAttribute("data-state", "connected", { timeout: 30_000 });
  await expect(pairing).toHaveCount(0);
  noErrors();
});
