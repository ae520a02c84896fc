import { expect, test } from "@playwright/test";
import { admin, agent, failOnPageErrors, hydrated, logIn, open } from "./helpers";

test.describe.configure({ mode: "serial" });

test("first run: setup creates the workspace and lands on the dashboard", async ({ page }) => {
  const noErrors = failOnPageErrors(page);
  await page.goto("/");
  await expect(page).toHaveURL(/\/setup$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Set up Balas" })).toBeVisible();

  // Bad input is reported next to the field it belongs to, and nothing is created.
  await page.getByLabel("Workspace name").fill(admin.workspace);
  await page.getByLabel("Your name").fill(admin.name);
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.locator('[data-field="Email"]')).toHaveText("Enter an email address like name@example.com.");
  await expect(page.locator('[data-field="Password"]')).toHaveText("Use at least 10 characters.");
  await expect(page).toHaveURL(/\/setup$/);

  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await hydrated(page);
  await expect(page.getByTestId("who")).toHaveText(admin.name);
  // A new workspace's inbox says what to do next.
  await expect(page.getByTestId("inbox-empty")).toContainText("No channels yet: add one in Channels");
  await expect(page.getByTestId("inbox-empty").getByRole("link", { name: "Open Channels" })).toBeVisible();
  for (const item of ["Inbox", "Contacts", "Broadcasts", "AI agent", "Channels", "Settings"]) {
    await expect(page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: item })).toBeVisible();
  }
  // Setup cannot be done twice.
  await page.goto("/setup");
  await expect(page).toHaveURL(/\/inbox$/);
  noErrors();
});

test("log out, a wrong password is refused, log in again", async ({ page }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox$/);
  await hydrated(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/inbox");
  await expect(page).toHaveURL(/\/login$/);

  await logIn(page, admin.email, "wrong-password");
  await expect(page.getByRole("alert")).toHaveText("Wrong email or password.");
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByTestId("who")).toHaveText(admin.name);
  noErrors();
});

test("an agent cannot see or open admin pages", async ({ page, browser }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox$/);
  await open(page, "/settings/team");
  await page.getByLabel("Name", { exact: true }).fill(agent.name);
  await page.getByLabel("Email", { exact: true }).fill(agent.email);
  await page.getByLabel("I set an initial password").check();
  await page.getByLabel("Initial password", { exact: true }).fill(agent.initial);
  await page.getByRole("button", { name: "Add member" }).click();
  await expect(page.getByTestId("member-added")).toBeVisible();
  const row = page.locator(`tr[data-email="${agent.email}"]`);
  await expect(row).toContainText("Must change password");
  noErrors();

  // The agent, in a browser of their own, must first replace the initial password.
  const agentContext = await browser.newContext();
  const agentPage = await agentContext.newPage();
  const agentNoErrors = failOnPageErrors(agentPage);
  await logIn(agentPage, agent.email, agent.initial);
  await expect(agentPage.getByRole("heading", { name: "Choose your own password" })).toBeVisible();
  await hydrated(agentPage);
  await agentPage.getByLabel("Current password").fill(agent.initial);
  await agentPage.getByLabel("New password").fill(agent.password);
  await agentPage.getByRole("button", { name: "Change password" }).click();
  await expect(agentPage.getByTestId("who")).toHaveText(agent.name);

  const nav = agentPage.getByRole("navigation", { name: "Main navigation" });
  await expect(nav.getByRole("link", { name: "Inbox" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Channels" })).toHaveCount(0);
  await expect(nav.getByRole("link", { name: "AI agent" })).toHaveCount(0);
  await open(agentPage, "/settings");
  await expect(agentPage.getByRole("link", { name: "Team" })).toHaveCount(0);
  await expect(agentPage.getByRole("link", { name: "Audit log" })).toHaveCount(0);
  for (const path of ["/settings/team", "/settings/audit", "/settings/system", "/channels", "/ai-agent"]) {
    const response = await agentPage.goto(path);
    expect(response?.status(), path).toBe(403);
    await expect(agentPage.getByTestId("forbidden")).toContainText("Admins only");
    await expect(agentPage.getByTestId("members")).toHaveCount(0);
  }
  agentNoErrors();
  await agentContext.close();

  // The admin sees the parts running (the test run starts one worker of each kind).
  await open(page, "/settings/system");
  await expect(page.getByTestId("database")).toContainText("Reachable");
  await expect(page.getByTestId("redis")).toContainText("Reachable");
  await expect(page.getByTestId("workers-whatsapp")).toContainText("1 running");
  await expect(page.getByTestId("workers-ai")).toContainText("1 running");

  // The admin sees what happened in the audit log.
  await open(page, "/settings/audit");
  await expect(page.getByTestId("audit")).toContainText("Changed their password");
  await expect(page.getByTestId("audit")).toContainText("Added a member");
});

test("the language switch changes the text, survives a reload and follows the user", async ({ page, browser }) => {
  const noErrors = failOnPageErrors(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/inbox$/);
  await hydrated(page);
  const nav = page.getByRole("navigation", { name: "Main navigation" });
  await expect(nav.getByRole("link", { name: "Inbox" })).toBeVisible();

  await page.getByTestId("language").selectOption("id");
  await expect(page.getByRole("navigation", { name: "Navigasi utama" }).getByRole("link", { name: "Kotak Masuk" })).toBeVisible();
  await expect(page.getByTestId("logout")).toHaveText("Keluar");

  await page.reload();
  await hydrated(page);
  await expect(page.getByRole("navigation", { name: "Navigasi utama" }).getByRole("link", { name: "Kotak Masuk" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "id");

  // Another browser: the choice comes with the account.
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await logIn(otherPage, admin.email, admin.password);
  await expect(otherPage.getByTestId("logout")).toHaveText("Keluar");
  await other.close();

  await page.getByTestId("language").selectOption("en");
  await expect(page.getByTestId("logout")).toHaveText("Log out");
  noErrors();
});
