// Notifications (docs/web.md, "Notifications"): a reminder for a task whose due date was set
// on the page arrives live (a toast, the unread badge), the panel shows it in local time, one
// can be marked read, then all (POST /notifications/read-all); what came while the socket was
// down shows after it reconnects.
"use strict";
const { check, until, call, newUser, createTask, newPage, signIn, noErrors, run } = require("./lib.cjs");

const pad = (n) => String(n).padStart(2, "0");
/// "YYYY-MM-DDTHH:MM" in the page's zone (America/New_York here), `minutes` from now.
function localInput(minutes) {
  const d = new Date(Date.now() + minutes * 60000);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

async function unread(user) {
  return (await call("GET", "/notifications?limit=50", { token: user.token })).json.unread_count;
}

run("notification", async (browser) => {
  const user = await newUser("notify");
  const page = await newPage(browser, { timezoneId: "America/New_York" });
  await signIn(page, user);
  check((await page.locator("#notifications-button .badge").count()) === 0, "no unread badge before any notification");

  // A due date 30 minutes ahead, set on the page: within the reminder lead (1 h), so the
  // scheduler sends a "due soon" reminder, which comes back over the socket.
  await page.click("#add-details-toggle");
  await page.fill("#new-title", "Call the bank");
  await page.fill("#new-due", localInput(30));
  await page.click("#add");
  await page.locator("#tasks > li", { hasText: "Call the bank" }).waitFor();
  const toast = page.locator(".toast.notification", { hasText: "Due soon: Call the bank" });
  await toast.waitFor({ timeout: 30000 });
  check(!/\d{4}-\d{2}-\d{2}T/.test(await toast.innerText()), `the reminder arrived live as a toast, times in local words: "${(await toast.innerText()).trim()}"`);
  await page.locator("#notifications-button .badge", { hasText: "1" }).waitFor({ timeout: 5000 });
  check((await page.getAttribute("#notifications-button", "aria-label")) === "Notifications, 1 unread", "the bell shows 1 unread, and says so to screen readers");

  await toast.locator("button", { hasText: "Show" }).click();
  const panel = page.locator("dialog.notifications");
  await panel.waitFor();
  const item = panel.locator("li.unread", { hasText: "Due soon: Call the bank" });
  await item.waitFor();
  const text = await item.innerText();
  check(!/\d{4}-\d{2}-\d{2}T/.test(text) && /(Today|Tomorrow) \d{1,2}:\d{2}/.test(text), `the panel shows it with local times: "${text.replace(/\s+/g, " ")}"`);
  await until(async () => (await unread(user)) === 1, 10000);
  await item.locator("[data-control=mark-read]").click();
  await panel.locator("li.read", { hasText: "Due soon: Call the bank" }).waitFor();
  await until(async () => (await unread(user)) === 0, 5000);
  check((await unread(user)) === 0 && (await page.locator("#notifications-button .badge").count()) === 0, "mark read: stored as read, the badge is gone");
  await page.keyboard.press("Escape");
  await panel.waitFor({ state: "detached" });
  check(await page.evaluate(() => document.activeElement?.id === "notifications-button"), "Escape closed the panel; focus is back on the bell");

  // Two more while the socket is down: they show after it comes back.
  await page.evaluate(() => window.taskstream.dropSocket(60000));
  await page.locator("#live", { hasText: "Reconnecting…" }).waitFor();
  const past = new Date(Date.now() - 60000).toISOString();
  await createTask(user, { title: "Renew the parking permit", due_at: past });
  await createTask(user, { title: "Send the invoice", due_at: new Date(Date.now() + 10 * 60000).toISOString() });
  await until(async () => (await unread(user)) === 2, 30000, 250);
  check((await unread(user)) === 2, "two reminders stored while the page was away");
  await page.evaluate(() => window.taskstream.store.liveSocket.reconnectNow());
  await page.locator("#notifications-button .badge", { hasText: "2" }).waitFor({ timeout: 10000 });
  check(true, "after reconnecting, the badge counts the two that came meanwhile");
  await page.click("#notifications-button");
  await panel.locator("li.unread").nth(1).waitFor();
  await page.click("#mark-all-read");
  await until(async () => (await unread(user)) === 0, 5000);
  await until(async () => (await panel.locator("li.unread").count()) === 0, 5000);
  const left = await panel.locator("li.unread").allInnerTexts();
  const stored = (await call("GET", "/notifications?limit=50", { token: user.token })).json;
  check(left.length === 0 && stored.unread_count === 0,
    `mark all read: none unread on the page or the server (page: ${JSON.stringify(left)}; server: ${stored.unread_count} of ${stored.items.length})`);
  await page.keyboard.press("Escape");

  noErrors(page);
});
