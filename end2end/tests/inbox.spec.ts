import { expect, test, type Browser, type Page } from "@playwright/test";
import * as fs from "node:fs";
import { admin, agent, failOnPageErrors, hydrated, logIn, open } from "./helpers";

// The channel the channels spec added, and the customers these tests play.
const channel = "+628112222333";
const customer = "+628139990001";

async function agentPage(browser: Browser, who: { email: string; password: string }): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, who.email, who.password);
  await expect(page).toHaveURL(/\/inbox/);
  await hydrated(page);
  await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "live");
  return page;
}

async function phonePage(browser: Browser, me: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await open(page, "/phone");
  await page.getByLabel("Your number (as the customer)").fill(me);
  await page.getByLabel("Write to channel").selectOption(channel);
  await page.getByRole("button", { name: "Open chat" }).click();
  await expect(page.getByTestId("phone")).toBeVisible();
  return page;
}

async function phoneSays(phone: Page, text: string) {
  await phone.getByTestId("phone-input").fill(text);
  await phone.getByTestId("phone-input").press("Enter");
  await expect(phone.getByTestId("phone-message").filter({ hasText: text }).first()).toBeVisible();
}

function row(page: Page, who: string) {
  return page.getByTestId("conversation").filter({ hasText: who });
}

async function openConversation(page: Page, who: string) {
  await row(page, who).click();
  await expect(page.getByTestId("chat-name")).toHaveText(who);
}

test("a customer writes from the phone; the inbox shows it live; replies, ticks and typing go both ways", async ({ browser }) => {
  const ana = await agentPage(browser, admin);
  const noErrors = failOnPageErrors(ana);
  await expect(ana).toHaveTitle("Inbox · Balas");
  const phone = await phonePage(browser, customer);

  await phoneSays(phone, "Halo, apakah sepatu ini ada ukuran 42?");
  // Live, without a reload: the conversation appears, unread, and the tab title counts it.
  await expect(row(ana, customer)).toHaveAttribute("data-unread", "1");
  await expect(ana.getByTestId("total-unread")).toHaveAttribute("data-count", "1");
  await expect(ana).toHaveTitle("(1) Inbox · Balas");

  // j opens the first conversation from the keyboard; opening marks it read.
  await ana.locator("body").press("j");
  await expect(ana.getByTestId("chat-name")).toHaveText(customer);
  await expect(ana.getByTestId("message").filter({ hasText: "ukuran 42" })).toBeVisible();
  await expect(ana).toHaveTitle("Inbox · Balas");
  await expect(row(ana, customer)).toHaveAttribute("data-unread", "0");
  // …and the customer's message shows blue ticks on the phone (read receipts are on by default).
  await expect(phone.getByTestId("phone-message").filter({ hasText: "ukuran 42" })).toHaveAttribute("data-state", "read");

  // The customer types: the agent sees it, and it goes away when the customer stops.
  await phone.getByTestId("phone-input").pressSequentially("sebentar", { delay: 20 });
  await expect(ana.getByTestId("customer-typing")).toBeVisible();
  await expect(ana.getByTestId("customer-typing")).toBeHidden({ timeout: 15_000 });
  await phone.getByTestId("phone-input").fill("");

  // The agent types: the phone shows "typing…", until the agent stops.
  const composer = ana.getByTestId("composer");
  await composer.pressSequentially("Ada kak", { delay: 20 });
  await expect(phone.getByTestId("agent-typing")).toBeVisible();
  await expect(phone.getByTestId("agent-typing")).toBeHidden({ timeout: 15_000 });

  // Enter sends (Shift+Enter is a new line); the ticks go to delivered, then read on the phone.
  await composer.press("Shift+Enter");
  await composer.pressSequentially("ukuran 42 ready");
  await composer.press("Enter");
  await expect(composer).toHaveValue("");
  const reply = ana.getByTestId("message").filter({ hasText: "ukuran 42 ready" });
  await expect(phone.getByTestId("phone-message").filter({ hasText: "ukuran 42 ready" })).toBeVisible();
  await expect(reply).toHaveAttribute("data-status", "read");

  // Bad input: nothing empty, nothing over the limit, and no HTML is interpreted.
  await expect(ana.getByRole("button", { name: "Send" })).toBeDisabled();
  const outbound = await ana.locator(".bubble.outbound").count();
  await composer.fill("x".repeat(4097));
  await composer.press("Enter");
  await expect(ana.getByTestId("composer-error")).toContainText("WhatsApp allows at most 4096");
  await composer.fill("");
  await expect(ana.locator(".bubble.outbound")).toHaveCount(outbound);
  await phoneSays(phone, "<b>bold</b><img src=x onerror=\"window.__pwned=1\">");
  const html = ana.getByTestId("message").filter({ hasText: "<b>bold</b>" });
  await expect(html).toBeVisible();
  await expect(html.locator("b, img")).toHaveCount(0);
  expect(await ana.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  noErrors();
});

test("two agents see each other's assignment, status, replies and notes live; notes never reach the phone", async ({ browser }) => {
  const ana = await agentPage(browser, admin);
  const budi = await agentPage(browser, agent);
  const phone = await phonePage(browser, customer);
  await openConversation(ana, customer);
  await openConversation(budi, customer);

  // Each sees that the other is here (collision warning).
  await expect(budi.getByTestId("collision")).toContainText("Ana Admin is viewing");
  await expect(ana.getByTestId("collision")).toContainText("Budi Agent is viewing");

  await ana.getByTestId("assignee-select").selectOption({ label: "Budi Agent" });
  await expect(budi.getByTestId("assignee-select").locator("option:checked")).toHaveText("Budi Agent");
  await budi.getByRole("button", { name: "Mine" }).click();
  await expect(row(budi, customer)).toBeVisible();

  await ana.getByTestId("status-select").selectOption("pending");
  await expect(budi.getByTestId("status-select").locator("option:checked")).toHaveText("Pending");

  await budi.getByTestId("composer").fill("Saya bantu cek ya kak");
  await budi.getByTestId("composer").press("Enter");
  await expect(ana.getByTestId("message").filter({ hasText: "Saya bantu cek ya kak" })).toBeVisible();

  await ana.getByTestId("note-tab").click();
  await ana.getByTestId("composer").fill("VIP customer, give the discount");
  await ana.getByTestId("composer").press("Enter");
  const note = budi.getByTestId("message").filter({ hasText: "VIP customer" });
  await expect(note).toHaveAttribute("data-note", "true");
  await expect(note).toContainText("Private note · Ana Admin");

  // A reply after the note reaches the phone; the note never does.
  await ana.getByRole("tab", { name: "Reply" }).click();
  await ana.getByTestId("composer").fill("Diskon 10% untuk kakak");
  await ana.getByTestId("composer").press("Enter");
  await expect(phone.getByTestId("phone-message").filter({ hasText: "Diskon 10%" })).toBeVisible();
  await expect(phone.getByTestId("phone-messages")).not.toContainText("VIP customer");

  await ana.getByTestId("status-select").selectOption("open");
  await expect(budi.getByTestId("status-select").locator("option:checked")).toHaveText("Open");
});

test("after a server restart the inbox reconnects and shows what it missed, in order, once", async ({ browser, request }) => {
  const pidFile = process.env.BALAS_E2E_SERVER_PID_FILE;
  expect(pidFile, "run with `cargo xtask test`, which supervises the server").toBeTruthy();
  const ana = await agentPage(browser, admin);
  const phone = await phonePage(browser, customer);
  await openConversation(ana, customer);

  process.kill(Number(fs.readFileSync(pidFile!, "utf8")), "SIGKILL");
  await expect(ana.getByTestId("reconnecting")).toBeVisible();
  await expect.poll(async () => (await request.get("/readyz").catch(() => null))?.status(), { timeout: 30_000 }).toBe(200);

  for (const text of ["restart one", "restart two", "restart three"]) {
    await phoneSays(phone, text);
  }
  const texts = ana.getByTestId("message").filter({ hasText: /^.*restart (one|two|three).*$/ });
  await expect(texts).toHaveCount(3, { timeout: 30_000 });
  await expect(ana.getByTestId("reconnecting")).toBeHidden();
  const bodies = await texts.locator(".bubble-body").allTextContents();
  expect(bodies).toEqual(["restart one", "restart two", "restart three"]);
});

test("canned responses: admins manage them, agents insert them with /", async ({ browser }) => {
  const ana = await agentPage(browser, admin);
  const noErrors = failOnPageErrors(ana);
  await open(ana, "/settings/canned");
  await expect(ana.getByTestId("no-canned")).toBeVisible();
  await ana.getByLabel("Shortcut").fill("a b");
  await ana.getByLabel("Text").fill("hello");
  await ana.getByRole("button", { name: "Add canned response" }).click();
  await expect(ana.locator("[data-field=Shortcut]")).toBeVisible();
  await ana.getByLabel("Shortcut").fill("thanks");
  await ana.getByLabel("Text").fill("Terima kasih sudah menghubungi Toko Maju!");
  await ana.getByRole("button", { name: "Add canned response" }).click();
  await expect(ana.getByTestId("canned-list")).toContainText("/thanks");

  await open(ana, "/inbox");
  await openConversation(ana, customer);
  const composer = ana.getByTestId("composer");
  await composer.pressSequentially("/tha");
  await expect(ana.getByTestId("canned")).toContainText("/thanks");
  await composer.press("Enter");
  await expect(composer).toHaveValue("Terima kasih sudah menghubungi Toko Maju!");
  await composer.fill("");
  noErrors();
});

test("editing the URL does not open a conversation the agent may not see", async ({ browser }) => {
  const budi = await agentPage(browser, agent);
  const answer = budi.waitForResponse((r) => r.url().includes("/api/conversation"));
  await budi.goto("/inbox/987654");
  expect((await answer).status()).toBe(403);
  await expect(budi.getByTestId("chat-error")).toContainText("does not allow");
  await expect(budi.getByTestId("chat-name")).toHaveCount(0);
});

test("on a phone-sized screen the list and the chat take turns", async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await logIn(page, admin.email, admin.password);
  // The login page is hydrated too: wait for the inbox before waiting for hydration.
  await expect(page).toHaveURL(/\/inbox/);
  await hydrated(page);
  await expect(row(page, customer)).toBeVisible();
  await row(page, customer).click();
  await expect(page.getByTestId("chat-name")).toHaveText(customer);
  await expect(row(page, customer)).toBeHidden();
  await expect(page.getByTestId("composer")).toBeVisible();
  await page.getByRole("link", { name: "← Conversations" }).click();
  await expect(row(page, customer)).toBeVisible();
  await expect(page.getByTestId("chat-name")).toHaveCount(0);
  await context.close();
});

test("files: a customer's photo shows in the inbox; an agent's document reaches the phone; a refused file says why", async ({ browser }) => {
  const who = "+628139990009";
  const ana = await agentPage(browser, admin);
  const noErrors = failOnPageErrors(ana);
  const phone = await phonePage(browser, who);
  // A real 1×1 PNG, so the browser can draw it once the server hands it out.
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "base64",
  );

  // The customer attaches a photo with a caption; their own chat shows it.
  await phone.getByTestId("attach-input").setInputFiles({ name: "receipt.png", mimeType: "image/png", buffer: png });
  await expect(phone.getByTestId("attachment")).toContainText("Photo");
  await phone.getByTestId("phone-input").fill("bukti transfer");
  await phone.getByTestId("phone-input").press("Enter");
  const mine = phone.getByTestId("phone-message").filter({ hasText: "bukti transfer" });
  await expect(mine.getByTestId("media-image")).toBeVisible();

  // The agent sees the photo, served to them (it decodes: the image has a size).
  await openConversation(ana, who);
  const inbound = ana.getByTestId("message").filter({ hasText: "bukti transfer" });
  const image = inbound.getByTestId("media-image");
  await expect(image).toBeVisible();
  await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(1);
  await expect(row(ana, who)).toContainText("📷 Photo · bukti transfer");

  // A file WhatsApp would refuse is refused in the composer, with the reason, before any upload.
  await ana.getByTestId("attach-input").setInputFiles({ name: "anim.gif", mimeType: "image/gif", buffer: Buffer.from("GIF89a") });
  await expect(ana.getByTestId("composer-error")).toContainText("WhatsApp does not send files of this type");
  await expect(ana.getByTestId("attachment")).toHaveCount(0);

  // The agent attaches a document (the upload shows its name), sends it with a caption, and the
  // phone gets a download link with the file's name.
  const pdf = Buffer.from("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
  await ana.getByTestId("attach-input").setInputFiles({ name: "invoice.pdf", mimeType: "application/pdf", buffer: pdf });
  await expect(ana.getByTestId("attachment")).toContainText("invoice.pdf");
  await expect(ana.getByTestId("composer-error")).toHaveCount(0);
  await ana.getByTestId("composer").fill("ini invoicenya");
  await ana.getByTestId("composer").press("Enter");
  await expect(ana.getByTestId("attachment")).toHaveCount(0);
  const outbound = ana.getByTestId("message").filter({ hasText: "ini invoicenya" });
  await expect(outbound.getByTestId("media-document")).toContainText("invoice.pdf");
  const received = phone.getByTestId("phone-message").filter({ hasText: "ini invoicenya" });
  const link = received.getByTestId("media-document");
  await expect(link).toContainText("invoice.pdf");
  // The phone downloads exactly what the agent sent.
  const download = phone.waitForEvent("download");
  await link.click();
  const saved = await (await download).path();
  expect(fs.readFileSync(saved!).equals(pdf)).toBe(true);
  await expect(outbound).toHaveAttribute("data-status", "read");
  noErrors();
});

test("a contacts merge reaches an open inbox live: the joined conversation goes, the open chat follows it", async ({ browser }) => {
  const [kept, merged] = ["+628139990301", "+628139990302"];
  const ana = await agentPage(browser, admin);
  const noErrors = failOnPageErrors(ana);
  // One customer on two numbers: two contacts, two conversations on the channel.
  for (const [from, text] of [[kept, "order on my first number"], [merged, "same person, second number"]]) {
    const sent = await ana.request.post("/sandbox/api/messages", { data: { from, to: channel, text } });
    expect(sent.ok(), await sent.text()).toBeTruthy();
    await expect(row(ana, from)).toBeVisible();
  }
  const conversationOf = async (who: string) => Number(await row(ana, who).getAttribute("data-conversation"));
  const contactOf = async (conversation: number) => {
    const view = await ana.request.post("/api/conversation", { form: { id: String(conversation) } });
    expect(view.ok(), await view.text()).toBeTruthy();
    return String((await view.json()).conversation.contact_id);
  };
  const [keptConversation, mergedConversation] = [await conversationOf(kept), await conversationOf(merged)];
  await openConversation(ana, merged);

  // Someone merges the second number into the first (here, over the same session's API).
  const done = await ana.request.post("/api/merge_contacts", {
    form: { keep: await contactOf(keptConversation), other: await contactOf(mergedConversation) },
  });
  expect(done.ok(), await done.text()).toBeTruthy();

  // Live, without a reload: the second conversation is off the list, and the open chat moved to
  // the conversation it joined, which holds both messages.
  await expect(row(ana, merged)).toHaveCount(0);
  await expect(ana).toHaveURL(new RegExp(`/inbox/${keptConversation}$`));
  await expect(ana.getByTestId("chat-name")).toHaveText(kept);
  await expect(ana.getByTestId("message").filter({ hasText: "same person, second number" })).toBeVisible();
  await expect(ana.getByTestId("message").filter({ hasText: "order on my first number" })).toBeVisible();
  noErrors();
});
