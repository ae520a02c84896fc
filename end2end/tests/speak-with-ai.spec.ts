import { expect, test } from "@playwright/test";
// Runs after the broadcasts spec (files run in name order). The AI's provider is the local fake
// OpenAI-compatible server the test runner started (BALAS_E2E_FAKELLM): it echoes what the
// customer wrote, and calls tools on cue.
import { admin, failOnPageErrors, hydrated, logIn, open } from "./helpers";

const channel = { name: "Bot", phone: "+628117770001" };
const customer = "+628139997001";

test("an admin sets up the AI, edits and tries a prompt, turns it on, and a customer is answered", async ({ page, browser }) => {
  const noErrors = failOnPageErrors(page);
  const provider = process.env.BALAS_E2E_FAKELLM;
  expect(provider, "the test runner starts a fake provider").toBeTruthy();
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox/);
  const made = await page.request.post("/api/create_sandbox_channel", {
    form: { name: channel.name, phone: channel.phone, rate: "5" },
  });
  expect(made.ok(), await made.text()).toBeTruthy();

  // The provider: saved; the key is never shown again, only its end.
  await open(page, "/ai-agent");
  const row = page.getByTestId("ai-channel").filter({ hasText: channel.name });
  await expect(row.getByTestId("ai-enabled")).toBeDisabled();
  await page.getByLabel("API address").fill(provider!);
  await page.getByLabel("API key").fill("sk-e2e-key-9999");
  await page.getByLabel("Default model").fill("fake-model");
  await page.getByRole("button", { name: "Save provider" }).click();
  await expect(page.getByTestId("ai-provider-saved")).toBeVisible();
  await expect(page.getByLabel("API key")).toHaveAttribute("placeholder", "•••• 9999");
  await expect(page.getByLabel("API key")).toHaveValue("");

  // The prompt: a mistake is named next to its field; fixed, it is saved as version 1.
  await row.getByTestId("ai-edit").click();
  await expect(page.getByTestId("ai-profile-form")).toContainText(`Prompt and settings · ${channel.name}`);
  await page.getByTestId("ai-prompt").fill("You are Bot, the helper of Toko Maju.");
  await page.getByLabel("Temperature (0–2)").fill("5");
  await page.getByTestId("ai-save").click();
  await expect(page.getByTestId("ai-profile-form").getByRole("alert").first()).toBeVisible();
  await expect(page.getByTestId("ai-profile-saved")).toHaveCount(0);
  await page.getByLabel("Temperature (0–2)").fill("0.3");
  await page.getByTestId("ai-save").click();
  await expect(page.getByTestId("ai-profile-saved")).toHaveText("Saved as version 1.");
  await expect(page.getByTestId("ai-version")).toHaveCount(1);

  // The playground answers with the prompt in the editor and shows the tools; nothing is sent.
  await page.getByTestId("ai-try-text").fill("Halo");
  await page.getByTestId("ai-try").click();
  await expect(page.getByTestId("ai-trial-answer")).toHaveText("Echo: Halo");
  await page.getByTestId("ai-try-text").fill("label me vip");
  await page.getByTestId("ai-try").click();
  await expect(page.getByTestId("ai-trial-tools")).toContainText("add_label");

  // On for the channel.
  await row.getByTestId("ai-enabled").check();
  await expect(row).toContainText("Answering");

  // A customer writes on the phone and is answered by the AI.
  const phoneContext = await browser.newContext();
  const phone = await phoneContext.newPage();
  await open(phone, "/phone");
  await phone.getByLabel("Your number (as the customer)").fill(customer);
  await phone.getByLabel("Write to channel").selectOption(channel.phone);
  await phone.getByRole("button", { name: "Open chat" }).click();
  await expect(phone.getByTestId("phone")).toBeVisible();
  await phone.getByTestId("phone-input").fill("Jam buka toko?");
  await phone.getByTestId("phone-input").press("Enter");
  await expect(phone.getByTestId("phone-message").filter({ hasText: "Echo: Jam buka toko?" })).toBeVisible({
    timeout: 20_000,
  });

  // The inbox shows the answer with an AI badge; an agent pauses the AI for this conversation.
  await open(page, "/inbox");
  await page.getByTestId("conversation").filter({ hasText: customer }).click();
  const answer = page.getByTestId("message").filter({ hasText: "Echo: Jam buka toko?" });
  await expect(answer.getByTestId("ai-badge")).toBeVisible();
  await expect(page.getByTestId("ai-toggle")).toHaveAttribute("data-paused", "false");
  await page.getByTestId("ai-toggle").click();
  await expect(page.getByTestId("ai-toggle")).toHaveAttribute("data-paused", "true");
  await expect(page.getByTestId("ai-toggle")).toHaveText("Hand back to AI");

  // The AI page shows where this month's tokens went: this conversation, a link to it.
  await open(page, "/ai-agent");
  const spent = page.getByTestId("ai-usage-conversation").filter({ hasText: channel.name });
  await expect(spent).toHaveCount(1);
  await expect(spent.getByTestId("ai-usage-tokens")).toHaveText(/^[1-9]\d* tokens$/);
  await spent.getByRole("link").click();
  await expect(page).toHaveURL(/\/inbox\/\d+$/);
  await expect(page.getByTestId("message").filter({ hasText: "Echo: Jam buka toko?" })).toBeVisible();
  noErrors();
});
