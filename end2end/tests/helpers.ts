import { expect, type Page } from "@playwright/test";

export const admin = { workspace: "Toko Maju", name: "Ana Admin", email: "ana@example.com", password: "admin-password-1" };
export const agent = { name: "Budi Agent", email: "budi@example.com", initial: "initial-pass-1", password: "budi-own-password" };

/** Opens a path and waits until the page has hydrated (the app marks <body> when it has). */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await hydrated(page);
}

export async function hydrated(page: Page) {
  // A debug build of the wasm on a busy two-core machine can take a while to start.
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true", { timeout: 30_000 });
}

/** Fails the test on any uncaught error or console error in the page (a failed hydration only shows
 * up in the console). */
export function failOnPageErrors(page: Page) {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    // HTTP error statuses are logged as "Failed to load resource"; tests assert on those directly.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  return () => expect(errors, "errors thrown in the page").toEqual([]);
}

export async function logIn(page: Page, email: string, password: string) {
  await open(page, "/login");
  await page.getByLabel(/email/i).fill(email);
  await page.getByLabel(/password|kata sandi/i).fill(password);
  await page.getByRole("button", { name: /log in|masuk/i }).click();
}
