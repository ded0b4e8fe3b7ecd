// Drives Debian's chromium (headless) with puppeteer-core: serves the test
// page from a made-up origin by request interception (so calls to rpchost
// are cross-origin and use CORS), runs window.rpchostTest and prints its
// result as one JSON line. Every step is bounded in time.
//   node run.js CHROMIUM PAGE_ORIGIN RPCHOST_BASE SPKI_HASH BUNDLE TOKEN USER_DATA_DIR
const fs = require("fs");
const puppeteer = require("puppeteer-core");

const [chromium, origin, base, spki, bundlePath, token, userDir] = process.argv.slice(2);

async function main() {
  const bundle = fs.readFileSync(bundlePath, "utf8");
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    timeout: 60000,
    protocolTimeout: 60000,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--ignore-certificate-errors-spki-list=" + spki, "--user-data-dir=" + userDir,
      // the page is served by interception, so Chromium cannot place it in
      // the loopback address space and would ask for permission to call
      // loopback (Local Network Access): no prompt in a headless test
      "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights," +
        "PrivateNetworkAccessRespectPreflightResults",
    ],
  });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => console.error("page: " + m.text()));
    await page.setRequestInterception(true);
    page.on("request", (r) => {
      if (r.url() === origin + "/test.html") {
        r.respond({ status: 200, contentType: "text/html",
                    body: "<!doctype html><html><body><script>" + bundle + "</script></body></html>" });
      } else {
        r.continue();
      }
    });
    await page.goto(origin + "/test.html", { timeout: 30000 });
    const out = await page.evaluate((b, t) => window.rpchostTest(b, t), base, token);
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
