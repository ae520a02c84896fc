import { expect, test, type Page } from "@playwright/test";
import * as fs from "node:fs";
import { admin, failOnPageErrors, hydrated, logIn, open } from "./helpers";

// The sandbox channel the channels spec added; this customer writes to it.
const channel = "+628112222333";
const customer = "+628139990101";

async function adminPage(page: Page) {
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox/);
  await hydrated(page);
}

function contactRow(page: Page, phone: string) {
  return page.getByTestId("contact").filter({ hasText: phone });
}

test("a customer's STOP opts them out; admins label, import, filter, edit and export contacts", async ({ browser }) => {
  const ana = await (await browser.newContext({ acceptDownloads: true })).newPage();
  const noErrors = failOnPageErrors(ana);
  await adminPage(ana);

  // The customer writes, then sends STOP from their phone: they get one confirmation.
  const phone = await (await browser.newContext()).newPage();
  await open(phone, "/phone");
  await phone.getByLabel("Your number (as the customer)").fill(customer);
  await phone.getByLabel("Write to channel").selectOption(channel);
  await phone.getByRole("button", { name: "Open chat" }).click();
  for (const text of ["Halo, saya mau tanya", "STOP"]) {
    await phone.getByTestId("phone-input").fill(text);
    await phone.getByTestId("phone-input").press("Enter");
    await expect(phone.getByTestId("phone-message").filter({ hasText: text })).toBeVisible();
  }
  await expect(phone.getByTestId("phone-message").filter({ hasText: "no longer receive broadcasts" })).toHaveCount(1);

  // The Contacts page shows them opted out; the opt-out filter finds them.
  await open(ana, "/contacts");
  await expect(contactRow(ana, customer)).toHaveAttribute("data-opted-out", "true");
  await ana.getByTestId("opt-out-filter").selectOption("opted_out");
  await expect(ana.getByTestId("contact-total")).toHaveText("1");
  await ana.getByTestId("opt-out-filter").selectOption("any");

  // An admin adds a label.
  await ana.getByLabel("New label").fill("VIP");
  await ana.getByLabel("Colour").selectOption("purple");
  await ana.getByTestId("label-form").getByRole("button", { name: "Add label" }).click();
  await expect(ana.getByTestId("labels").getByTestId("label-chip")).toHaveText(["VIP"]);

  // Import a CSV with good and bad rows: the report names the bad lines.
  const csv = [
    "Nama,Nomor WA,Email,Label",
    "Sari,+62 812 7000 0001,sari@example.com,",
    "Budi,0812,budi@example.com,",
    "Citra,+6281270000003,,Gold",
    "Dodi,+6281270000004,,",
  ].join("\n");
  await ana.getByTestId("import-open").click();
  await ana.getByTestId("import-file").setInputFiles({ name: "contacts.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await expect(ana.getByTestId("import-preview").locator("tbody tr")).toHaveCount(4);
  await expect(ana.getByTestId("import-map").nth(1)).toHaveValue("phone");
  await ana.getByTestId("import-start").click();
  const report = ana.getByTestId("import-report");
  await expect(report).toContainText("2 new contacts, 0 updated, 2 rows refused.");
  await expect(ana.getByTestId("import-rejected")).toContainText("Line 3: invalid phone number “0812”");
  await expect(ana.getByTestId("import-rejected")).toContainText("Line 4: unknown label “Gold”");
  await expect(ana.getByTestId("contact-total")).toHaveText("3");

  // Search, then label two contacts at once and filter by the label.
  await ana.getByTestId("contact-search").fill("sari");
  await expect(ana.getByTestId("contact")).toHaveCount(1);
  await ana.getByTestId("contact-search").fill("");
  await expect(ana.getByTestId("contact")).toHaveCount(3);
  for (const number of ["+6281270000001", "+6281270000004"]) {
    await contactRow(ana, number).getByRole("checkbox").check();
  }
  await ana.getByTestId("bulk-label").selectOption({ label: "VIP" });
  await ana.getByTestId("bulk").getByRole("button", { name: "Add label" }).click();
  await expect(ana.getByTestId("contacts-notice")).toHaveText("2 contacts changed.");
  await ana.getByTestId("label-filter").selectOption({ label: "VIP" });
  await expect(ana.getByTestId("contact")).toHaveCount(2);
  await expect(ana.getByTestId("contact-total")).toHaveText("2");

  // Save the filter as a segment (for broadcasts): it counts the two VIPs.
  ana.once("dialog", (dialog) => dialog.accept("VIP buyers"));
  await ana.getByTestId("save-segment").click();
  await expect(ana.getByTestId("segment").filter({ hasText: "VIP buyers" }).getByTestId("segment-count")).toHaveText("2");

  // Export the filtered list: the two VIPs, in the import's columns.
  const download = ana.waitForEvent("download");
  await ana.getByTestId("export").click();
  const exported = fs.readFileSync((await (await download).path())!, "utf8").trim().split("\n");
  expect(exported[0]).toBe("phone,name,email,labels,opted_out,created_at,last_message_at");
  expect(exported.slice(1).map((line) => line.split(",")[0]).sort()).toEqual(["+6281270000001", "+6281270000004"]);

  // Edit a contact: a wrong email is refused next to its field, then saved; a note goes on the
  // timeline; broadcasts are stopped by hand.
  await contactRow(ana, "+6281270000001").getByTestId("contact-link").click();
  await expect(ana.getByTestId("contact-title")).toHaveText("Sari");
  await ana.getByLabel("Name", { exact: true }).fill("Sari Dewi");
  await ana.getByLabel("Email", { exact: true }).fill("not-an-email");
  await ana.getByTestId("contact-form").getByRole("button", { name: "Save" }).click();
  await expect(ana.getByTestId("contact-form").getByRole("alert")).toBeVisible();
  await ana.getByLabel("Email", { exact: true }).fill("sari.dewi@example.com");
  await ana.getByTestId("contact-form").getByRole("button", { name: "Save" }).click();
  await expect(ana.getByTestId("contact-title")).toHaveText("Sari Dewi");
  await ana.getByPlaceholder("What should the team know about this customer?").fill("Prefers WhatsApp after 5pm");
  await ana.getByTestId("note-form").getByRole("button", { name: "Add note" }).click();
  await expect(ana.getByTestId("notes")).toContainText("Prefers WhatsApp after 5pm");
  await expect(ana.getByTestId("notes")).toContainText(admin.name);
  await ana.getByRole("button", { name: "Stop broadcasts" }).click();
  await expect(ana.getByTestId("contact-opt-out")).toHaveAttribute("data-opted-out", "true");

  // The customer's conversation is read, so the inbox specs start from nothing unread.
  await open(ana, "/inbox");
  await ana.getByTestId("conversation").filter({ hasText: customer }).click();
  await expect(ana.getByTestId("total-unread")).toHaveAttribute("data-count", "0");
  noErrors();
});

test("custom attributes, a contact added by hand, a merge, labels on conversations and stop keywords", async ({ browser }) => {
  const ana = await (await browser.newContext()).newPage();
  const noErrors = failOnPageErrors(ana);
  await adminPage(ana);

  // An admin defines two attributes: a list and a date.
  await open(ana, "/contacts");
  const attributes = ana.getByTestId("attributes");
  await ana.locator("#attribute_name").fill("Tier");
  await ana.locator("#attribute_kind").selectOption("one_of");
  await ana.locator("#attribute_options").fill("Gold\nSilver");
  await ana.getByTestId("attribute-form").getByRole("button", { name: "Add attribute" }).click();
  await expect(attributes.getByTestId("attribute")).toHaveCount(1);
  await ana.locator("#attribute_name").fill("Birthday");
  await ana.locator("#attribute_kind").selectOption("date");
  await ana.getByTestId("attribute-form").getByRole("button", { name: "Add attribute" }).click();
  await expect(attributes.getByTestId("attribute")).toHaveCount(2);
  await expect(attributes.getByTestId("attribute").nth(1)).toHaveAttribute("data-key", "birthday");

  // A contact added by hand: a wrong number is refused next to its field, then it opens.
  await ana.getByTestId("new-contact").click();
  const form = ana.getByTestId("new-contact-form");
  await form.getByLabel("Name", { exact: true }).fill("Rina");
  await form.getByLabel("Phone", { exact: true }).fill("0812");
  await form.getByLabel("Tier").selectOption("Gold");
  await form.getByRole("button", { name: "Add contact" }).click();
  await expect(form.getByRole("alert")).toBeVisible();
  await form.getByLabel("Phone", { exact: true }).fill("+62 812 7000 0009");
  await form.getByRole("button", { name: "Add contact" }).click();
  await expect(ana.getByTestId("contact-title")).toHaveText("Rina");
  await hydrated(ana);
  await ana.getByLabel("Birthday").fill("1990-03-07");
  await ana.getByTestId("contact-form").getByRole("button", { name: "Save" }).click();
  await expect(ana.getByTestId("contact-saved")).toBeVisible();

  // The list filters on an attribute and shows the values.
  await open(ana, "/contacts");
  await ana.getByTestId("attribute-filter-which").selectOption({ label: "Tier" });
  await ana.getByTestId("attribute-filter-op").selectOption("is");
  await ana.getByTestId("attribute-filter-value").selectOption("Gold");
  await expect(ana.getByTestId("contact")).toHaveCount(1);
  await expect(contactRow(ana, "+6281270000009").getByTestId("contact-attributes")).toHaveText("Tier: Gold · Birthday: 1990-03-07");
  await ana.getByTestId("attribute-filter-which").selectOption("");
  await expect(ana.getByTestId("contact-total")).toHaveText("4");

  // Rina is Dodi on another number: merging keeps Rina's number and takes Dodi's label.
  await contactRow(ana, "+6281270000009").getByTestId("contact-link").click();
  await hydrated(ana);
  await ana.getByTestId("merge-search").fill("Dodi");
  ana.once("dialog", (dialog) => dialog.accept());
  await ana.getByTestId("merge-candidates").getByRole("button", { name: "Merge into this contact" }).click();
  await expect(ana.getByTestId("merged")).toBeVisible();
  await expect(ana.getByTestId("contact-labels")).toContainText("VIP");
  await open(ana, "/contacts");
  await expect(ana.getByTestId("contact-total")).toHaveText("3");

  // A label on a conversation shows in the chat and in the list.
  await open(ana, "/inbox");
  await ana.getByTestId("conversation").filter({ hasText: customer }).click();
  await ana.getByTestId("chat-add-label").selectOption({ label: "VIP" });
  await expect(ana.getByTestId("chat-labels").getByTestId("label-chip")).toHaveText(["VIP"]);
  await expect(ana.getByTestId("conversation").filter({ hasText: customer }).getByTestId("label-chip")).toHaveText(["VIP"]);
  await ana.getByTestId("inbox-label-filter").selectOption({ label: "VIP" });
  await expect(ana.getByTestId("conversation")).toHaveCount(1);
  await ana.getByTestId("inbox-label-filter").selectOption("");

  // An admin adds a stop keyword; a customer who sends it is opted out and told so.
  await open(ana, "/settings/opt-out");
  await expect(ana.getByLabel("Keywords (one per line)")).toHaveValue(/STOP/);
  await ana.getByLabel("Keywords (one per line)").fill("STOP\nBERHENTI\nCUKUP");
  await ana.getByRole("button", { name: "Save keywords" }).click();
  await expect(ana.getByTestId("stop-keywords-saved")).toBeVisible();
  const other = "+628139990102";
  const phone = await (await browser.newContext()).newPage();
  await open(phone, "/phone");
  await phone.getByLabel("Your number (as the customer)").fill(other);
  await phone.getByLabel("Write to channel").selectOption(channel);
  await phone.getByRole("button", { name: "Open chat" }).click();
  await phone.getByTestId("phone-input").fill("cukup");
  await phone.getByTestId("phone-input").press("Enter");
  await expect(phone.getByTestId("phone-message").filter({ hasText: "no longer receive broadcasts" })).toHaveCount(1);

  // Read, so the inbox specs start from nothing unread.
  await open(ana, "/inbox");
  await ana.getByTestId("conversation").filter({ hasText: other }).click();
  await expect(ana.getByTestId("total-unread")).toHaveAttribute("data-count", "0");
  noErrors();
});
