// Shared by the browser flows (tests/browser/*.cjs): Chromium via playwright-core, accounts and
// tasks through the real API, checks that print one line each, axe-core, screenshots.
//
// env: BASE_URL (a running serve), ARTIFACT_DIR (screenshots), JWT_SECRET (to make an expired
// token), CHROMIUM (default /usr/bin/chromium).
"use strict";
const { chromium } = require("playwright-core");
const crypto = require("crypto");
const path = require("path");
const fs = require("fs");

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACT_DIR || ".";
fs.mkdirSync(artifacts, { recursive: true });

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  console.log("ok: " + what);
}

/// Polls `fn` (async) until it returns a truthy value or `ms` pass; returns the last value.
async function until(fn, ms = 5000, step = 50) {
  const end = Date.now() + ms;
  let v;
  while (!(v = await fn()) && Date.now() < end) await new Promise((r) => setTimeout(r, step));
  return v;
}

async function call(method, p, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = "Bearer " + token;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

let userSeq = 0;
/// A new account through the API: {email, password, token, id}.
/// `email`: a preferred address (the screenshots' "ana@example.com"), used when still free.
async function newUser(prefix = "user", { email: preferred = null } = {}) {
  let email = preferred ?? `${prefix}-${process.pid}-${Date.now()}-${++userSeq}@example.com`;
  const password = "correct horse battery";
  let r = await call("POST", "/auth/register", { body: { email, password } });
  if (r.status === 409 && preferred) {
    email = `${prefix}-${process.pid}-${Date.now()}-${++userSeq}@example.com`;
    r = await call("POST", "/auth/register", { body: { email, password } });
  }
  if (r.status !== 201) throw new Error("register: " + r.status + " " + JSON.stringify(r.json));
  const t = await call("POST", "/auth/token", { body: { email, password } });
  return { email, password, token: t.json.access_token, id: r.json.id };
}

async function createTask(user, fields) {
  const r = await call("POST", "/tasks", { token: user.token, body: fields });
  if (r.status !== 201) throw new Error("create: " + r.status + " " + JSON.stringify(r.json));
  return r.json;
}

/// An HS256 JWT for `sub` that expired a minute ago, signed with the server's secret.
function expiredToken(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, iat: now - 3600, exp: now - 60 });
  const sig = crypto.createHmac("sha256", process.env.JWT_SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
}

/// A page in a context of its own (no shared storage), recording script errors.
async function newPage(browser, options = {}) {
  const context = await browser.newContext({ ...DESKTOP, ...options });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) page.errors.push("console: " + m.text());
  });
  return page;
}

/// Signs in through the page and waits for the list and the live socket.
async function signIn(page, user) {
  await page.goto(base + "/");
  await page.locator("#email").waitFor();
  await page.fill("#email", user.email);
  await page.fill("#password", user.password);
  await page.click("#signin");
  await page.locator("#new-title").waitFor({ timeout: 10000 });
  await page.locator("#live.on").waitFor({ timeout: 10000 });
}

const row = (page, text) => page.locator("#tasks > li", { hasText: text });

/// axe-core on the page as it is: no serious or critical violation.
async function axe(page, what) {
  const AxeBuilder = require("@axe-core/playwright").default;
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const detail = bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`).join("\n  ");
  check(bad.length === 0, `axe-core: no serious or critical violation on ${what} (${result.passes.length} rules passed, ${result.violations.length - bad.length} minor)` + (bad.length ? ":\n  " + detail : ""));
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + ".png") });
}

function noErrors(...pages) {
  const errors = pages.flatMap((p) => p.errors);
  check(errors.length === 0, "no script errors" + (errors.length ? ": " + errors.join("; ") : ""));
}

/// Runs a flow; exit 0 after it passes, 1 with the error otherwise.
function run(name, flow) {
  (async () => {
    const browser = await launch();
    try {
      await flow(browser);
      console.log(`all ${name} checks passed`);
    } finally {
      await browser.close();
    }
  })().catch((e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
  });
}

module.exports = { base, artifacts, DESKTOP, PHONE, check, until, call, newUser, createTask, expiredToken, launch, newPage, signIn, row, axe, shot, noErrors, run };
