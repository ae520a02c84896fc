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
