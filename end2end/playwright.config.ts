import { defineConfig } from "@playwright/test";
import { launchOptions } from "./chromium.cjs";

// `cargo xtask test` starts a Balas server on a fresh database and passes its address here.
const baseURL = process.env.BALAS_E2E_URL;
if (!baseURL) {
  throw new Error("BALAS_E2E_URL is not set: run the end-to-end tests with `cargo xtask test`");
}

export default defineConfig({
  testDir: "./tests",
  // The specs share one server and build on each other's data (setup comes first).
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["json", { outputFile: process.env.PLAYWRIGHT_JSON_OUTPUT_FILE ?? "test-results/report.json" }]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions,
  },
});
