// Live updates between two pages of one user (docs/web.md, "Live updates"): a change on one
// shows on the other within a second; a page that lost its socket resumes with last_seq and
// gets exactly what it missed, without reloading the list.
"use strict";
const { check, newUser, newPage, signIn, row, noErrors, run, PHONE, shot } = require("./lib.cjs");

const LIVE_MS = 1000; // "shows in the other within a second"

async function timed(what, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok: ${what} (${Date.now() - t0} ms)`);
}

run("live update", async (browser) => {
  const user = await newUser("live");
  const phone = await newPage(browser, PHONE);
  const desk = await newPage(browser);
  await signIn(phone, user);
  await signIn(desk, user);
  check(true, "signed in on a phone-sized page and a desktop page, both live");

  const title = "Buy milk " + Date.now();
  await phone.fill("#new-title", title);
  await phone.click("#add");
  await timed("added on the phone, shown on the desktop", () => row(desk, title).waitFor({ timeout: LIVE_MS }));

  await row(phone, title).locator("[data-control=check]").check();
  await timed("completed on the phone, done on the desktop", () => desk.locator("#tasks > li.done", { hasText: title }).waitFor({ timeout: LIVE_MS }));

  await row(desk, title).locator("[data-control=edit]").click();
  const edited = title + " (oat)";
  await desk.locator("#tasks [data-control=title]").fill(edited);
  await desk.locator("#tasks [data-control=title]").press("Enter");
  await timed("edited on the desktop, renamed on the phone", () => phone.locator("#tasks .title", { hasText: edited }).waitFor({ timeout: LIVE_MS }));
  await shot(phone, "web-page-phone");
  await shot(desk, "web-page-desktop");

  await row(phone, edited).locator("[data-control=delete]").click();
  // The delete is sent when its undo window (5 s) ends; then the desktop gets it live.
  const sent = phone.waitForRequest((r) => r.method() === "DELETE", { timeout: 10000 });
  await sent;
  await timed("deleted on the phone (after its undo window), gone from the desktop", () => row(desk, edited).waitFor({ state: "detached", timeout: LIVE_MS }));

  // Resume: the desktop loses its socket (no reconnect yet); a task is added meanwhile; on
  // reconnect the page opens /ws?last_seq=N and shows the task without fetching the list.
  let listFetches = 0;
  desk.on("request", (r) => {
    if (r.method() === "GET" && new URL(r.url()).pathname === "/tasks") listFetches++;
  });
  const seqBefore = await desk.evaluate(() => {
    window.taskstream.dropSocket(600000);
    return window.taskstream.store.liveSocket.lastSeq;
  });
  await desk.locator("#live", { hasText: "Reconnecting…" }).waitFor({ timeout: 5000 });
  const missed = "Added while away " + Date.now();
  await phone.fill("#new-title", missed);
  await phone.click("#add");
  await row(phone, missed).waitFor({ timeout: 5000 });
  const urls = [];
  const received = [];
  desk.on("websocket", (ws) => {
    urls.push(ws.url());
    ws.on("framereceived", (f) => received.push(String(f.payload)));
  });
  await desk.evaluate(() => window.taskstream.store.liveSocket.reconnectNow());
  await row(desk, missed).waitFor({ timeout: 5000 });
  check(urls.some((u) => new URL(u).searchParams.get("last_seq") === String(seqBefore)), `reconnected page asked to resume after last_seq ${seqBefore}: ${urls.join(", ")}`);
  // The replayed change comes before the `resumed` frame that ends the replay, so the task
  // can be on the page a moment before that frame arrives.
  const resumedOk = (f) => f.includes('"type":"resumed"') && f.includes('"recovered":true');
  for (const until = Date.now() + 5000; !received.some(resumedOk) && Date.now() < until;) await desk.waitForTimeout(20);
  check(received.some(resumedOk), "the server answered resumed, recovered:true");
  check(listFetches === 0, "the missed task came by resume, not by reloading the list");
  check((await desk.evaluate(() => window.taskstream.store.liveSocket.lastSeq)) === seqBefore + 1, "last_seq advanced by exactly the missed change");
  await desk.locator("#live.on").waitFor();
  noErrors(phone, desk);
});
