import { expect, test } from "@playwright/test";
import { admin, failOnPageErrors, hydrated, logIn } from "./helpers";

test("an admin adds a sandbox channel and sees it connect", async ({ page }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  // The login page is hydrated too: wait for the inbox before waiting for hydration.
  await expect(page).toHaveURL(/\/inbox/);
  await hydrated(page);
  await page.getByRole("link", { name: "Channels", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Channels" })).toBeVisible();
  await expect(page.getByTestId("no-channels")).toContainText("No channels yet");

  // Bad input is refused next to its field, and nothing is added.
  const form = page.getByTestId("sandbox-form");
  await form.getByLabel("Name").fill("Sales");
  await form.getByLabel("Phone number").fill("0812");
  await form.getByRole("button", { name: "Add channel" }).click();
  await expect(form.getByText("Enter the number in international form")).toBeVisible();
  await expect(page.getByTestId("no-channels")).toBeVisible();

  await form.getByLabel("Phone number").fill("+62 811 2222 333");
  await form.getByRole("button", { name: "Add channel" }).click();
  const row = page.getByTestId("channels").locator("tr", { hasText: "+628112222333" });
  await expect(row).toContainText("Sales");
  // A WhatsApp worker picks the channel up and its state shows without a reload.
  await expect(row.locator("[data-state]")).toHaveAttribute("data-state", "connected", { timeout: 20_000 });
  noErrors();
});
