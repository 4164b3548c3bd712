// Every screen of the page, on a desktop and a phone, light and dark: axe-core finds no serious
// or critical violation, touch targets on the phone are at least 44 px, and a screenshot of
// each lands in ARTIFACT_DIR as web-<screen>-<desktop|phone>-<light|dark>.png (the ones in
// docs/img/web/ come from here).
"use strict";
const { check, until, call, newUser, createTask, newPage, signIn, axe, shot, noErrors, run, base, DESKTOP, PHONE } = require("./lib.cjs");

const HOUR = 3600 * 1000;
const at = (ms) => new Date(Date.now() + ms).toISOString();

/// A believable list: due soon, overdue, in progress, done, priorities, descriptions; two
/// reminders (due soon, overdue) arrive as notifications.
async function seed(user) {
  const tomorrow9 = new Date();
  tomorrow9.setDate(tomorrow9.getDate() + 1);
  tomorrow9.setHours(9, 0, 0, 0);
  const made = {};
  made.milk = await createTask(user, { title: "Buy oat milk and coffee beans" });
  await call("PATCH", `/tasks/${made.milk.id}`, { token: user.token, body: { status: "done" } });
  made.lisbon = await createTask(user, { title: "Book flights to Lisbon", priority: "low", description: "Window seat; check the baggage allowance." });
  made.passport = await createTask(user, { title: "Renew passport", due_at: at(-26 * HOUR), description: "Two photos, the old passport and the form." });
  made.report = await createTask(user, { title: "Write the quarterly report", due_at: at(40 * 60 * 1000) });
  await call("PATCH", `/tasks/${made.report.id}`, { token: user.token, body: { status: "in_progress", description: "Figures from finance are in the shared folder." } });
  await call("PATCH", `/tasks/${made.report.id}`, { token: user.token, body: { priority: "high" } });
  made.rent = await createTask(user, { title: "Pay rent", priority: "high", due_at: tomorrow9.toISOString(), description: "Transfer before 10:00 so it lands today." });
  // The reminders come from the scheduler through Kafka and the notification consumer.
  await until(async () => (await call("GET", "/notifications", { token: user.token })).json.unread_count >= 2, 30000, 250);
  return made;
}

/// Every visible control on the page at least 44×44 px (WCAG 2.5.5, as the issue asks on touch).
async function targets(page, what) {
  const small = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, input, select, textarea, a[href], [tabindex='0']")) {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (!r.width || !r.height || style.visibility === "hidden" || el.closest("[hidden]") || el.classList.contains("skip")) continue;
      if (r.width < 43.5 || r.height < 43.5) out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ? "." + String(el.className).split(" ")[0] : ""} ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return out;
  });
  check(small.length === 0, `phone, ${what}: every control is at least 44×44 px` + (small.length ? ": " + small.join(", ") : ""));
}

run("screen", async (browser) => {
  const user = await newUser("screens", { email: "ana@example.com" });
  const made = await seed(user);
  // Phone pictures at 1 device pixel a CSS pixel: readable, and a third of the bytes.
  for (const [device, options] of [["desktop", DESKTOP], ["phone", { ...PHONE, deviceScaleFactor: 1 }]]) {
    for (const scheme of ["light", "dark"]) {
      const name = (screen) => `web-${screen}-${device}-${scheme}`;
      const what = (screen) => `${screen} (${device}, ${scheme})`;
      const page = await newPage(browser, { ...options, colorScheme: scheme, timezoneId: "Europe/Lisbon", locale: "en-GB" });

      await page.goto(base + "/");
      await page.locator("#email").waitFor();
      await shot(page, name("signin"));
      await axe(page, what("sign-in"));
      if (device === "phone") await targets(page, "sign-in");

      await signIn(page, user);
      await page.locator(`[data-task-id="${made.rent.id}"]`).waitFor();
      await page.locator("#notifications-button .badge").waitFor({ timeout: 10000 });
      await page.evaluate(() => window.taskstream.store.state.toasts.splice(0)); // no reminder toast in the picture
      await page.evaluate(() => document.activeElement?.blur());
      await page.waitForTimeout(50);
      await shot(page, name("list"));
      await axe(page, what("the list"));
      if (device === "phone") await targets(page, "the list");

      const rent = page.locator(`[data-task-id="${made.rent.id}"]`);
      await rent.locator("[data-control=edit]").click();
      await rent.locator("[data-control=title]").fill("Pay rent and the water bill");
      await rent.evaluate((el) => el.scrollIntoView({ block: "center" }));
      await shot(page, name("edit"));
      await axe(page, what("an edit"));
      if (device === "phone") await targets(page, "an edit");

      // The conflict: the same task changed elsewhere meanwhile.
      const current = (await call("GET", `/tasks/${made.rent.id}`, { token: user.token })).json;
      await call("PATCH", `/tasks/${made.rent.id}`, { token: user.token, body: { title: "Pay rent (standing order)", priority: "medium" }, headers: { "If-Match": `"${current.version}"` } });
      await rent.locator(".notice").waitFor({ timeout: 5000 });
      await rent.locator("[data-control=save]").click();
      await rent.locator(".conflict").waitFor({ timeout: 5000 });
      await rent.evaluate((el) => el.scrollIntoView({ block: "center" }));
      await shot(page, name("conflict"));
      await axe(page, what("the conflict view"));
      if (device === "phone") await targets(page, "the conflict view");
      await rent.locator("[data-control=take-theirs]").click();
      await call("PATCH", `/tasks/${made.rent.id}`, { token: user.token, body: { title: "Pay rent", priority: "high" } });

      await page.locator(`[data-task-id="${made.report.id}"] [data-control=history]`).click();
      await page.locator("dialog.history .timeline > li").nth(2).waitFor({ timeout: 10000 });
      await shot(page, name("history"));
      await axe(page, what("a history"));
      if (device === "phone") await targets(page, "a history");
      await page.keyboard.press("Escape");

      await page.click("#notifications-button");
      await page.locator("dialog.notifications li").nth(1).waitFor({ timeout: 10000 });
      await shot(page, name("notifications"));
      await axe(page, what("the notifications"));
      if (device === "phone") await targets(page, "the notifications");
      await page.keyboard.press("Escape");

      // Keyboard shortcuts are for keyboards: the button is not shown on touch screens.
      if (device === "desktop") {
        await page.click("#shortcuts-button");
        await page.locator("dialog.shortcuts").waitFor();
        await shot(page, name("shortcuts"));
        await axe(page, what("the shortcuts"));
        await page.keyboard.press("Escape");
      }

      noErrors(page);
      await page.context().close();
    }
  }
});
