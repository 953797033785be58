// The browser driver of the web UI's end-to-end tests (crates/statelock/tests/e2e/ui.rs):
// Debian's chromium, driven by playwright-core, taking one JSON command per line on stdin
// and answering one JSON line on stdout. The assertions live in the Rust test; this only
// does what it is told and reports what the browser saw.
//
// Environment: PLAYWRIGHT_CORE (the package directory), CHROMIUM (the browser binary).
"use strict";

const fs = require("fs");
const readline = require("readline");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // As root in CI the sandbox cannot start; the pages are the test's own server's.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const contexts = new Map();
  let current = null;

  async function use(name, viewport) {
    if (!contexts.has(name)) {
      const context = await browser.newContext({ viewport: viewport || { width: 1280, height: 800 }, acceptDownloads: true });
      // A test waits on each answer: no command may hang it for long.
      context.setDefaultTimeout(20000);
      const page = await context.newPage();
      const entry = { context, page, status: null };
      page.on("response", (r) => {
        if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) entry.status = r.status();
      });
      contexts.set(name, entry);
    }
    current = contexts.get(name);
    return current;
  }

  const ops = {
    async context(c) { await use(c.name, c.viewport); return {}; },
    async goto(c) {
      const r = await current.page.goto(c.url, { waitUntil: "load" });
      return { status: r ? r.status() : null, url: current.page.url() };
    },
    async text(c) {
      const loc = current.page.locator(c.selector);
      const n = await loc.count();
      const texts = [];
      for (let i = 0; i < n; i++) texts.push(await loc.nth(i).innerText());
      return { texts };
    },
    async html() { return { html: await current.page.content(), url: current.page.url() }; },
    async click(c) {
      current.status = null;
      await current.page.click(c.selector);
      await current.page.waitForLoadState("load");
      return { url: current.page.url(), status: current.status };
    },
    async fill(c) { await current.page.fill(c.selector, c.value); return {}; },
    async wait(c) {
      await current.page.waitForSelector(c.selector, { state: c.state || "visible", timeout: c.timeout || 15000 });
      return {};
    },
    async eval(c) {
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("eval timed out after 20 s")), 20000));
      return { value: await Promise.race([current.page.evaluate(c.js), timeout]) };
    },
    async screenshot(c) {
      await current.page.screenshot({ path: c.path, fullPage: !!c.fullPage });
      return {};
    },
    async cookies() { return { cookies: await current.context.cookies() }; },
    async download(c) {
      const [d] = await Promise.all([current.page.waitForEvent("download"), current.page.click(c.selector)]);
      return { name: d.suggestedFilename(), text: fs.readFileSync(await d.path(), "utf8") };
    },
    // A page on another site (served by the browser itself for `origin`) that submits a
    // form to `target` as soon as it loads: a cross-site request forgery.
    async cross_site_post(c) {
      const inputs = Object.entries(c.fields)
        .map(([k, v]) => `<input type="hidden" name="${k}" value="${String(v).replace(/"/g, "&quot;")}">`)
        .join("");
      const html = `<!doctype html><form id="f" method="post" action="${c.target}">${inputs}</form><script>document.getElementById("f").submit()</script>`;
      await current.page.route(c.origin + "/**", (route) => route.fulfill({ status: 200, contentType: "text/html", body: html }));
      current.status = null;
      const done = current.page.waitForURL((u) => u.toString().startsWith(c.target), { timeout: 15000 });
      await current.page.goto(c.origin + "/attack");
      await done;
      await current.page.waitForLoadState("load");
      return { url: current.page.url(), status: current.status, body: await current.page.content() };
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    if (process.env.STATELOCK_UI_TRACE) process.stderr.write("browser: " + line + "\n");
    let reply;
    try {
      const op = ops[command.op];
      if (!op) throw new Error("unknown op " + command.op);
      reply = Object.assign({ ok: true }, await op(command));
    } catch (e) {
      reply = { ok: false, error: String((e && e.message) || e) };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  }
  await browser.close();
}

main().catch((e) => {
  process.stderr.write("browser driver failed: " + ((e && e.stack) || e) + "\n");
  process.exit(1);
});
