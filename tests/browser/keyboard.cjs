// Keyboard and accessibility behaviour (docs/web.md, "Keyboard and accessibility"): the
// shortcuts, focus on the next sensible control after each action, controls named for their
// task, visible focus, reduced motion and dark mode from the system.
"use strict";
const { check, until, call, newUser, newPage, signIn, row, noErrors, run } = require("./lib.cjs");

const focused = (page) =>
  page.evaluate(() => {
    const el = document.activeElement;
    return { id: el?.id ?? "", control: el?.dataset?.control ?? "", task: el?.closest?.("[data-task-id]")?.querySelector(".title")?.textContent ?? "" };
  });

run("keyboard", async (browser) => {
  const user = await newUser("keys");
  const page = await newPage(browser, { reducedMotion: "no-preference" });
  await signIn(page, user);

  // n: new task; Enter adds and keeps the focus in the box for the next one.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press("n");
  check((await focused(page)).id === "new-title", "N focuses the new task box");
  for (const t of ["Alpha", "Bravo", "Charlie", "Delta"]) {
    await page.keyboard.type(t);
    await page.keyboard.press("Enter");
    await row(page, t).waitFor();
  }
  check((await focused(page)).id === "new-title", "after Enter adds a task, focus stays in the box");

  // Leave the box; j/k move between rows in the order shown (newest first; two tasks added in
  // the same millisecond keep no particular order between them, so the test reads the order).
  const order = await page.evaluate(() => [...document.querySelectorAll("#tasks > li[data-task-id] .title")].map((e) => e.textContent));
  const created = await page.evaluate(() => [...window.taskstream.state.tasks.values()].map((t) => t.created_at.slice(17, 23)).sort().join(" "));
  check(order.length === 4 && new Set(order).size === 4, `the four tasks are listed (${order.join(", ")}; created at seconds ${created})`);
  const [first, second] = order;
  await page.keyboard.press("Tab");
  await page.keyboard.press("j");
  check((await focused(page)).task === first, `J goes to the first task (${first})`);
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  await page.keyboard.press("k");
  const afterJk = await focused(page);
  check(afterJk.task === second, `J and K move down and up (focus on "${afterJk.task}" ${afterJk.control || afterJk.id}; rows: ${order.join(", ")})`);
  const outline = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  check(outline.style === "solid" && outline.width >= 2, `the focused control has a visible outline (${outline.style} ${outline.width}px)`);

  // x completes; focus stays on it (All shows done tasks).
  await page.keyboard.press("x");
  await row(page, second).locator(".complete:checked").waitFor();
  check((await focused(page)).task === second && (await focused(page)).control === "check", "X completes the task; focus stays on it");
  // s: next status.
  await page.keyboard.press("k");
  await page.keyboard.press("s");
  await row(page, first).locator(".chip.progress").waitFor();
  check(true, "S moves the task to in progress");

  // e edits; Enter saves; focus back on the row's Edit button.
  await page.keyboard.press("e");
  check((await focused(page)).control === "title", "E opens the edit with focus in the title");
  await page.keyboard.press("End");
  await page.keyboard.type(" (renamed)");
  await page.keyboard.press("Enter");
  await row(page, `${first} (renamed)`).waitFor();
  check((await focused(page)).task === `${first} (renamed)` && (await focused(page)).control === "edit", "Enter saved; focus is on the task's Edit button");

  // The answer to an add can come after the task arrived live: the user who moved on to a row
  // meanwhile keeps the focus there (it once pulled the focus back to the box).
  let held = null;
  await page.route("**/tasks", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    const answer = await route.fetch();
    await new Promise((r) => (held = r));
    await route.fulfill({ response: answer });
  });
  await page.keyboard.press("n");
  await page.keyboard.type("Echo");
  await page.keyboard.press("Enter");
  await row(page, "Echo").waitFor(); // live, before its answer
  check(await until(() => held !== null), "the add's answer is held back while the task shows live");
  await page.keyboard.press("Tab");
  await page.keyboard.press("j");
  const late = page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/tasks"));
  held();
  await late;
  await page.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  const afterLate = await focused(page);
  check(afterLate.task === "Echo" && afterLate.control === "check", `a late answer to an add leaves the focus on the task the user moved to (${afterLate.task || afterLate.id})`);
  await page.unroute("**/tasks");
  await page.keyboard.press("j"); // back where the flow was: the renamed task's Edit button
  await page.keyboard.press("Tab");

  // h opens the history; Escape closes it, back on the History button.
  await page.keyboard.press("h");
  await page.locator("dialog.history").waitFor();
  await page.keyboard.press("Escape");
  await page.locator("dialog.history").waitFor({ state: "detached" });
  check((await focused(page)).control === "history", "H opens the history; Escape closes it, focus back on History");

  // Delete deletes with undo; focus goes to the next row; u undoes.
  await page.keyboard.press("j");
  const victim = (await focused(page)).task;
  await page.keyboard.press("Delete");
  await row(page, victim).waitFor({ state: "detached" });
  const next = await focused(page);
  check(next.task && next.task !== victim, `Delete removed "${victim}"; focus is on the next task ("${next.task}")`);
  const toast = page.locator(".toast.undo");
  check((await toast.evaluate((el) => getComputedStyle(el).animationName)) === "rise", "the toast slides in (motion allowed)");
  await page.keyboard.press("u");
  await row(page, victim).waitFor();
  check((await focused(page)).task === victim, "U undid the delete; focus is on the restored task");

  // 1-4: filters.
  await page.keyboard.press("4");
  check((await page.getAttribute("[data-filter=done]", "aria-pressed")) === "true" && (await page.locator("#tasks > li").count()) === 1, "4 shows Done");
  await page.keyboard.press("1");
  check((await page.locator("#tasks > li").count()) === 5, "1 shows All");

  // ? and b open their dialogs; focus returns to their buttons.
  await page.keyboard.press("?");
  await page.locator("dialog.shortcuts").waitFor();
  await page.keyboard.press("Escape");
  check((await focused(page)).id === "shortcuts-button", "? lists the shortcuts; Escape returns to its button");
  await page.keyboard.press("b");
  await page.locator("dialog.notifications").waitFor();
  await page.keyboard.press("Escape");
  check((await focused(page)).id === "notifications-button", "B opens the notifications; Escape returns to the bell");
  await page.keyboard.press("/");
  check((await focused(page)).id === "search", "/ focuses the search");

  // Every control is named for its task.
  const names = await page.locator("#tasks [data-control]").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
  check(new Set(names).size === names.length && names.every((n) => /“.+”/.test(n)), `each row's controls are named for their task (${names.length} names, all different)`);

  // Reduced motion and dark mode come from the system.
  const calm = await newPage(browser, { reducedMotion: "reduce", colorScheme: "dark" });
  await signIn(calm, user);
  await row(calm, "Alpha").locator("[data-control=delete]").click();
  const calmToast = calm.locator(".toast.undo");
  await calmToast.waitFor();
  check((await calmToast.evaluate((el) => getComputedStyle(el).animationName)) === "none", "with prefers-reduced-motion the toast does not move");
  await calmToast.locator("button", { hasText: "Undo" }).click();
  const bg = await calm.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  check(r + g + b < 120, `prefers-color-scheme: dark gives a dark page (${bg})`);
  await until(async () => (await call("GET", "/tasks", { token: user.token })).json.items.length === 4);

  noErrors(page, calm);
});
