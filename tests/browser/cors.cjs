// Cross-origin calls (docs/api.md, "CORS"), with Chromium's own CORS checks: a page from an
// origin listed in CORS_ORIGINS (ALLOWED_ORIGIN) creates, edits (If-Match with the ETag it
// can read) and deletes a task and reads a problem answer; a page from an origin that is not
// listed (OTHER_ORIGIN) is refused by the browser after the preflight, and its write never
// reaches the database. The two pages are served by Playwright on loopback origins other
// than the API's, so every call is cross-origin.
"use strict";
const http = require("http");
const { base, check, call, newUser, run } = require("./lib.cjs");

const allowed = process.env.ALLOWED_ORIGIN;
const other = process.env.OTHER_ORIGIN;

// A real loopback server for each page (a page Playwright fulfils itself counts as public to
// Chromium, whose local-network rules would then stop the calls before CORS is asked).
function serveOrigin(origin) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><html lang=en><title>another app</title><p>another app</p>");
  });
  const url = new URL(origin);
  return new Promise((resolve) => server.listen(Number(url.port), "127.0.0.1", () => resolve(server)));
}

async function pageAt(browser, origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.messages = [];
  page.on("console", (m) => page.messages.push(m.text()));
  await page.goto(origin + "/");
  return page;
}

// Runs fetch in the page; answers {status, etag, body} or {error} when the browser refused.
function fetchIn(page, path, init) {
  return page.evaluate(async ({ url, init }) => {
    try {
      const r = await fetch(url, init);
      const text = await r.text();
      return { status: r.status, etag: r.headers.get("ETag"), requestId: r.headers.get("X-Request-Id"), body: text ? JSON.parse(text) : null };
    } catch (e) {
      return { error: String(e) };
    }
  }, { url: base + path, init });
}

run("cors", async (browser) => {
  check(allowed && other, "ALLOWED_ORIGIN and OTHER_ORIGIN are set");
  const servers = [await serveOrigin(allowed), await serveOrigin(other)];
  try {
    await flow(browser);
  } finally {
    for (const s of servers) s.close();
  }
});

async function flow(browser) {
  const user = await newUser("cors");
  const auth = { Authorization: "Bearer " + user.token };
  const json = { ...auth, "Content-Type": "application/json" };

  const page = await pageAt(browser, allowed);
  check((await page.evaluate(() => location.origin)) === allowed && !base.startsWith(allowed), `the page's origin ${allowed} is not the API's ${base}`);
  const created = await fetchIn(page, "/tasks", { method: "POST", headers: json, body: JSON.stringify({ title: "from another origin" }) });
  check(created.status === 201 && created.body.title === "from another origin", `a listed origin creates a task (${JSON.stringify(created)} ${page.messages.join("; ")})`);
  check(created.etag === '"1"' && !!created.requestId, `the page reads the exposed ETag ${created.etag} and X-Request-Id`);
  const id = created.body.id;
  const patched = await fetchIn(page, "/tasks/" + id, { method: "PATCH", headers: { ...json, "If-Match": created.etag }, body: JSON.stringify({ status: "in_progress" }) });
  check(patched.status === 200 && patched.etag === '"2"', `PATCH with If-Match passes the preflight (${patched.status} ${patched.etag})`);
  const stale = await fetchIn(page, "/tasks/" + id, { method: "PATCH", headers: { ...json, "If-Match": '"1"' }, body: JSON.stringify({ title: "stale" }) });
  check(stale.status === 412 && typeof stale.body.detail === "string", `a problem answer is readable across origins (${stale.status}: ${stale.body && stale.body.detail})`);
  const deleted = await fetchIn(page, "/tasks/" + id, { method: "DELETE", headers: auth });
  check(deleted.status === 204, `DELETE passes the preflight (${deleted.status})`);

  const foreign = await pageAt(browser, other);
  const refused = await fetchIn(foreign, "/tasks", { method: "POST", headers: json, body: JSON.stringify({ title: "from an unlisted origin" }) });
  check(!!refused.error, `the browser refuses a write from an unlisted origin (${refused.error || refused.status})`);
  const read = await fetchIn(foreign, "/tasks", { headers: auth });
  check(!!read.error, `and a read with a token (${read.error || read.status})`);
  const list = await call("GET", "/tasks?limit=100", { token: user.token });
  check(list.status === 200 && !list.json.items.some((t) => t.title === "from an unlisted origin"), "the refused write never reached the database (its preflight was refused)");
}
