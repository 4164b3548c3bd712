// Edits are never lost and never silently overwrite (docs/web.md, "Edits"):
// - two pages edit one task: the second save gets the conflict view, nothing is overwritten;
//   keep mine, take theirs and merge by hand each do what they say; the history holds only
//   the saves that were confirmed;
// - a live update during an edit leaves the edit box, its text and its focus alone, and saves
//   nothing; Escape cancels, Enter saves;
// - a failed add or save (offline) keeps the text and says what to do;
// - limits are shown and enforced at the field (nothing cut, nothing sent); the server's 422
//   is shown at the field it names.
"use strict";
const { check, until, call, newUser, createTask, newPage, signIn, row, noErrors, run, shot } = require("./lib.cjs");

const byId = (page, id) => page.locator(`[data-task-id="${id}"]`);

async function history(user, id, count) {
  // The audit consumer writes the trail a moment after each change.
  let items = [];
  await until(async () => {
    const r = await call("GET", `/tasks/${id}/history`, { token: user.token });
    items = r.status === 200 ? r.json.items : [];
    return items.length >= count;
  }, 15000, 200);
  return items;
}

run("edit", async (browser) => {
  const user = await newUser("edits");
  const a = await newPage(browser);
  const b = await newPage(browser);
  await signIn(a, user);
  await signIn(b, user);

  // ---- two pages, one task ------------------------------------------------------------------
  const t = await createTask(user, { title: "Plan the offsite" });
  await byId(a, t.id).waitFor();
  await byId(b, t.id).waitFor();

  await byId(a, t.id).locator("[data-control=edit]").click();
  await byId(b, t.id).locator("[data-control=edit]").click();
  await byId(a, t.id).locator("[data-control=title]").fill("Plan the offsite in March");
  await byId(b, t.id).locator("[data-control=title]").fill("Plan the offsite and book rooms");
  await byId(b, t.id).locator("[data-control=priority]").selectOption("high");
  await byId(a, t.id).locator("[data-control=title]").press("Enter");
  await byId(a, t.id).locator(".title", { hasText: "Plan the offsite in March" }).waitFor({ timeout: 5000 });
  check(true, "page A saved with Enter; its edit closed");

  // Page B gets A's change live, while its own edit stays open and untouched.
  await byId(b, t.id).locator(".notice", { hasText: "Changed elsewhere" }).waitFor({ timeout: 5000 });
  check((await byId(b, t.id).locator("[data-control=title]").inputValue()) === "Plan the offsite and book rooms", "page B's open edit kept its text through A's live update");

  await byId(b, t.id).locator("[data-control=save]").click();
  await byId(b, t.id).locator(".conflict").waitFor({ timeout: 5000 });
  const table = await byId(b, t.id).locator(".compare").innerText();
  check(table.includes("Plan the offsite and book rooms") && table.includes("Plan the offsite in March"), "page B's save answered 412: the conflict view shows both titles");
  check(await b.evaluate(() => document.activeElement?.dataset.control === "conflict"), "focus moved to the conflict's heading");
  await shot(b, "edit-conflict-desktop-light");
  let now = (await call("GET", `/tasks/${t.id}`, { token: user.token })).json;
  check(now.title === "Plan the offsite in March" && now.priority === "medium" && now.version === 2, "nothing was overwritten: the server holds A's save (version 2)");

  // Merge by hand: the editor on A's version with B's changes, A's value beside the field.
  await byId(b, t.id).locator("[data-control=merge]").click();
  await byId(b, t.id).locator(".theirs", { hasText: "Plan the offsite in March" }).waitFor();
  check((await byId(b, t.id).locator("[data-control=title]").inputValue()) === "Plan the offsite and book rooms", "merge: B's title in the box, A's shown beside it");
  check((await byId(b, t.id).locator("[data-control=priority]").inputValue()) === "high", "merge: B's priority kept");
  await byId(b, t.id).locator("[data-control=title]").fill("Plan the offsite in March and book rooms");
  await byId(b, t.id).locator("[data-control=save]").click();
  await byId(b, t.id).locator(".title", { hasText: "Plan the offsite in March and book rooms" }).waitFor({ timeout: 5000 });
  await byId(a, t.id).locator(".title", { hasText: "Plan the offsite in March and book rooms" }).waitFor({ timeout: 5000 });
  now = (await call("GET", `/tasks/${t.id}`, { token: user.token })).json;
  check(now.title === "Plan the offsite in March and book rooms" && now.priority === "high" && now.version === 3, "the merge saved on version 2 (If-Match) and reached page A live");

  // Take theirs: B's edit is dropped, the page shows A's.
  await byId(b, t.id).locator("[data-control=edit]").click();
  await byId(b, t.id).locator("[data-control=title]").fill("B's idea");
  await byId(a, t.id).locator("[data-control=edit]").click();
  await byId(a, t.id).locator("[data-control=description]").fill("Agenda in the shared folder");
  await byId(a, t.id).locator("[data-control=save]").click();
  await byId(a, t.id).locator(".desc", { hasText: "Agenda" }).waitFor({ timeout: 5000 });
  await byId(b, t.id).locator("[data-control=save]").click();
  await byId(b, t.id).locator("[data-control=take-theirs]").click();
  await byId(b, t.id).locator(".desc", { hasText: "Agenda" }).waitFor();
  check((await byId(b, t.id).locator(".title").innerText()) === "Plan the offsite in March and book rooms", "take theirs: B's edit dropped, A's version shown");

  // Keep mine: B's change goes over A's, on A's version.
  await byId(b, t.id).locator("[data-control=edit]").click();
  await byId(b, t.id).locator("[data-control=status]").selectOption("in_progress");
  await byId(a, t.id).locator("[data-control=edit]").click();
  await byId(a, t.id).locator("[data-control=priority]").selectOption("low");
  await byId(a, t.id).locator("[data-control=save]").click();
  await byId(a, t.id).locator("[data-control=edit]").waitFor();
  await until(async () => (await call("GET", `/tasks/${t.id}`, { token: user.token })).json.priority === "low");
  await byId(b, t.id).locator("[data-control=save]").click();
  await byId(b, t.id).locator("[data-control=keep-mine]").click();
  await byId(b, t.id).locator(".chip.progress").waitFor({ timeout: 5000 });
  now = (await call("GET", `/tasks/${t.id}`, { token: user.token })).json;
  check(now.status === "in_progress" && now.priority === "low" && now.version === 6, "keep mine: B's status saved over A's version; A's priority change stays");

  const items = await history(user, t.id, 6);
  const titles = items.map((i) => i.task?.title);
  check(items.length === 6 && !titles.includes("Plan the offsite and book rooms") && !titles.includes("B's idea"),
    `the history holds the 6 confirmed saves and none of the refused ones (${items.map((i) => i.action).join(", ")})`);

  // The page's history view says the same, readably.
  await byId(a, t.id).locator("[data-control=history]").click();
  await a.locator("dialog.history .timeline > li").nth(5).waitFor({ timeout: 10000 });
  const text = await a.locator("dialog.history").innerText();
  check((await a.locator("dialog.history .timeline > li").count()) === 6 && text.includes("You created it") && text.includes("“Plan the offsite in March”"),
    "the history view shows the 6 saves, who and what changed");
  await shot(a, "history-desktop-light");
  await a.keyboard.press("Escape");
  await a.locator("dialog.history").waitFor({ state: "detached" });
  check(await a.evaluate((id) => document.activeElement?.closest("[data-task-id]")?.dataset.taskId === id && document.activeElement.dataset.control === "history", t.id),
    "Escape closed the history and focus went back to its button");

  // ---- a live update during an edit ---------------------------------------------------------
  const u = await createTask(user, { title: "Renew passport" });
  await byId(a, u.id).waitFor();
  await byId(a, u.id).locator("[data-control=edit]").click();
  const box = byId(a, u.id).locator("[data-control=title]");
  await box.fill("Renew passport before June");
  await call("PATCH", `/tasks/${u.id}`, { token: user.token, body: { priority: "high", description: "Photos first" } });
  const other = await createTask(user, { title: "Arrives during the edit" });
  await byId(a, other.id).waitFor({ timeout: 5000 });
  await byId(a, u.id).locator(".notice", { hasText: "Changed elsewhere" }).waitFor({ timeout: 5000 });
  check((await box.inputValue()) === "Renew passport before June", "a live update (another page's change, a new task) left the open edit and its text alone");
  check(await a.evaluate(() => document.activeElement?.dataset.control === "title"), "the edit box kept the keyboard focus");
  await shot(a, "edit-desktop-light");
  await box.press("Escape");
  await byId(a, u.id).locator(".title").waitFor();
  check(await a.evaluate((id) => document.activeElement?.closest("[data-task-id]")?.dataset.taskId === id && document.activeElement.dataset.control === "edit", u.id),
    "Escape cancelled the edit; focus is on the task's Edit button");
  const uNow = (await call("GET", `/tasks/${u.id}`, { token: user.token })).json;
  check(uNow.title === "Renew passport" && uNow.version === 2, "Escape saved nothing");
  const uHistory = await history(user, u.id, 2);
  await new Promise((r) => setTimeout(r, 500));
  check((await history(user, u.id, 2)).length === 2 && uHistory.every((i) => i.task?.title === "Renew passport"), "the history has no save from the cancelled edit");

  // ---- deleted elsewhere during an edit -------------------------------------------------------
  const v = await createTask(user, { title: "Fix the bike" });
  await byId(a, v.id).waitFor();
  await byId(a, v.id).locator("[data-control=edit]").click();
  await byId(a, v.id).locator("[data-control=title]").fill("Fix the bike: new chain");
  await call("DELETE", `/tasks/${v.id}`, { token: user.token });
  await byId(a, v.id).locator(".conflict.gone").waitFor({ timeout: 5000 });
  check((await byId(a, v.id).innerText()).includes("Fix the bike: new chain"), "a task deleted elsewhere during an edit: the page says so and keeps the text");
  await byId(a, v.id).locator("[data-control=restore]").click();
  // The new task can show up live before the answer to its POST closes the draft: wait for
  // both (the draft's row gone, the new one there), not for the first row with the title.
  await byId(a, v.id).waitFor({ state: "detached", timeout: 5000 });
  await row(a, "Fix the bike: new chain").waitFor({ timeout: 5000 });
  // The row shows at once; the POST behind it may still be on its way: ask until it is stored.
  const restored = await until(async () => (await call("GET", "/tasks?limit=100", { token: user.token })).json.items.find((i) => i.title === "Fix the bike: new chain"), 5000);
  check(!!restored && restored.id !== v.id, "…and saves it as a new task on request");

  // ---- failures keep what was typed -----------------------------------------------------------
  await a.context().setOffline(true);
  await a.fill("#new-title", "Call the plumber");
  await a.click("#add");
  const addError = a.locator("#add-form .form-error");
  await addError.waitFor({ timeout: 10000 });
  check(/offline/.test(await addError.innerText()) && (await a.inputValue("#new-title")) === "Call the plumber", `an offline add keeps the text and says why: "${await addError.innerText()}"`);
  await byId(a, u.id).locator("[data-control=edit]").click();
  await byId(a, u.id).locator("[data-control=title]").fill("Renew passport, offline edit");
  await byId(a, u.id).locator("[data-control=save]").click();
  await byId(a, u.id).locator(".form-error").waitFor({ timeout: 10000 });
  check((await byId(a, u.id).locator("[data-control=title]").inputValue()) === "Renew passport, offline edit", "an offline save keeps the edit open with its text");
  await a.context().setOffline(false);
  await a.click("#add");
  await row(a, "Call the plumber").waitFor({ timeout: 10000 });
  check((await a.inputValue("#new-title")) === "", "back online, the same add went through and the box emptied");
  await byId(a, u.id).locator("[data-control=save]").click();
  await byId(a, u.id).locator(".title", { hasText: "Renew passport, offline edit" }).waitFor({ timeout: 10000 });
  check(true, "back online, the same save went through");

  // An add whose answer is lost on the way back (the server did create it): the page must not
  // leave it in the box to be sent twice. The request really reaches the server; only the
  // answer is cut off.
  let cut = 0;
  await a.route("**/tasks", async (route) => {
    if (route.request().method() !== "POST" || cut++) return route.continue();
    await route.fetch();
    await route.abort("connectionreset");
  });
  await a.fill("#new-title", "Answer lost on the way");
  await a.click("#add");
  await a.locator(".toast", { hasText: "was added after all" }).waitFor({ timeout: 10000 });
  const lost = (await call("GET", "/tasks?limit=100", { token: user.token })).json.items.filter((i) => i.title === "Answer lost on the way");
  check(cut === 1 && lost.length === 1 && (await a.inputValue("#new-title")) === "",
    "an add whose answer was cut off: the task arrived live, the page said so and emptied the box (one task on the server)");
  await a.unroute("**/tasks");

  // A slow network: Enter twice on one title sends it once; the next title can be typed and
  // added while the first is on its way; the box empties once both are in.
  await a.route("**/tasks", async (route) => {
    if (route.request().method() === "POST") await new Promise((r) => setTimeout(r, 700));
    await route.continue();
  });
  await a.fill("#new-title", "Slow one");
  await a.press("#new-title", "Enter");
  await a.press("#new-title", "Enter");
  await a.fill("#new-title", "Slow two");
  await a.press("#new-title", "Enter");
  await row(a, "Slow two").waitFor({ timeout: 10000 });
  await until(async () => (await a.inputValue("#new-title")) === "", 5000);
  await a.unroute("**/tasks");
  const slow = (await call("GET", "/tasks?limit=100", { token: user.token })).json.items.filter((i) => i.title.startsWith("Slow "));
  check(slow.length === 2 && (await a.inputValue("#new-title")) === "", "slow adds: Enter twice sent one task, the next one went meanwhile, the box emptied after both");

  // ---- limits, and the server's 422 at its field ----------------------------------------------
  const before = (await call("GET", "/tasks?limit=100", { token: user.token })).json.items.length;
  const long = "x".repeat(5000);
  await a.fill("#new-title", long);
  check((await a.locator("#new-title-count").innerText()).includes("5000 / 200"), "a 5,000-character title shows its count against the limit");
  await a.click("#add");
  const titleError = a.locator("#new-title-error");
  await titleError.waitFor();
  check(/4800 characters too long/.test(await titleError.innerText()) && (await a.inputValue("#new-title")).length === 5000,
    "…and is refused at the field, not cut: the 5,000 characters stay in the box");
  await a.fill("#new-title", "    ");
  await a.click("#add");
  await a.locator("#new-title-error", { hasText: "can't be empty" }).waitFor();
  check(await a.evaluate(() => document.activeElement?.id === "new-title"), "a title of spaces is refused at the field, with focus on it");
  await a.fill("#new-title", "From the year 10000");
  await a.click("#add-details-toggle");
  await a.evaluate(() => {
    const due = document.getElementById("new-due");
    due.value = "10000-01-01T10:00";
    due.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await a.click("#add");
  const dueError = a.locator("#new-due-error");
  await dueError.waitFor({ timeout: 5000 });
  check(/Due date must be an RFC 3339 date-time/.test(await dueError.innerText()) && (await a.inputValue("#new-title")) === "From the year 10000",
    `the server's 422 detail is shown at the field it names: "${await dueError.innerText()}"`);
  await a.fill("#new-description", "d".repeat(9500));
  check((await a.locator("#new-description-count").innerText()).includes("9500 / 10000"), "the description shows its counter near the limit");
  const after = (await call("GET", "/tasks?limit=100", { token: user.token })).json.items.length;
  check(after === before, "none of the refused adds created a task");

  noErrors(a, b);
});
