// The whole task and finding tasks (docs/web.md, "Tasks"): description, priority, status, a
// due date entered and shown in the browser's zone (here Asia/Kolkata, UTC+05:30) and stored
// in UTC; overdue and due-soon marks; filters with counts, search, sort; delete and clear
// completed with undo (and really deleted after the undo window); a long list paged along
// the API's cursor.
"use strict";
const { check, until, call, newUser, createTask, newPage, signIn, row, noErrors, run } = require("./lib.cjs");

const ZONE = { timezoneId: "Asia/Kolkata", locale: "en-US" };
const byId = (page, id) => page.locator(`[data-task-id="${id}"]`);
const visibleTitles = (page) => page.locator("#tasks > li .title").allInnerTexts();

run("task", async (browser) => {
  const user = await newUser("tasks");
  const page = await newPage(browser, ZONE);
  const other = await newPage(browser, ZONE);
  await signIn(page, user);
  await signIn(other, user);

  // ---- the whole task, due date in the browser's zone ---------------------------------------
  await page.click("#add-details-toggle");
  await page.fill("#new-title", "Dentist appointment");
  await page.fill("#new-description", "Bring the insurance card");
  await page.selectOption("#new-priority", "high");
  await page.fill("#new-due", "2031-03-04T09:30");
  await page.click("#add");
  const dentist = row(page, "Dentist appointment");
  await dentist.waitFor();
  const id = await dentist.getAttribute("data-task-id");
  let t = (await call("GET", `/tasks/${id}`, { token: user.token })).json;
  check(t.due_at === "2031-03-04T04:00:00.000Z", `09:30 in Asia/Kolkata was stored as UTC ${t.due_at}`);
  check(t.description === "Bring the insurance card" && t.priority === "high" && t.status === "todo", "description and priority stored");
  const meta = await dentist.locator(".meta").innerText();
  check(/High priority/.test(meta) && /9:30 AM/.test(meta) && /Mar 4|4 Mar/.test(meta), `the row shows priority and the local due time: "${meta.replace(/\s+/g, " ")}"`);
  check((await dentist.locator(".desc").innerText()) === "Bring the insurance card", "the row shows the description");

  await dentist.locator("[data-control=edit]").click();
  const due = byId(page, id).locator("[data-control=due]");
  check((await due.inputValue()) === "2031-03-04T09:30", "the edit shows the due date back in local time");
  await due.fill("2031-03-05T18:15");
  await byId(page, id).locator("[data-control=status]").selectOption("in_progress");
  await byId(page, id).locator("[data-control=save]").click();
  await byId(page, id).locator(".chip.progress").waitFor();
  t = (await call("GET", `/tasks/${id}`, { token: user.token })).json;
  check(t.due_at === "2031-03-05T12:45:00.000Z" && t.status === "in_progress", `moved to 18:15 local = ${t.due_at}, status in progress`);
  await byId(other, id).locator(".chip.progress").waitFor({ timeout: 5000 });
  check(/6:15 PM/.test(await byId(other, id).locator(".meta").innerText()), "the other page shows the new due time and status live");

  // ---- overdue and due soon -------------------------------------------------------------------
  const hour = 3600 * 1000;
  const late = await createTask(user, { title: "Submit the tax form", due_at: new Date(Date.now() - hour).toISOString() });
  const soon = await createTask(user, { title: "Water the plants", due_at: new Date(Date.now() + 3 * hour).toISOString(), priority: "low" });
  const plain = await createTask(user, { title: "Read a book" });
  await byId(page, plain.id).waitFor({ timeout: 5000 });
  check((await byId(page, late.id).getAttribute("class")).includes("overdue") && /Overdue/.test(await byId(page, late.id).innerText()), "a task past its due time is marked overdue");
  check((await byId(page, soon.id).getAttribute("class")).includes("soon") && /Due soon/.test(await byId(page, soon.id).innerText()), "a task due within a day is marked due soon");

  // A double click on the checkbox: the second waits for the first answer (no stale If-Match).
  const flip = byId(page, plain.id).locator("[data-control=check]");
  await flip.click();
  await flip.click();
  await until(async () => (await call("GET", `/tasks/${plain.id}`, { token: user.token })).json.version === 3, 5000);
  const flipped = (await call("GET", `/tasks/${plain.id}`, { token: user.token })).json;
  await page.waitForTimeout(300);
  check(flipped.status === "todo" && flipped.version === 3 && (await page.locator(".toast.error").count()) === 0 && !(await flip.isChecked()),
    "two quick clicks on a checkbox: done then not done, in order, no conflict");

  // ---- filters with counts, search, sort ------------------------------------------------------
  await byId(page, plain.id).locator("[data-control=check]").check();
  await byId(page, plain.id).locator(".complete:checked").waitFor();
  const counts = async () => Object.fromEntries(await page.locator(".filter").evaluateAll((bs) => bs.map((b) => [b.dataset.filter, Number(b.querySelector(".n").textContent)])));
  await until(async () => (await counts()).done === 1);
  check(JSON.stringify(await counts()) === JSON.stringify({ all: 4, active: 3, in_progress: 1, done: 1 }), `filter counts ${JSON.stringify(await counts())}`);
  await page.click("[data-filter=active]");
  check(!(await visibleTitles(page)).includes("Read a book") && (await visibleTitles(page)).length === 3, "Active hides the done task");
  await page.click("[data-filter=in_progress]");
  check(JSON.stringify(await visibleTitles(page)) === JSON.stringify(["Dentist appointment"]), "In progress shows the task in progress");
  await page.click("[data-filter=done]");
  check(JSON.stringify(await visibleTitles(page)) === JSON.stringify(["Read a book"]), "Done shows the done task");
  await page.click("[data-filter=all]");
  await page.fill("#search", "insurance");
  check(JSON.stringify(await visibleTitles(page)) === JSON.stringify(["Dentist appointment"]), "search finds a word of the description");
  await page.fill("#search", "PLANTS water");
  check(JSON.stringify(await visibleTitles(page)) === JSON.stringify(["Water the plants"]), "search matches every word, in any case");
  await page.fill("#search", "nothing like this");
  check(/No task matches/.test(await page.locator(".empty").innerText()), "a search with no match says so");
  await page.fill("#search", "");
  await page.selectOption("#sort", "due");
  check(JSON.stringify(await visibleTitles(page)) === JSON.stringify(["Submit the tax form", "Water the plants", "Dentist appointment", "Read a book"]), "sort by due date: soonest first, none last");
  await page.selectOption("#sort", "priority");
  check((await visibleTitles(page))[0] === "Dentist appointment" && (await visibleTitles(page)).at(-1) === "Water the plants", "sort by priority: high first, low last");
  await page.selectOption("#sort", "created");

  // ---- delete with undo -----------------------------------------------------------------------
  await byId(page, late.id).locator("[data-control=delete]").click();
  await byId(page, late.id).waitFor({ state: "detached" });
  await page.locator(".toast", { hasText: "Deleted “Submit the tax form”" }).waitFor();
  check(await page.evaluate(() => !!document.activeElement?.closest("[data-task-id]")), "after a delete, focus is on the next task");
  await page.locator(".toast button", { hasText: "Undo" }).click();
  await byId(page, late.id).waitFor();
  await page.waitForTimeout(5500);
  check((await call("GET", `/tasks/${late.id}`, { token: user.token })).status === 200, "undo within 5 s: the task is back and was never deleted");
  await byId(page, late.id).locator("[data-control=delete]").click();
  await byId(other, late.id).waitFor({ state: "detached", timeout: 10000 });
  check((await call("GET", `/tasks/${late.id}`, { token: user.token })).status === 404, "without undo, the delete is sent after the undo window and reaches the other page");

  // ---- clear completed with undo --------------------------------------------------------------
  await byId(page, soon.id).locator("[data-control=check]").check();
  await until(async () => (await counts()).done === 2);
  await page.click("#clear-completed");
  await byId(page, soon.id).waitFor({ state: "detached" });
  check(!(await visibleTitles(page)).includes("Read a book"), "clear completed took both done tasks off the list");
  await page.keyboard.press("u");
  await byId(page, soon.id).waitFor();
  await byId(page, plain.id).waitFor();
  check((await counts()).done === 2, "U (undo) brought both back");
  await page.click("#clear-completed");
  // The batch's DELETEs go side by side: wait for both.
  const gone = async (id) => (await call("GET", `/tasks/${id}`, { token: user.token })).status === 404;
  await until(async () => (await gone(plain.id)) && (await gone(soon.id)), 10000);
  check((await gone(plain.id)) && (await gone(soon.id)), "cleared for real after the undo window");
  check(JSON.stringify(await counts()) === JSON.stringify({ all: 1, active: 1, in_progress: 1, done: 0 }), "the counts follow");

  // ---- a long list, along the cursor ----------------------------------------------------------
  const many = await newUser("many");
  for (let i = 0; i < 250; i += 25) await Promise.all(Array.from({ length: 25 }, (_, k) => createTask(many, { title: `Task number ${i + k + 1}` })));
  const big = await newPage(browser, ZONE);
  const listCalls = [];
  big.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname === "/tasks" && r.method() === "GET") listCalls.push(u.search);
  });
  await signIn(big, many);
  await until(async () => (await big.locator("[data-filter=all] .n").innerText()) === "250", 10000);
  check((await big.locator("#tasks > li").count()) === 100, "250 tasks: the first 100 rows are shown");
  check(listCalls.length === 3 && listCalls.slice(1).every((s) => s.includes("cursor=")), `the list came in pages along the cursor: ${listCalls.length} requests`);
  await big.click("#show-more");
  check((await big.locator("#tasks > li").count()) === 200, "Show more: 200 rows");
  await big.click("#show-more");
  check((await big.locator("#tasks > li").count()) === 250 && (await big.locator("#show-more").count()) === 0, "Show more again: all 250, and no more button");

  noErrors(page, other, big);
});
