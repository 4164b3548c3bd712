// The web page in a real browser (Debian's chromium driven by playwright-core): two pages
// signed in as the same user see each other's changes live, and a page that lost its socket
// resumes with last_seq and gets what it missed without reloading the list.
//
// env: BASE_URL (the server), ARTIFACT_DIR (the screenshots go there), CHROMIUM (default
// /usr/bin/chromium). Exit 0 when every check passed; prints one line per check.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACT_DIR || ".";
const LIVE_MS = 1000; // "shows in the other within a second"

function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  console.log("ok: " + what);
}

async function signIn(page, email, password, register) {
  await page.goto(base + "/");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click(register ? "#register" : "#signin");
  await page.locator("#app").waitFor({ state: "visible", timeout: 10000 });
  await page.locator("#live.on").waitFor({ timeout: 10000 });
}

async function timed(what, fn) {
  const t0 = Date.now();
  await fn();
  const ms = Date.now() - t0;
  console.log(`ok: ${what} (${ms} ms)`);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  try {
    const email = `browser-${Date.now()}@example.com`;
    const password = "correct horse battery";
    // A phone-sized page and a desktop one, in separate contexts (no shared storage).
    const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })).newPage();
    const desk = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    const errors = [];
    for (const p of [phone, desk]) p.on("pageerror", (e) => errors.push(String(e)));

    await signIn(phone, email, password, true);
    await signIn(desk, email, password, false);
    check(true, "registered on one page, signed in on the other, both live");

    const title = "Buy milk " + Date.now();
    await phone.fill("#new-title", title);
    await phone.click("#add");
    await timed("added on the phone, shown on the desktop", () =>
      desk.locator("#tasks li", { hasText: title }).waitFor({ timeout: LIVE_MS }));

    await phone.locator("#tasks li", { hasText: title }).locator(".complete").check();
    await timed("completed on the phone, done on the desktop", () =>
      desk.locator("#tasks li.done", { hasText: title }).waitFor({ timeout: LIVE_MS }));

    await desk.locator("#tasks li", { hasText: title }).locator(".edit").click();
    const edited = title + " (oat)";
    await desk.locator("#tasks li input.edit-title").fill(edited);
    await desk.locator("#tasks li input.edit-title").press("Enter");
    await timed("edited on the desktop, renamed on the phone", () =>
      phone.locator("#tasks li .title", { hasText: edited }).waitFor({ timeout: LIVE_MS }));

    await phone.screenshot({ path: path.join(artifacts, "web-page-phone.png"), fullPage: true });
    await desk.screenshot({ path: path.join(artifacts, "web-page-desktop.png"), fullPage: true });

    await phone.locator("#tasks li", { hasText: edited }).locator(".delete").click();
    await timed("deleted on the phone, gone from the desktop", () =>
      desk.locator("#tasks li", { hasText: edited }).waitFor({ state: "detached", timeout: LIVE_MS }));

    // Resume: the desktop loses its socket (and does not reconnect yet); a task is added
    // meanwhile; on reconnect the page asks for /ws?last_seq=N and shows the task
    // without fetching the list again.
    let listFetches = 0;
    desk.on("request", (r) => {
      if (r.method() === "GET" && new URL(r.url()).pathname === "/tasks") listFetches++;
    });
    const seqBefore = await desk.evaluate(() => {
      state.closing = true;
      state.socket.close();
      return state.lastSeq;
    });
    await desk.locator("#live.off").waitFor({ timeout: 5000 });
    const missed = "Added while away " + Date.now();
    await phone.fill("#new-title", missed);
    await phone.click("#add");
    await phone.locator("#tasks li", { hasText: missed }).waitFor({ timeout: 5000 });
    const urls = [];
    const received = [];
    desk.on("websocket", (ws) => {
      urls.push(ws.url());
      ws.on("framereceived", (f) => received.push(String(f.payload)));
    });
    await desk.evaluate(() => connect());
    await desk.locator("#tasks li", { hasText: missed }).waitFor({ timeout: 5000 });
    check(urls.some((u) => new URL(u).searchParams.get("last_seq") === String(seqBefore)),
      `reconnected page asked to resume after last_seq ${seqBefore}: ${urls.join(", ")}`);
    // The replayed change comes before the `resumed` frame that ends the replay, so the task
    // can be on the page a moment before that frame arrives.
    const resumedOk = (f) => f.includes('"type":"resumed"') && f.includes('"recovered":true');
    for (const until = Date.now() + 5000; !received.some(resumedOk) && Date.now() < until;) await desk.waitForTimeout(20);
    check(received.some(resumedOk), "the server answered resumed, recovered:true");
    check(listFetches === 0, "the missed task came by resume, not by reloading the list");
    check((await desk.evaluate(() => state.lastSeq)) === seqBefore + 1, "last_seq advanced by exactly the missed change");
    check(errors.length === 0, "no script errors" + (errors.length ? ": " + errors.join("; ") : ""));
    console.log("all browser checks passed");
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
