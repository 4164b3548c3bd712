// The session (docs/web.md, "Session"): the badge says what is true (signed out, connecting,
// live, reconnecting); the header shows who is signed in; sign-out closes the socket and
// clears every field, task and draft (in this tab and the others of the browser); an expired
// token leads back to sign-in without losing an open edit's text, also across a reload.
"use strict";
const { check, until, call, newUser, createTask, expiredToken, newPage, signIn, noErrors, run, base } = require("./lib.cjs");

const byId = (page, id) => page.locator(`[data-task-id="${id}"]`);
const badge = (page) => page.locator("#live").innerText();

run("session", async (browser) => {
  const user = await newUser("session");
  const task = await createTask(user, { title: "Water the plants" });
  const page = await newPage(browser);
  // Every text the badge shows, in order.
  await page.addInitScript(() => {
    window.__badges = [];
    new MutationObserver(() => {
      const t = document.getElementById("live")?.textContent.trim();
      if (t && window.__badges.at(-1) !== t) window.__badges.push(t);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws));

  await page.goto(base + "/");
  await page.locator("#email").waitFor();
  check((await badge(page)) === "Signed out", "before sign-in the badge says Signed out");
  await signIn(page, user);
  const badges = await page.evaluate(() => window.__badges);
  check(badges.includes("Connecting…") && badges.at(-1) === "Live", `signing in: ${badges.join(" → ")}`);
  check((await page.locator("#signed-in-as").innerText()).includes(user.email), "the header shows who is signed in");

  await page.evaluate(() => window.taskstream.dropSocket(1500));
  await page.locator("#live", { hasText: "Reconnecting…" }).waitFor({ timeout: 3000 });
  await page.locator("#live.on").waitFor({ timeout: 10000 });
  check(true, "a dropped socket shows Reconnecting…, then Live again");

  // ---- an expired token, with an edit open --------------------------------------------------
  await byId(page, task.id).locator("[data-control=edit]").click();
  await byId(page, task.id).locator("[data-control=title]").fill("Water the plants and the herbs");
  await byId(page, task.id).locator("[data-control=description]").fill("The basil needs more");
  await page.evaluate(async (t) => (await import("/static/js/api.js")).setToken(t), expiredToken(user.id));
  await byId(page, task.id).locator("[data-control=save]").click();
  await page.locator("#session-notice", { hasText: "expired" }).waitFor({ timeout: 5000 });
  check((await page.inputValue("#email")) === user.email && (await badge(page)) === "Signed out", "a 401 led back to sign-in, email filled in, badge Signed out");
  await page.fill("#password", user.password);
  await page.click("#signin");
  const box = byId(page, task.id).locator("[data-control=title]");
  await box.waitFor({ timeout: 10000 });
  check((await box.inputValue()) === "Water the plants and the herbs" && (await byId(page, task.id).locator("[data-control=description]").inputValue()) === "The basil needs more",
    "signed in again: the open edit is back with its text");
  await byId(page, task.id).locator("[data-control=save]").click();
  await byId(page, task.id).locator(".title", { hasText: "Water the plants and the herbs" }).waitFor({ timeout: 5000 });
  check((await call("GET", `/tasks/${task.id}`, { token: user.token })).json.description === "The basil needs more", "…and saves");

  // Expired while the tab was closed: the draft waits in the tab's session storage.
  await byId(page, task.id).locator("[data-control=edit]").click();
  await box.fill("Typed before the reload");
  await page.fill("#new-title", "Half an idea");
  await page.waitForTimeout(100);
  await page.evaluate((t) => localStorage.setItem("taskstream.token", t), expiredToken(user.id));
  await page.reload();
  await page.locator("#session-notice", { hasText: "expired" }).waitFor({ timeout: 5000 });
  await page.fill("#password", user.password);
  await page.click("#signin");
  await box.waitFor({ timeout: 10000 });
  check((await box.inputValue()) === "Typed before the reload" && (await page.inputValue("#new-title")) === "Half an idea",
    "expired across a reload: after sign-in the edit and the add box hold what was typed");

  // ---- sign-out -------------------------------------------------------------------------------
  const tab2 = await page.context().newPage();
  tab2.errors = [];
  tab2.on("pageerror", (e) => tab2.errors.push(String(e)));
  await tab2.goto(base + "/");
  await tab2.locator("#live.on").waitFor({ timeout: 10000 });
  check(true, "a second tab of the same browser is signed in by the stored token");
  await page.click("#signout");
  await page.locator("#confirm-signout").waitFor();
  check(await page.evaluate(() => document.activeElement?.id === "confirm-signout"), "with unsaved changes, sign-out asks first (focus on the question's button)");
  await page.click("#confirm-signout");
  await page.locator("#email").waitFor();
  // The close handshake takes a moment to finish.
  await until(async () => sockets.every((ws) => ws.isClosed()), 5000);
  const open = sockets.filter((ws) => !ws.isClosed());
  const left = await page.evaluate(() => ({
    tasks: window.taskstream.state.tasks.size,
    drafts: window.taskstream.state.drafts.size,
    token: localStorage.getItem("taskstream.token"),
    saved: sessionStorage.getItem("taskstream.drafts"),
    text: document.body.innerText,
    email: document.getElementById("email").value,
    password: document.getElementById("password").value,
  }));
  check(left.email === "" && left.password === "", "sign-out: email and password fields are empty");
  check(left.tasks === 0 && left.drafts === 0 && left.token === null && left.saved === null, "sign-out: no task, draft or token is left in memory or storage");
  check(!left.text.includes("Water the plants") && !left.text.includes(user.email), "sign-out: nothing of the user is on the page");
  check((await badge(page)) === "Signed out" && open.length === 0, `sign-out: the socket is closed (${sockets.length} opened, ${open.length} still open) and the badge says Signed out`);
  await tab2.locator("#email").waitFor({ timeout: 5000 });
  check((await badge(tab2)) === "Signed out", "the other tab signed out too");
  check(await page.evaluate(() => document.activeElement?.id === "email"), "focus is on the email field");

  noErrors(page, tab2);
});
