import { expect, test } from "@playwright/test";
// Runs after the other specs (files run in name order): the channels spec expects no channel yet.
import { admin, failOnPageErrors, hydrated, logIn, open } from "./helpers";

// A number of its own, slow (one message a second), so that progress can be watched and paused.
const channel = { name: "Promo", phone: "+628115550001" };
const recipients = Array.from({ length: 6 }, (_, i) => `+6281355500${String(i + 1).padStart(2, "0")}`);

test("an admin sends a broadcast with the wizard and watches it live, pausing and resuming it", async ({ page, browser }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox/);
  const made = await page.request.post("/api/create_sandbox_channel", {
    form: { name: channel.name, phone: channel.phone, rate: "1" },
  });
  expect(made.ok(), await made.text()).toBeTruthy();

  // No broadcasts yet: the page says what to do.
  await open(page, "/broadcasts");
  await expect(page.getByTestId("broadcasts-empty")).toBeVisible();
  await page.getByTestId("new-broadcast").click();
  await hydrated(page);

  // 1. Channel and name.
  const next = page.getByTestId("wizard-next");
  await expect(next).toBeDisabled();
  await page.getByTestId("broadcast-name").fill("Flash sale");
  await page.getByTestId("broadcast-channel").selectOption({ label: `${channel.name} (${channel.phone})` });
  await next.click();

  // 2. Audience: a pasted list with a duplicate and an invalid number, counted before sending.
  await page.getByTestId("audience-list").check();
  await page.getByTestId("audience-list-text").fill([...recipients, recipients[0], "0812 oops"].join("\n"));
  await expect(page.getByTestId("audience-sendable")).toHaveText(String(recipients.length));
  await expect(page.getByTestId("audience-counts")).toContainText("1 invalid numbers, 1 duplicates");
  await next.click();

  // 3. Message: an unknown variable is refused with the reason; the preview shows real values.
  await page.getByTestId("broadcast-text").fill("Halo {{nickname}}");
  await expect(page.getByTestId("text-error")).toContainText("neither a contact field nor a custom attribute");
  await expect(next).toBeDisabled();
  await page.getByTestId("broadcast-text").fill("Halo {{first_name|Kak}}, diskon untuk ");
  await page.getByRole("button", { name: "{{phone}}" }).click();
  await expect(page.getByTestId("text-error")).toHaveCount(0);
  await next.click();

  // 4. Send now.
  await expect(page.getByTestId("broadcast-summary")).toContainText(`goes to ${recipients.length} contacts`);
  await page.getByTestId("broadcast-send").click();
  await expect(page).toHaveURL(/\/broadcasts\/\d+$/);
  await hydrated(page);
  await expect(page.getByTestId("broadcast-status")).toHaveText("Sending");

  // Live progress: the bar and the counts move without a reload.
  const reached = async () =>
    (await Promise.all(["sent", "delivered", "read"].map((k) => page.getByTestId(`count-${k}`).innerText()))).reduce(
      (sum, n) => sum + Number(n),
      0,
    );
  await expect.poll(reached, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
  await expect(page.getByTestId("count-skipped")).toHaveText("1");

  // Pause acts at once, and says who paused it; resume goes on.
  await page.getByTestId("broadcast-pause").click();
  await expect(page.getByTestId("broadcast-status")).toHaveText("Paused");
  await expect(page.getByTestId("broadcast-paused-reason")).toHaveText(`Paused by ${admin.name}`);
  const atPause = await reached();
  expect(atPause).toBeLessThan(recipients.length);
  await page.getByTestId("broadcast-resume").click();
  await expect(page.getByTestId("broadcast-status")).toHaveText("Sending");
  await expect(page.getByTestId("broadcast-status")).toHaveText("Finished", { timeout: 30_000 });
  await expect(page.getByTestId("broadcast-done")).toContainText(`${recipients.length + 1} of ${recipients.length + 1} done`);
  await expect(page.getByTestId("send-chart")).toBeVisible();

  // Every recipient's result: the invalid number says why it was left out.
  await page.getByTestId("recipient-filter").selectOption({ label: "Skipped" });
  await expect(page.getByTestId("recipient-row")).toHaveCount(1);
  await expect(page.getByTestId("recipient-row")).toContainText("not a valid number");

  // The customer's phone got the message once, with its own number in it.
  const phone = await (await browser.newContext()).newPage();
  await open(phone, "/phone");
  await phone.getByLabel("Your number (as the customer)").fill(recipients[2]);
  await phone.getByLabel("Write to channel").selectOption(channel.phone);
  await phone.getByRole("button", { name: "Open chat" }).click();
  await expect(phone.getByTestId("phone-message").filter({ hasText: `Halo Kak, diskon untuk ${recipients[2]}` })).toHaveCount(1);

  // The list shows it finished, with its bar full.
  await open(page, "/broadcasts");
  await expect(page.getByTestId("broadcast-row").filter({ hasText: "Flash sale" })).toContainText("Finished");
  noErrors();
});

test("an admin makes an API key (shown once) and a webhook, and the key sends through the REST API", async ({ page, request }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox/);

  // API keys: a name and scopes; the secret is shown once.
  await open(page, "/settings/api");
  await page.getByLabel("Name").fill("ERP");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.locator('.field-error[data-field="Scopes"]')).toBeVisible();
  await page.getByTestId("scope-send_messages").check();
  await page.getByTestId("scope-read").check();
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.getByTestId("api-key-secret").innerText()).trim();
  expect(secret).toMatch(/^blk_/);
  await expect(page.getByTestId("api-key-row").filter({ hasText: "ERP" })).toContainText("send_messages, read");

  // The key works from outside the browser, and the docs page is there.
  const sent = await request.post("/api/v1/messages", {
    headers: { authorization: `Bearer ${secret}` },
    data: { channel_id: 1, to: "+6281355500099", text: "Pesanan #9 dikirim" },
  });
  expect([202, 422]).toContain(sent.status());
  expect(sent.headers()["content-type"]).toMatch(/json/);
  const docs = await request.get("/api/v1/docs");
  expect(await docs.text()).toContain("/api/v1/broadcasts");

  // Webhooks: a bad address is refused with the reason; a good one shows its secret once.
  await open(page, "/settings/webhooks");
  await page.getByLabel("Address").fill("ftp://erp.example");
  await page.getByText("message.received").click();
  await page.getByRole("button", { name: "Add webhook" }).click();
  await expect(page.getByTestId("webhook-form")).toContainText("https://");
  await page.getByLabel("Address").fill("https://erp.example/hooks/balas");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await expect(page.getByTestId("webhook-secret")).toContainText("whsec_");
  await expect(page.getByTestId("webhook-row")).toContainText("https://erp.example/hooks/balas");

  // Revoking the key stops it at once.
  page.once("dialog", (dialog) => dialog.accept());
  await open(page, "/settings/api");
  await page.getByTestId("api-key-row").filter({ hasText: "ERP" }).getByTestId("api-key-revoke").click();
  await expect(page.getByTestId("api-key-row").filter({ hasText: "ERP" })).toContainText("Revoked");
  const refused = await request.get("/api/v1/messages/1", { headers: { authorization: `Bearer ${secret}` } });
  expect(refused.status()).toBe(401);
  noErrors();
});
