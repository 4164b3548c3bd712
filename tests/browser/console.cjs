// The operations console (/console) in Chromium, in two phases the C++ test sets up
// (tests/integration/console_browser_test.cpp):
//   PHASE=lag      the audit group's worker is stopped with LAG events behind it and three
//                  poison messages dead-lettered: sign-in rules, the live feed, every view,
//                  lag shown, a filtered dry run, the confirmation naming the count, the
//                  redrive, the log.
//   PHASE=drained  the worker runs again: the page shows the lag fall to 0 by itself.
//   PHASE=backlog / backlog-drained  (tests/robustness/fault_test.cpp) the outbox view while
//                  the broker is down with BACKLOG changes waiting, then after it is back.
//   PHASE=broker-down  (tests/robustness/fault_test.cpp) one of three brokers killed: the
//                  overview and the topics view show TOPIC's under-replicated partitions.
// env: OPS_EMAIL (an ADMIN_EMAILS account, password "correct horse battery"), AUDIT_GROUP,
// TOPIC (the task-events topic), LAG (events behind).
"use strict";
const { base, check, until, newUser, newPage, axe, shot, noErrors, run, PHONE } = require("./lib.cjs");

const ops = { email: process.env.OPS_EMAIL, password: "correct horse battery" };
const group = process.env.AUDIT_GROUP;
const topic = process.env.TOPIC;
const lag = Number(process.env.LAG);

async function signInConsole(page, user) {
  await page.goto(base + "/console");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function view(page, hash, heading) {
  await page.getByRole("link", { name: heading }).click();
  await page.waitForFunction((h) => location.hash === h, "#" + hash);
}

run("console " + process.env.PHASE, async (browser) => {
  const page = await newPage(browser);
  if (process.env.PHASE === "backlog" || process.env.PHASE === "backlog-drained") {
    // tests/robustness/fault_test.cpp: the broker is down with BACKLOG changes made (backlog),
    // then up again (backlog-drained). The outbox view shows the rows waiting, then none.
    const want = Number(process.env.BACKLOG);
    await signInConsole(page, ops);
    await view(page, "outbox", "Outbox and relay");
    const waiting = page.locator("dl.figures div", { hasText: "Waiting" }).locator("dd");
    const read = async () => Number((await waiting.innerText().catch(() => "-1")).replace(/[^0-9]/g, "") || -1);
    if (process.env.PHASE === "backlog") {
      check(await until(async () => (await read()) >= want, 30000, 250), `the outbox view shows at least ${want} events waiting while the broker is down`);
      await shot(page, "console-outbox-backlog");
    } else {
      check(await until(async () => (await read()) === 0, 120000, 500), "the outbox view shows the backlog drained once the broker is back");
      const chart = page.getByRole("img", { name: /Events waiting in the outbox/ });
      check((await chart.count()) === 1, "the waiting chart is there");
      await shot(page, "console-outbox-drained");
    }
    await axe(page, "the outbox view");
    noErrors(page);
    return;
  }
  if (process.env.PHASE === "broker-down") {
    // tests/robustness/fault_test.cpp: three brokers, one SIGKILLed. The overview's topics box
    // asks for attention; the topics view marks the partitions that lost a replica.
    await signInConsole(page, ops);
    const box = page.locator("li.stage", { has: page.getByRole("heading", { name: "Topics", exact: true }) });
    check(await until(async () => /Attention/.test(await box.innerText().catch(() => "")) &&
                                  /under-replicated partition\(s\)/.test(await box.innerText()), 30000, 250),
          "the overview's topics box asks for attention: under-replicated partitions");
    check(/2 broker\(s\)/.test(await box.innerText()), "and counts two brokers");
    await shot(page, "console-overview-broker-down");
    await view(page, "topics", "Topics");
    const row = page.locator("section.card tbody tr", { has: page.locator("th", { hasText: new RegExp(`^${topic}$`) }) });
    check(await until(async () => (await row.locator("li.bad", { hasText: "under-replicated" }).count()) > 0, 15000, 250),
          "the topics view marks the topic's under-replicated partitions");
    check((await row.getAttribute("class")) === "lagging", "and highlights the topic");
    await shot(page, "console-topics-broker-down");
    await axe(page, "the topics view with a broker down");
    noErrors(page);
    return;
  }
  if (process.env.PHASE === "drained") {
    await signInConsole(page, ops);
    await view(page, "groups", "Consumer groups");
    const card = page.locator("section.card", { has: page.getByRole("heading", { name: group }) });
    const drained = await until(async () => /lag 0 ·/.test(await card.innerText().catch(() => "")), 90000, 500);
    check(drained, "the audit group's lag falls to 0 in the page by itself once its worker runs again");
    check(/OK/.test(await card.getByRole("heading").innerText()), "and the group is OK again");
    check((await card.locator("canvas").count()) > 0, "its lag chart is drawn");
    await shot(page, "console-groups-drained");
    noErrors(page);
    return;
  }

  // Sign-in: a user who is not an operator is told so; an operator gets in.
  const someone = await newUser("not-ops");
  await signInConsole(page, someone);
  await page.getByRole("alert").filter({ hasText: "not an operator" }).waitFor({ timeout: 10000 });
  check(true, "an account that is not an operator is told so on the sign-in form");
  await shot(page, "console-signin-refused");
  await axe(page, "the console's sign-in");
  await signInConsole(page, ops);

  // The live feed: the page says it is live, and new samples arrive without the page asking
  // for the overview (it asks only while the feed is down).
  const feed = page.locator("[data-feed]");
  check(await until(async () => (await feed.getAttribute("data-feed").catch(() => "")) === "live", 15000, 250),
        "the header says the console is live (the /admin/live feed is open)");
  let overviewAsked = 0;
  page.on("request", (r) => { if (new URL(r.url()).pathname === "/admin/overview") overviewAsked++; });
  const meta = page.locator("header .meta");
  const sampledText = async () => ((await meta.innerText().catch(() => "")).match(/sampled ([^·]+)/) || [])[1];
  const first = await sampledText();
  check(await until(async () => (await sampledText()) !== first, 15000, 250), "a new sample shows up by itself");
  check(overviewAsked === 0, `pushed by the live feed: the page did not ask for /admin/overview (${overviewAsked} times)`);
  const effects = page.locator("li.stage", { has: page.getByRole("heading", { name: "Effects" }) });
  check(/audit entries/.test(await effects.innerText()) && /live updates/.test(await effects.innerText()),
        "the pipeline ends with its effects: audit entries, notifications, live updates");

  // Overview: the audit group is stuck with the lag behind it.
  const audit = page.locator("li.group", { hasText: group });
  const seen = await until(async () => {
    const t = await audit.innerText().catch(() => "");
    return /Stuck/.test(t) && t.includes(`lag ${lag.toLocaleString("en-US")}`) ? t : null;
  }, 30000, 250);
  check(!!seen, `the overview shows the audit group stuck with lag ${lag}: ${seen}`);
  check(/no member consuming/.test(seen), "and says why");
  await page.locator("ol.pipeline").waitFor();
  await shot(page, "console-overview");
  await axe(page, "the overview");

  // Consumer groups: partitions, lag, chart.
  await view(page, "groups", "Consumer groups");
  const card = page.locator("section.card", { has: page.getByRole("heading", { name: group }) });
  await card.waitFor({ timeout: 10000 });
  const text = await card.innerText();
  check(text.includes(`lag ${lag.toLocaleString("en-US")}`), "the groups view shows the group's lag");
  check(/No member: nobody consumes/.test(text), "and that nobody consumes it");
  check((await card.locator("tbody tr.lagging").count()) >= 2, "lagging partitions are highlighted");
  check((await card.locator("canvas").count()) > 0, "the lag chart is drawn");
  await shot(page, "console-groups");
  await axe(page, "the consumer groups");

  for (const [hash, name, file] of [["outbox", "Outbox and relay", "console-outbox"], ["topics", "Topics", "console-topics"],
                                    ["http", "HTTP", "console-http"], ["email", "Email queue", "console-email"]]) {
    await view(page, hash, name);
    await page.locator("section.card").first().waitFor({ timeout: 10000 });
    await shot(page, file);
    await axe(page, "the view " + name);
  }
  const topicsText = await (async () => {
    await view(page, "topics", "Topics");
    // The view shows the card once /admin/topics answers, which takes longer on a broker
    // holding hundreds of topics (the suite's own): wait for this deployment's topic in it
    // rather than reading whatever card is on screen at the moment of the click.
    const card = page.locator("section.card", { hasText: topic });
    await card.waitFor({ timeout: 20000 }).catch(() => {});
    return page.locator("section.card").first().innerText();
  })();
  check(topicsText.includes(topic) && topicsText.includes("leader"), "the topics view lists partitions with their leader");

  // Dead letters: the three reasons, a filtered dry run, a redrive after a confirmation.
  await view(page, "dlq", "Dead letters");
  await page.getByLabel("Topic").selectOption(topic);
  const rows = page.locator("section.card tbody tr");
  check(await until(async () => (await rows.count()) === 3, 15000), "the topic's three dead letters are listed");
  const all = await page.locator("section.card tbody").innerText();
  check(["bad_json", "schema", "unknown_type"].every((r) => all.includes(r)), "with their three reasons");
  await page.getByLabel("Filter").fill("reason=schema");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  check(await until(async () => (await rows.count()) === 1, 15000), "the filter reason=schema leaves one");
  await page.getByRole("button", { name: /Show payload/ }).click();
  const payload = page.locator("pre.payload");
  check((await payload.innerText()).includes("(hidden)"), "the payload's user id is masked");
  await page.getByRole("button", { name: "Show user id" }).click();
  check((await payload.innerText()).includes('"user_id": "u"'), "and shown when asked");
  await page.getByRole("button", { name: "Dry run" }).click();
  const confirm = page.getByRole("alertdialog");
  await confirm.waitFor({ timeout: 15000 });
  check(/Send 1 dead letter\(s\) matching reason=schema back to/.test(await confirm.innerText()), "the confirmation names the count");
  await shot(page, "console-dlq");
  await axe(page, "the dead letters with a confirmation open");
  await confirm.getByRole("button", { name: "Redrive 1" }).click();
  await page.getByRole("status").filter({ hasText: "Sent 1 dead letter(s) back" }).waitFor({ timeout: 15000 });
  check(true, "the redrive sends the one letter");

  await view(page, "actions", "Action log");
  const log = page.locator("section.card tbody");
  check(await until(async () => /dlq\.redrive/.test(await log.innerText().catch(() => "")), 10000), "the action log shows the redrive");
  const logText = await log.innerText();
  check(logText.includes(ops.email) && /dlq\.dry_run/.test(logText), "with who did it, and the dry run before it");
  await shot(page, "console-actions");
  await axe(page, "the action log");
  noErrors(page);

  // Phone and dark.
  const phone = await newPage(browser, PHONE);
  await signInConsole(phone, ops);
  await phone.locator("ol.pipeline").waitFor({ timeout: 15000 });
  await shot(phone, "console-overview-phone");
  await axe(phone, "the overview on a phone");
  const dark = await newPage(browser, { colorScheme: "dark" });
  await signInConsole(dark, ops);
  await view(dark, "groups", "Consumer groups");
  await dark.locator("section.card canvas").first().waitFor({ timeout: 15000 });
  await shot(dark, "console-groups-dark");
  await axe(dark, "the groups in dark mode");
  noErrors(phone, dark);
});
