// How Balas' browser tests and benchmarks start Chromium: Debian's own (Playwright's download
// cannot be reached from here), headless, without the background traffic that adds noise.
module.exports.launchOptions = {
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};
