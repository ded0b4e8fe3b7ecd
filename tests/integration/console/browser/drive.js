// Drives Debian's chromium (headless) with puppeteer-core through the
// operator console served by rpchost at /console/, prints one JSON line of
// what it saw and keeps a screenshot of each view. Every wait has a
// deadline. Every request the page makes is checked to go to the origin
// that served the page.
//   node drive.js CHROMIUM BASE SPKI_HASH ADMIN_TOKEN USER_TOKEN SHOT_DIR USER_DATA_DIR
const path = require("path");
const puppeteer = require("puppeteer-core");

const [chromium, base, spki, adminToken, userToken, shots, userDir] = process.argv.slice(2);
const WAIT = { timeout: 20000 };
const out = { foreign: [], steps: [] };

async function main() {
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, timeout: 60000, protocolTimeout: 60000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--ignore-certificate-errors-spki-list=" + spki, "--user-data-dir=" + userDir],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on("console", (m) => console.error("page: " + m.text()));
    page.on("pageerror", (e) => { out.pageErrors = (out.pageErrors || []).concat(String(e)); });
    const origin = new URL(base).origin;
    await page.setRequestInterception(true);
    page.on("request", (r) => {
      let o;
      try { o = new URL(r.url()).origin; } catch (e) { o = r.url(); }
      if (o !== origin) { out.foreign.push(r.url()); r.abort(); } else r.continue();
    });
    const shot = (name) => page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
    const step = (s) => { out.steps.push(s); console.error("step: " + s); };

    await page.goto(base + "/console/", { timeout: 30000 });
    await page.waitForSelector("input[name=token]", WAIT);

    // Refused: no token, then a token without the admin permission.
    async function refused(token) {
      await page.evaluate(() => { document.querySelector("#signin-error").hidden = true; });
      await page.$eval("input[name=token]", (e) => { e.value = ""; });
      if (token) await page.type("input[name=token]", token);
      await page.focus("input[name=token]");
      await page.keyboard.press("Enter");
      await page.waitForSelector("#signin-error:not([hidden])", WAIT);
      return page.$eval("#signin-error", (e) => e.dataset.code + " " + e.textContent);
    }
    step("refused without a token");
    out.noToken = await refused("");
    step("refused with a non-admin token");
    out.userToken = await refused(userToken);
    out.adminVisibleAfterRefusal = await page.$$eval("[data-plugin]", (l) => l.length);
    await shot("signin-refused");

    step("sign in");
    await page.$eval("input[name=token]", (e) => { e.value = ""; });
    await page.type("input[name=token]", adminToken);
    await page.keyboard.press("Enter");
    await page.waitForSelector('[data-plugin="interop"]', WAIT);
    out.plugins = await page.$$eval("#plugins-list [data-plugin]", (l) => l.map((e) => e.dataset.plugin));
    out.tokenStorage = await page.evaluate(() => [sessionStorage.getItem("rpchost.token") !== null,
                                                  localStorage.length]);
    await shot("plugins");

    step("traffic");
    await page.click('nav a[data-view="traffic"]');
    const sel = '[data-method="/grpc.testing.TestService/EmptyCall"]';
    await page.waitForSelector(sel, WAIT);
    const first = Number(await page.$eval(sel, (e) => e.dataset.calls));
    await page.waitForFunction((s, n) => {
      const e = document.querySelector(s);
      return e && Number(e.dataset.calls) >= n + 20;
    }, WAIT, sel, first);
    out.traffic = [first, Number(await page.$eval(sel, (e) => e.dataset.calls))];
    out.trafficRate = await page.$eval(sel, (e) => e.querySelector(".figures span").textContent);
    await shot("traffic");

    step("services browser");
    await page.click('nav a[data-view="services"]');
    await page.waitForSelector('#call-method option[value="/grpc.testing.TestService/UnaryCall"]', WAIT);
    await page.select("#call-method", "/grpc.testing.TestService/UnaryCall");
    await page.$eval("#call-body", (e) => { e.value = '{"responseSize": 7}'; });
    await page.click("#call-form button[type=submit]");
    await page.waitForSelector("#call-status[data-code]", WAIT);
    out.call = [await page.$eval("#call-status", (e) => e.dataset.code),
                await page.$eval("#call-answer", (e) => e.textContent)];
    out.servicesListed = await page.$$eval("#services-list [data-service]", (l) => l.map((e) => e.dataset.service));
    await shot("services");

    step("errors");
    await page.click('nav a[data-view="errors"]');
    await page.waitForFunction(() => document.querySelectorAll("#errors-table tbody tr").length > 0, WAIT);
    out.errors = await page.$$eval("#errors-table tbody tr", (l) => l.map((r) => r.children[1].textContent + " " + r.children[2].textContent));
    await shot("errors");

    step("health");
    await page.click('nav a[data-view="health"]');
    await page.waitForSelector('#health-list [data-service="(server)"]', WAIT);
    out.health = await page.$eval('#health-list [data-service="(server)"] p', (e) => e.textContent);
    await shot("health");

    step("reload a plugin");
    await page.click('nav a[data-view="plugins"]');
    await page.waitForSelector('[data-plugin="interop"] [data-action="reload"]', WAIT);
    await page.click('[data-plugin="interop"] [data-action="reload"]');
    await page.waitForSelector("#confirm[open]", WAIT);
    await page.click("#confirm-ok");
    await page.waitForFunction(() => document.querySelector("#toast").textContent.includes("interop"), WAIT);
    out.reload = await page.$eval("#toast", (e) => e.textContent);

    step("phone width");
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await page.waitForFunction(() => document.documentElement.scrollWidth <= 390 + 1, WAIT);
    out.phoneFits = true;
    await shot("plugins-phone");
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify(Object.assign(out, { failed: e && e.stack ? e.stack : String(e) })));
  process.exit(1);
});
