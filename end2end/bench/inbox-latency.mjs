// The browser side of `cargo xtask bench inbox` (bench/src/inbox.rs starts Balas and runs this).
// Playwright drives Debian's Chromium; every time is taken in the browser, or on the same clock.
//
//   node inbox-latency.mjs live --url URL --email E --password P --channel PHONE --from PHONE,PHONE…
//        [--probes 120] [--interval 300] [--timeout 15000]
//     Logs in, waits for the inbox to be live, then sends `probes` customer messages through the
//     sandbox API from the agent's page, one every `interval` ms, rotating over the `from` numbers.
//     Per message: from the send to the row showing it in the conversation list (a
//     MutationObserver sees it: `dom`) and to the next frame after that (`painted`).
//
//   node inbox-latency.mjs login --url URL --email E --password P [--runs 5]
//     Per run, in a fresh browser context: from submitting the login form to the first conversation
//     row, to <body data-hydrated="true">, and to the live WebSocket subscribed (data-state="live").
//
// The last stdout line is one JSON object; progress goes to stderr.

import { chromium } from "playwright";
import chromiumOptions from "../chromium.cjs";

const [mode, ...rest] = process.argv.slice(2);
const options = {};
for (let i = 0; i < rest.length; i += 2) options[rest[i].replace(/^--/, "")] = rest[i + 1];
const number = (name, fallback) => (options[name] === undefined ? fallback : Number(options[name]));
for (const required of ["url", "email", "password"]) {
  if (!options[required]) throw new Error(`--${required} is required`);
}

const browser = await chromium.launch(chromiumOptions.launchOptions);

try {
  const result = mode === "live" ? await live() : mode === "login" ? await login() : null;
  if (!result) throw new Error(`unknown mode ${mode}: live or login`);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}

/** Marks, in every document of the context, when the inbox first shows a conversation row, when
 * the page has hydrated and when the live socket is subscribed (epoch ms, as `Date.now()`). */
function recordMilestones() {
  const marks = (window.__inboxMarks = {});
  const check = () => {
    const now = Date.now();
    if (!marks.row && document.querySelector("[data-testid=conversation]")) marks.row = now;
    if (!marks.hydrated && document.body?.getAttribute("data-hydrated") === "true") marks.hydrated = now;
    if (!marks.live && document.querySelector("[data-testid=live-status][data-state=live]")) marks.live = now;
    if (marks.row && marks.hydrated && marks.live) observer.disconnect();
  };
  const observer = (window.__inboxObserver = new MutationObserver(check));
  observer.observe(document, { subtree: true, childList: true, attributes: true });
}

/** A fresh context on the login page, hydrated and filled in; returns it and the page. */
async function loginPage() {
  const context = await browser.newContext({ baseURL: options.url });
  await context.addInitScript(recordMilestones);
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto("/login");
  await page.waitForSelector("body[data-hydrated=true]");
  await page.getByLabel("Email").fill(options.email);
  await page.getByLabel("Password").fill(options.password);
  return { context, page };
}

/** Submits the login form; resolves once the inbox is interactive (without `needRow`, once it
 * has hydrated and is live: an empty inbox shows no row). */
async function submitAndWait(page, needRow = true) {
  // Clicked from inside the page, so the start is taken on the page's clock right at the click.
  const submitted = await page.evaluate(() => {
    const at = Date.now();
    document.querySelector("button[type=submit]").click();
    return at;
  });
  await page.waitForURL(/\/inbox/, { timeout: 60_000 });
  await page.waitForFunction((needRow) => {
    const m = window.__inboxMarks;
    return m && (m.row || !needRow) && m.hydrated && m.live;
  }, needRow, { timeout: 60_000, polling: 50 });
  const marks = await page.evaluate(() => window.__inboxMarks);
  const start = await page.evaluate(() => Math.round(performance.timeOrigin));
  return {
    inbox_document_ms: start - submitted,
    first_row_ms: marks.row - submitted,
    hydrated_ms: marks.hydrated - submitted,
    live_ms: marks.live - submitted,
    interactive_ms: Math.max(marks.row, marks.hydrated, marks.live) - submitted,
  };
}

async function login() {
  const runs = [];
  for (let i = 0; i < number("runs", 5); i++) {
    const { context, page } = await loginPage();
    const run = await submitAndWait(page);
    console.error(`login run ${i + 1}: ${JSON.stringify(run)}`);
    runs.push(run);
    await context.close();
  }
  return { runs };
}

async function live() {
  const { page } = await loginPage();
  await submitAndWait(page, false);
  await page.evaluate(() => window.__inboxObserver.disconnect());
  const from = options.from.split(",");
  console.error(`inbox live; sending ${number("probes", 120)} probe messages…`);
  return page.evaluate(
    async ({ probes, interval, timeout, from, channel }) => {
      const pending = new Map(); // marker → { start, resolve }
      const found = (text) => {
        // Bracketed: a row's text runs on into its unread count.
        for (const [, marker] of text.matchAll(/\[(probe-\d+-[a-z0-9]+)\]/g)) {
          const probe = pending.get(marker);
          if (!probe) continue;
          pending.delete(marker);
          const dom = performance.now();
          requestAnimationFrame(() => probe.resolve({ dom: dom - probe.start, painted: performance.now() - probe.start }));
        }
      };
      // A changed preview re-renders its row (the list is keyed on it), so rows are added nodes.
      new MutationObserver((records) => {
        if (pending.size === 0) return;
        for (const record of records) {
          if (record.type === "characterData") found(record.target.textContent ?? "");
          for (const node of record.addedNodes) found(node.textContent ?? "");
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });

      const salt = Math.random().toString(36).slice(2, 8);
      const results = [];
      let failed = 0;
      for (let i = 0; i < probes; i++) {
        const marker = `probe-${i}-${salt}`;
        const seen = new Promise((resolve) => {
          const start = performance.now();
          pending.set(marker, { start, resolve });
          setTimeout(() => {
            if (pending.delete(marker)) resolve(null);
          }, timeout);
          fetch("/sandbox/api/messages", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ from: from[i % from.length], to: channel, text: `Inbox check [${marker}]` }),
          }).then((response) => {
            if (!response.ok) failed++;
          }, () => failed++);
        });
        results.push(seen);
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
      const all = await Promise.all(results);
      return {
        sent: probes,
        failed_sends: failed,
        dom_ms: all.filter(Boolean).map((r) => r.dom),
        painted_ms: all.filter(Boolean).map((r) => r.painted),
        conversations_listed: document.querySelectorAll("[data-testid=conversation]").length,
      };
    },
    {
      probes: number("probes", 120),
      interval: number("interval", 300),
      timeout: number("timeout", 15_000),
      from,
      channel: options.channel,
    },
  );
}
