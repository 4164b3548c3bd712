// The operations console at /console (docs/operations.md, "Console"). Every figure comes from
// the operators' API under /admin, which each instance samples every few seconds. The live
// feed (/admin/live, a WebSocket) pushes each new sample's overview; the page then reads the
// view on screen again. While the feed is down the page asks every REFRESH_MS instead, and
// reconnects with a growing pause. Plain ES modules, no build step: Preact + htm for the
// views, uPlot for the charts (all vendored in /static/vendor).
import { h, render } from "/static/vendor/preact.mjs";
import { useEffect, useRef, useState, useCallback } from "/static/vendor/hooks.mjs";
import htm from "/static/vendor/htm.mjs";
import uPlot from "/static/vendor/uplot.mjs";

const html = htm.bind(h);
const TOKEN_KEY = "taskstream.token"; // shared with the task page: one sign-in serves both
const REFRESH_MS = 5000;

const VIEWS = [
  ["overview", "Overview"],
  ["groups", "Consumer groups"],
  ["outbox", "Outbox and relay"],
  ["topics", "Topics"],
  ["dlq", "Dead letters"],
  ["email", "Email queue"],
  ["http", "HTTP"],
  ["actions", "Action log"],
];
const HEALTH = { ok: "OK", warn: "Attention", stuck: "Stuck" };

// ---- the API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const token = localStorage.getItem(TOKEN_KEY);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The server cannot be reached. The console tries again by itself.");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, (data && (data.detail || data.title)) || `HTTP ${res.status}`);
  return data;
}

// ---- formatting

const nf = new Intl.NumberFormat();
const num = (v) => (v === null || v === undefined ? "–" : nf.format(v));
const rate = (v) => (v === null || v === undefined ? "–" : `${nf.format(Math.round(v * 10) / 10)}/s`);
const ms = (v) => (v === null || v === undefined ? "–" : `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`);
const pct = (v) => `${Math.round((v || 0) * 1000) / 10} %`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const whenMs = (n) => (n ? new Date(n).toLocaleString() : "–");
function age(seconds) {
  if (!seconds) return "0 s";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function Health({ health, reason }) {
  return html`<span class=${`health health-${health || "ok"}`} title=${reason || ""}>${HEALTH[health] || health}</span>`;
}

// ---- a chart: uPlot over one x axis (unix ms) and a few series

const COLORS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];

function Chart({ label, t, series, unit = "" }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join("|");
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const width = () => Math.max(280, el.clientWidth || 600);
    const opts = {
      width: width(),
      height: 180,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.2)" } },
             { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.2)" }, size: 60, values: (u, vals) => vals.map((v) => `${nf.format(v)}${unit}`) }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false }))],
    };
    plot.current = new uPlot(opts, [t.map((x) => x / 1000), ...series.map((s) => s.values)], el);
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: width(), height: 180 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [shape]);
  useEffect(() => {
    if (plot.current) plot.current.setData([t.map((x) => x / 1000), ...series.map((s) => s.values)]);
  }, [t, series]);
  const last = series.map((s) => `${s.label} ${num(s.values.length ? s.values[s.values.length - 1] : null)}${unit}`).join(", ");
  return html`<figure class="chart">
    <figcaption>${label}</figcaption>
    <div ref=${box} role="img" aria-label=${`${label}: now ${last}`}></div>
  </figure>`;
}

// ---- views

function Overview({ data }) {
  if (!data) return null;
  const box = (b, extra) => html`<li class=${`stage stage-${b.health}`}>
    <h3>${b.name}</h3><${Health} health=${b.health} reason=${b.health_reason} />
    ${extra}
    ${b.health_reason ? html`<p class="why">${b.health_reason}</p>` : null}
  </li>`;
  return html`<section aria-labelledby="h-overview">
    <h2 id="h-overview">Pipeline</h2>
    <ol class="pipeline">
      ${box(data.rest, html`<p><strong>${rate(data.rest.per_second)}</strong> requests</p><p>${pct(data.rest.error_rate)} server errors</p>`)}
      ${box(data.outbox, html`<p><strong>${num(data.outbox.waiting)}</strong> waiting</p><p>oldest ${age(data.outbox.oldest_age_seconds)}</p>`)}
      ${box(data.relay, html`<p><strong>${rate(data.relay.per_second)}</strong> published</p>
        <p>${data.relay.holds_lease === false ? "another instance holds the lease" : "holds the lease"}</p>`)}
      ${box(data.topics, html`<p><strong>${rate(data.topics.per_second)}</strong> events</p>
        <p>${num(data.topics.brokers)} broker(s), ${num(data.topics.under_replicated)} under-replicated</p>`)}
      <li class="stage stage-groups">
        <h3>Consumer groups</h3>
        <ul class="groups">
          ${data.groups.length === 0 ? html`<li>No group seen yet.</li>` : null}
          ${data.groups.filter((g) => g.effect !== "dead-letter redrive" || g.lag > 0).map((g) => html`<li class=${`group stage-${g.health}`}>
            <a href="#groups"><strong>${g.effect}</strong></a> <${Health} health=${g.health} reason=${g.health_reason} />
            <div class="mono small">${g.group_id}</div>
            <div>lag <strong>${num(g.lag)}</strong> · ${g.members} member(s) · ${g.state}</div>
            ${g.health_reason ? html`<div class="why">${g.health_reason}</div>` : null}
          </li>`)}
          ${(() => {
            const idle = data.groups.filter((g) => g.effect === "dead-letter redrive" && g.lag === 0).length;
            return idle ? html`<li class="small">${idle} dead-letter redrive position(s) with nothing left to send</li>` : null;
          })()}
        </ul>
      </li>
      ${data.effects ? box(data.effects, html`<p><strong>${rate(data.effects.audit_per_second)}</strong> audit entries</p>
        <p><strong>${rate(data.effects.notifications_per_second)}</strong> notifications</p>
        <p><strong>${rate(data.effects.live_updates_per_second)}</strong> live updates (this instance)</p>
        <p class="small"><a href="#email">Email queue</a></p>`) : null}
    </ol>
    ${data.dead_letters.length
      ? html`<p class="notice">Dead letters waiting: ${data.dead_letters.map((d, i) => html`${i ? ", " : ""}<a href="#dlq">${d.topic}</a> (${num(d.letters)})`)}.</p>`
      : html`<p>No dead letters.</p>`}
  </section>`;
}

function Groups({ data }) {
  if (!data) return null;
  if (!data.groups.length) return html`<p>No consumer group of taskstream's is known to the cluster yet.</p>`;
  return html`<div>${data.groups.map((g) => {
    const names = Object.keys(g.history.partitions);
    const series = [{ label: "total", values: g.history.lag }, ...names.map((n) => ({ label: n, values: g.history.partitions[n] }))];
    return html`<section class="card" aria-labelledby=${`g-${g.group_id}`}>
      <h2 id=${`g-${g.group_id}`}><span class="mono">${g.group_id}</span> <${Health} health=${g.health} reason=${g.health_reason} /></h2>
      <p>State <strong>${g.state}</strong> · lag <strong>${num(g.lag)}</strong> · ${g.members.length} member(s)${g.health_reason ? html` · <span class="why">${g.health_reason}</span>` : null}</p>
      <${Chart} label=${`Lag of ${g.group_id}, last 15 minutes`} t=${g.history.t} series=${series} />
      <table>
        <caption>Partitions</caption>
        <thead><tr><th scope="col">Topic</th><th scope="col">Partition</th><th scope="col" class="n">Committed</th><th scope="col" class="n">End</th><th scope="col" class="n">Lag</th></tr></thead>
        <tbody>${g.partitions.map((p) => html`<tr class=${p.lag > 0 ? "lagging" : ""}>
          <td class="mono">${p.topic}</td><td>${p.partition}</td><td class="n">${num(p.committed)}</td><td class="n">${num(p.end)}</td><td class="n"><strong>${num(p.lag)}</strong></td></tr>`)}</tbody>
      </table>
      <table>
        <caption>Members and assignment</caption>
        <thead><tr><th scope="col">Client</th><th scope="col">Host</th><th scope="col">Partitions</th></tr></thead>
        <tbody>${g.members.length === 0 ? html`<tr><td colspan="3">No member: nobody consumes for this group now.</td></tr>` : null}
          ${g.members.map((m) => html`<tr><td class="mono" title=${m.member_id}>${m.client_id}</td><td>${m.host}</td>
            <td>${m.assignment.map((a) => `${a.topic}/${a.partition}`).join(", ") || "none"}</td></tr>`)}</tbody>
      </table>
    </section>`;
  })}</div>`;
}

function Outbox({ data }) {
  if (!data) return null;
  const r = data.relay || {};
  return html`<section class="card" aria-labelledby="h-outbox">
    <h2 id="h-outbox">Outbox and relay <${Health} health=${data.health} reason=${data.health_reason} /></h2>
    <dl class="figures">
      <div><dt>Waiting</dt><dd>${num(data.waiting)}</dd></div>
      <div><dt>Oldest waits</dt><dd>${age(data.oldest_age_seconds)}</dd></div>
      <div><dt>Publish rate</dt><dd>${rate(data.publish_per_second)}</dd></div>
      <div><dt>Published</dt><dd>${num(r.published)}</dd></div>
      <div><dt>Failed deliveries</dt><dd>${num(r.failed)}</dd></div>
      <div><dt>Producer restarts</dt><dd>${num(r.producer_restarts)}</dd></div>
      <div><dt>Relay lease</dt><dd>${r.holds_lease ? `this instance (${data.instance})` : "another instance"}</dd></div>
    </dl>
    <p>Last error: ${r.last_error ? html`<span class="error-text">${r.last_error}</span> (${when(r.last_error_at)})` : "none"}</p>
    <${Chart} label="Events waiting in the outbox, last 15 minutes" t=${data.history.t} series=${[{ label: "waiting", values: data.history.waiting }]} />
    <${Chart} label="Events published per second" t=${data.history.t} series=${[{ label: "published/s", values: data.history.publish_per_second }]} />
  </section>`;
}

function Topics({ data }) {
  if (!data) return null;
  // This deployment's topics first; the cluster's others after them.
  const ours = new Set(data.service_topics.flatMap((n) => [n, `${n}.dlq`]));
  const ordered = [...data.topics.filter((t) => ours.has(t.name)), ...data.topics.filter((t) => !ours.has(t.name))];
  return html`<section class="card" aria-labelledby="h-topics">
    <h2 id="h-topics">Topics <span class="small">(${num(data.brokers)} broker(s))</span></h2>
    <table>
      <caption class="sr-only">Topics and their partitions</caption>
      <thead><tr><th scope="col">Topic</th><th scope="col" class="n">Messages</th><th scope="col" class="n">Per second</th>
        <th scope="col">Partitions: leader · replicas · in sync</th></tr></thead>
      <tbody>${ordered.map((t) => html`<tr class=${t.under_replicated ? "lagging" : ""}>
        <th scope="row" class="mono">${t.name}</th><td class="n">${num(t.messages)}</td><td class="n">${rate(t.messages_per_second)}</td>
        <td><ul class="parts">${t.partitions.map((p) => html`<li class=${p.under_replicated || p.offline ? "bad" : ""}>
          <span class="mono">${p.partition}</span>: leader ${p.leader < 0 ? "none" : p.leader} · [${p.replicas.join(", ")}] · [${p.isr.join(", ")}]
          ${p.under_replicated ? html` <strong>under-replicated</strong>` : null}${p.offline ? html` <strong>offline</strong>` : null}</li>`)}</ul></td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}

function maskUser(value, show) {
  if (show || value === null || typeof value !== "object") return value;
  const copy = Array.isArray(value) ? [...value] : { ...value };
  for (const k of Object.keys(copy)) {
    if (k === "user_id" && typeof copy[k] === "string") copy[k] = "•••• (hidden)";
    else copy[k] = maskUser(copy[k], show);
  }
  return copy;
}

function Letter({ l }) {
  const [open, setOpen] = useState(false);
  const [showUser, setShowUser] = useState(false);
  const body = l.payload_json !== null ? JSON.stringify(maskUser(l.payload_json, showUser), null, 2) : l.payload;
  const id = `p-${l.dlq_partition}-${l.dlq_offset}`;
  return html`<tr>
    <td><span class="tag">${l.reason || "?"}</span></td><td>${l.error_class}</td>
    <td class="mono">${l.source_partition ?? "?"}:${l.source_offset ?? "?"}</td><td class="n">${num(l.attempts)}</td>
    <td>${when(l.first_failure)}<br/>${when(l.last_failure)}</td>
    <td>
      <div class="detail">${l.detail}</div>
      <button type="button" class="link" aria-expanded=${open} aria-controls=${id} onClick=${() => setOpen(!open)}>
        ${open ? "Hide" : "Show"} payload of ${l.dlq_partition}:${l.dlq_offset}</button>
      ${open ? html`<div id=${id}>
        <pre class="payload">${body}</pre>
        ${l.payload_json !== null ? html`<button type="button" class="link" onClick=${() => setShowUser(!showUser)}>${showUser ? "Hide" : "Show"} user id</button>` : null}
      </div>` : null}
    </td>
  </tr>`;
}

function DeadLetters({ topics, onAction }) {
  const names = topics ? topics.service_topics : [];
  const [topic, setTopic] = useState("");
  const [filter, setFilter] = useState("");
  const [list, setList] = useState(null);
  const [busy, setBusy] = useState("");
  const [message, setMessage] = useState(null);
  const [confirm, setConfirm] = useState(null);
  const chosen = topic || names[0] || "";
  const load = useCallback(async (keepMessage = false) => {
    if (!chosen) return;
    setBusy("load");
    if (!keepMessage) setMessage(null);
    try {
      setList(await api(`/admin/dlq/${encodeURIComponent(chosen)}?filter=${encodeURIComponent(filter)}&limit=200`));
    } catch (e) {
      setList(null);
      setMessage({ error: true, text: e.message });
    } finally {
      setBusy("");
    }
  }, [chosen, filter]);
  useEffect(() => { load(); }, [chosen]);
  const run = async (dry) => {
    setBusy(dry ? "dry" : "redrive");
    setMessage(null);
    setConfirm(null);
    try {
      const r = await api(`/admin/dlq/${encodeURIComponent(chosen)}/redrive`, { method: "POST", body: { filter, dry_run: dry } });
      if (dry) {
        setList({ ...r, total: r.seen, letters: r.letters, dry: true });
        setMessage({ text: `Dry run: ${r.matched} of ${r.seen} dead letter(s) not yet redriven match${filter ? ` ${filter}` : ""}; nothing was sent.` });
        if (r.matched > 0) setConfirm({ count: r.matched });
      } else {
        await load(true);
        setMessage({ text: `Sent ${r.sent} dead letter(s) back to ${chosen}.` });
      }
      onAction();
    } catch (e) {
      setMessage({ error: true, text: e.message });
    } finally {
      setBusy("");
    }
  };
  return html`<section class="card" aria-labelledby="h-dlq">
    <h2 id="h-dlq">Dead letters</h2>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); load(); }}>
      <label>Topic <select value=${chosen} onChange=${(e) => { setTopic(e.target.value); setConfirm(null); }}>
        ${names.map((n) => html`<option value=${n}>${n}.dlq</option>`)}</select></label>
      <label>Filter <input value=${filter} placeholder="reason=bad_json" aria-describedby="filter-help"
        onInput=${(e) => { setFilter(e.target.value); setConfirm(null); }} /></label>
      <button type="submit" disabled=${!!busy}>${busy === "load" ? "Loading…" : "Show"}</button>
      <button type="button" disabled=${!!busy || !chosen} onClick=${() => run(true)}>${busy === "dry" ? "Running…" : "Dry run"}</button>
    </form>
    <p id="filter-help" class="small">FIELD=VALUE on a header (reason, error_class, any header name) or ${"key=<user id>"}; empty shows all. The same filter as <code>taskstream dlq redrive --filter</code>.</p>
    ${message ? html`<p class=${message.error ? "error-text" : "notice"} role="status">${message.text}</p>` : null}
    ${confirm ? html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
      <p id="confirm-text">Send <strong>${confirm.count}</strong> dead letter(s)${filter ? ` matching ${filter}` : ""} back to <strong>${chosen}</strong>? Each goes once; the CLI will not send them again.</p>
      <button type="button" class="danger" disabled=${!!busy} onClick=${() => run(false)}>${busy === "redrive" ? "Sending…" : `Redrive ${confirm.count}`}</button>
      <button type="button" onClick=${() => setConfirm(null)}>Cancel</button>
    </div>` : null}
    ${list ? html`<table>
      <caption>${list.dry ? `Would be sent: ${list.letters.length}` : `${num(list.matched)} of ${num(list.total)} letter(s) in ${chosen}.dlq${list.filter ? ` match ${list.filter}` : ""}`}</caption>
      <thead><tr><th scope="col">Reason</th><th scope="col">Class</th><th scope="col">Source</th><th scope="col" class="n">Attempts</th>
        <th scope="col">First / last failure</th><th scope="col">Detail and payload</th></tr></thead>
      <tbody>${list.letters.length === 0 ? html`<tr><td colspan="6">None.</td></tr>` : null}
        ${list.letters.map((l) => html`<${Letter} key=${`${l.dlq_partition}:${l.dlq_offset}`} l=${l} />`)}</tbody>
    </table>` : null}
  </section>`;
}

function Email({ data, reload }) {
  const [message, setMessage] = useState(null);
  if (!data) return null;
  const retry = async (id) => {
    try {
      await api(`/admin/email/${encodeURIComponent(id)}/retry`, { method: "POST" });
      setMessage({ text: "The email goes at the sender's next look." });
      reload();
    } catch (e) {
      setMessage({ error: true, text: e.message });
    }
  };
  return html`<section class="card" aria-labelledby="h-email">
    <h2 id="h-email">Email queue</h2>
    <dl class="figures"><div><dt>Pending</dt><dd>${num(data.pending)}</dd></div><div><dt>Failed</dt><dd>${num(data.failed)}</dd></div></dl>
    ${message ? html`<p class=${message.error ? "error-text" : "notice"} role="status">${message.text}</p>` : null}
    <table>
      <caption class="sr-only">Pending and failed emails</caption>
      <thead><tr><th scope="col">Status</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col" class="n">Attempts</th>
        <th scope="col">Next attempt</th><th scope="col">Last word</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
      <tbody>${data.items.length === 0 ? html`<tr><td colspan="7">Nothing pending or failed.</td></tr>` : null}
        ${data.items.map((e) => html`<tr><td><span class=${`tag tag-${e.status}`}>${e.status}</span></td><td>${e.email}</td><td>${e.title}</td>
          <td class="n">${e.attempts}</td><td>${e.next_attempt_at !== null ? whenMs(e.next_attempt_at) : "–"}</td><td class="detail">${e.detail}</td>
          <td><button type="button" onClick=${() => retry(e.notification_id)} aria-label=${`Retry the email "${e.title}" to ${e.email} now`}>Retry now</button></td></tr>`)}</tbody>
    </table>
  </section>`;
}

function Http({ data }) {
  if (!data) return null;
  return html`<section class="card" aria-labelledby="h-http">
    <h2 id="h-http">HTTP, last 15 minutes <span class="small">(this instance)</span></h2>
    <${Chart} label="Requests per second" t=${data.history.t} series=${[{ label: "requests/s", values: data.history.per_second }]} />
    <${Chart} label="p99 latency" unit=" ms" t=${data.history.t} series=${[{ label: "p99", values: data.history.p99_ms }]} />
    <table>
      <caption class="sr-only">Requests per route</caption>
      <thead><tr><th scope="col">Route</th><th scope="col" class="n">Requests</th><th scope="col" class="n">Per second</th><th scope="col" class="n">p50</th>
        <th scope="col" class="n">p99</th><th scope="col" class="n">4xx</th><th scope="col" class="n">5xx</th></tr></thead>
      <tbody>${data.routes.map((r) => html`<tr class=${r.server_errors ? "lagging" : ""}><th scope="row" class="mono">${r.method} ${r.route}</th>
        <td class="n">${num(r.requests)}</td><td class="n">${rate(r.per_second)}</td><td class="n">${ms(r.p50_ms)}</td><td class="n">${ms(r.p99_ms)}</td>
        <td class="n">${num(r.client_errors)}</td><td class="n">${num(r.server_errors)}</td></tr>`)}</tbody>
    </table>
  </section>`;
}

function Actions({ data }) {
  if (!data) return null;
  return html`<section class="card" aria-labelledby="h-actions">
    <h2 id="h-actions">Action log</h2>
    <table>
      <caption class="sr-only">What operators did, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">On</th><th scope="col">Filter</th>
        <th scope="col" class="n">Read</th><th scope="col" class="n">Matched</th><th scope="col" class="n">Sent</th><th scope="col">Outcome</th></tr></thead>
      <tbody>${data.items.length === 0 ? html`<tr><td colspan="9">No action yet.</td></tr>` : null}
        ${data.items.map((a) => html`<tr><td>${when(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td class="mono">${a.target}</td><td class="mono">${a.filter || "all"}</td>
          <td class="n">${num(a.seen)}</td><td class="n">${num(a.matched)}</td><td class="n">${num(a.sent)}</td>
          <td>${a.outcome === "ok" ? "ok" : html`<span class="error-text">${a.outcome}: ${a.detail}</span>`}</td></tr>`)}</tbody>
    </table>
  </section>`;
}

// ---- sign-in and the frame

function SignIn({ onDone, forbidden }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(forbidden ? "This account is not an operator. Sign in with an account listed in ADMIN_EMAILS." : "");
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const r = await api("/auth/token", { method: "POST", body: { email, password } });
      localStorage.setItem(TOKEN_KEY, r.access_token);
      setPassword("");
      onDone();
    } catch (err) {
      setError(err.status === 401 ? "Wrong email or password." : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin"><h1>taskstream console</h1>
    <form onSubmit=${submit}>
      <p>For operators: accounts listed in ADMIN_EMAILS.</p>
      <label>Email <input type="email" autocomplete="username" required value=${email} onInput=${(e) => setEmail(e.target.value)} /></label>
      <label>Password <input type="password" autocomplete="current-password" required value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      ${error ? html`<p class="error-text" role="alert">${error}</p>` : null}
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    <p><a href="/">Back to the tasks</a></p>
  </main>`;
}

// ---- the live feed: a WebSocket that pushes each sample's overview

const LIVE_RETRY_MAX_MS = 30000;

/** Opens /admin/live while `enabled`; calls onSample(overview) for each sample. Returns
 * "live", "connecting" or "down" (then the page polls). The server refuses a socket it
 * would not serve (401/403): the page learns why from its next HTTP request. */
function useLiveFeed(enabled, onSample) {
  const [state, setState] = useState("connecting");
  const handler = useRef(onSample);
  handler.current = onSample;
  useEffect(() => {
    if (!enabled) return undefined;
    let ws = null, timer = 0, pause = 1000, closed = false;
    const open = () => {
      const token = localStorage.getItem(TOKEN_KEY);
      if (!token || closed) return;
      setState((s) => (s === "live" ? "connecting" : s));
      ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/admin/live`, ["bearer", token]);
      ws.onmessage = (e) => {
        let msg = null;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg && msg.type === "sample") {
          pause = 1000;
          setState("live");
          handler.current(msg.overview);
        }
      };
      ws.onclose = () => {
        ws = null;
        if (closed) return;
        setState("down");
        timer = setTimeout(open, pause);
        pause = Math.min(pause * 2, LIVE_RETRY_MAX_MS);
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(timer);
      if (ws) ws.close();
    };
  }, [enabled]);
  return state;
}

const ENDPOINT = { overview: null, groups: "/admin/groups", outbox: "/admin/outbox", topics: "/admin/topics", dlq: "/admin/topics",
                   email: "/admin/email", http: "/admin/http", actions: "/admin/actions" };

function currentView() {
  const v = location.hash.replace(/^#/, "");
  return ENDPOINT[v] !== undefined ? v : "overview";
}

function App() {
  const [view, setView] = useState(currentView());
  const [auth, setAuth] = useState(localStorage.getItem(TOKEN_KEY) ? "unknown" : "signed-out");
  const [overview, setOverview] = useState(null);
  const [data, setData] = useState({});
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const onHash = () => setView(currentView());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const fail = (e) => {
    if (e.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      setAuth("signed-out");
    } else if (e.status === 403) setAuth("forbidden");
    else setError(e.message);
  };
  // `withOverview`: also read /admin/overview (polling); the live feed brings it otherwise.
  const load = useCallback(async (withOverview) => {
    if (auth === "signed-out" || auth === "forbidden") return;
    try {
      const [o, d] = await Promise.all([withOverview ? api("/admin/overview") : null, ENDPOINT[view] ? api(ENDPOINT[view]) : null]);
      if (o) setOverview(o);
      if (d) setData((old) => ({ ...old, [view]: d }));
      setAuth("in");
      setError("");
    } catch (e) {
      fail(e);
    }
  }, [auth, view]);
  const live = useLiveFeed(auth === "in", (o) => {
    setOverview(o);
    setError("");
    setTick((t) => t + 1);
  });
  const liveNow = useRef(false);
  liveNow.current = live === "live";
  useEffect(() => { load(!liveNow.current); }, [load, tick]);
  useEffect(() => {
    const id = setInterval(() => { if (!document.hidden && !liveNow.current) setTick((t) => t + 1); }, REFRESH_MS);
    return () => clearInterval(id);
  }, []);
  useEffect(() => {
    const label = VIEWS.find(([k]) => k === view)[1];
    document.title = `${label} · taskstream console`;
  }, [view]);
  if (auth === "signed-out" || auth === "forbidden")
    return html`<${SignIn} forbidden=${auth === "forbidden"} onDone=${() => setAuth("unknown")} />`;
  const signOut = () => {
    localStorage.removeItem(TOKEN_KEY);
    setAuth("signed-out");
    setOverview(null);
    setData({});
  };
  const worst = overview ? [overview.rest, overview.outbox, overview.relay, overview.topics, ...overview.groups, overview.effects]
    .filter(Boolean).map((b) => b.health) : [];
  const overall = worst.includes("stuck") ? "stuck" : worst.includes("warn") ? "warn" : "ok";
  const reload = () => setTick((t) => t + 1);
  let body = null;
  if (view === "overview") body = html`<${Overview} data=${overview} />`;
  else if (view === "groups") body = html`<${Groups} data=${data.groups} />`;
  else if (view === "outbox") body = html`<${Outbox} data=${data.outbox} />`;
  else if (view === "topics") body = html`<${Topics} data=${data.topics} />`;
  else if (view === "dlq") body = html`<${DeadLetters} topics=${data.dlq} onAction=${reload} />`;
  else if (view === "email") body = html`<${Email} data=${data.email} reload=${reload} />`;
  else if (view === "http") body = html`<${Http} data=${data.http} />`;
  else if (view === "actions") body = html`<${Actions} data=${data.actions} />`;
  return html`<div class="frame">
    <header class="top">
      <h1>taskstream console</h1>
      ${overview ? html`<${Health} health=${overall} />` : null}
      <p class="small meta">${overview ? html`Instance <span class="mono">${overview.instance}</span> · sampled ${when(overview.sampled_at)} · every ${overview.interval_seconds} s` : "Loading…"}
        ${" · "}<span class=${`feed feed-${live}`} data-feed=${live}>${live === "live" ? "live" : live === "down" ? `live feed down, asking every ${REFRESH_MS / 1000} s` : "connecting…"}</span></p>
      <nav aria-label="Views"><ul>${VIEWS.map(([k, label]) => html`<li><a href=${`#${k}`} aria-current=${k === view ? "page" : undefined}>${label}</a></li>`)}</ul></nav>
      <button type="button" class="link" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main">
      ${error ? html`<p class="error-text" role="alert">${error}</p>` : null}
      ${overview && overview.kafka_error ? html`<p class="error-text" role="alert">Kafka: ${overview.kafka_error}</p>` : null}
      ${body}
      <p class="small">Charts and rates are this instance's own samples (kept in memory for 15 minutes); with several instances, each shows its own.</p>
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("root"));
