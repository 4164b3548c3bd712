// What opens over the list: a task's history, the notifications panel, the keyboard
// shortcuts, and the toasts (undo, live notifications, errors).

import * as store from "./store.js";
import * as model from "./model.js";
import { formatFull, formatWhen, inSentence, localizeTimes, relative } from "./time.js";
import { Dialog, html, Icon, plural } from "./ui.js";
import { shown } from "./view-editor.js";

const { state } = store;

function CloseButton({ label, onClick }) {
  return html`<button type="button" class="icon-button close" aria-label=${label} onClick=${onClick}><${Icon} name="close" /></button>`;
}

function When({ at }) {
  return html`<time datetime=${at} title=${formatFull(at)}>${formatWhen(at, new Date(state.now))} <span class="rel">(${relative(at, state.now)})</span></time>`;
}

// ---- history ----------------------------------------------------------------------------------

const ACTION_TEXT = { created: "You created it", updated: "You changed it", completed: "You completed it", deleted: "You deleted it" };

export function HistoryDialog() {
  const h = state.history;
  return html`<${Dialog} labelledBy="history-title" onClose=${() => store.closeHistory()} className="history">
    <header class="sheet-head">
      <h2 id="history-title">History of “${h.title}”</h2>
      <${CloseButton} label="Close the history" onClick=${() => store.closeHistory()} />
    </header>
    ${h.loading && html`<p role="status">Loading the history…</p>`}
    ${h.error && html`<p class="form-error" role="alert">${h.error}</p>`}
    ${!h.loading && !h.error && h.items.length === 0 && html`<p>No history yet.</p>`}
    ${h.behind && html`<p class="notice" role="status">The latest change is still being recorded; it will show here in a moment.</p>`}
    <ol class="timeline">
      ${h.items.map(
        (e) => html`<li key=${e.event_id} class=${"event " + e.action}>
          <p class="what"><strong>${ACTION_TEXT[e.action] ?? e.action}</strong> · <${When} at=${e.timestamp} /></p>
          ${e.action === "created" && e.task && html`<ul class="changes">${created(e.task)}</ul>`}
          ${e.changes.length > 0 &&
          html`<ul class="changes">
            ${e.changes.map((c) => html`<li>${change(c)}</li>`)}
          </ul>`}
        </li>`,
      )}
    </ol>
  <//>`;
}

function created(t) {
  const out = [html`<li>Title “${t.title}”</li>`];
  if (t.priority !== "medium") out.push(html`<li>Priority ${shown("priority", t.priority)}</li>`);
  if (t.status !== "todo") out.push(html`<li>Status ${shown("status", t.status)}</li>`);
  if (t.due_at) out.push(html`<li>Due ${inSentence(t.due_at, new Date(state.now))}</li>`);
  if (t.description) out.push(html`<li>Description “${excerpt(t.description)}”</li>`);
  return out;
}

const excerpt = (text, n = 80) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

function change({ field, from, to }) {
  const label = model.FIELD_LABEL[field];
  if (field === "description") return !to ? "Removed the description" : html`${from ? "Changed the description to" : "Added a description:"} <ins>“${excerpt(to)}”</ins>`;
  if (field === "due_at" && !to) return `Removed the due date (was ${shown(field, from)})`;
  if (field === "due_at" && !from) return `Set the due date: ${inSentence(to, new Date(state.now))}`;
  const q = field === "title" ? (v) => `“${v}”` : (v) => shown(field, v);
  return html`${label}: <del>${q(from)}</del> → <ins>${q(to)}</ins>`;
}

// ---- notifications ----------------------------------------------------------------------------

export function NotificationsDialog() {
  const n = state.notifications;
  const items = model.mergeNotifications(n.items, n.live);
  const unread = store.unreadCount();
  return html`<${Dialog} labelledBy="notifications-title" onClose=${() => store.closeNotifications()} className="notifications side">
    <header class="sheet-head">
      <h2 id="notifications-title">Notifications</h2>
      <button type="button" class="secondary" id="mark-all-read" disabled=${unread === 0} onClick=${() => store.markAllRead()}>Mark all read</button>
      <${CloseButton} label="Close notifications" onClick=${() => store.closeNotifications()} />
    </header>
    <p class="sub" aria-live="polite">${unread ? plural(unread, "unread notification") : "All read."}</p>
    ${n.error && html`<p class="form-error" role="alert">${n.error}</p>`}
    ${items.length === 0 && !n.loading && html`<p class="empty">No notifications yet. Reminders for due tasks show up here.</p>`}
    <ul class="notification-list">
      ${items.map(
        (i) => html`<li key=${model.notificationKey(i)} class=${i.read ? "read" : "unread"}>
          <p class="n-title">${!i.read && html`<span class="dot" aria-hidden="true"></span>`}<strong>${i.title}</strong>
            ${!i.read && html`<span class="visually-hidden"> (unread)</span>`}</p>
          ${i.message && html`<p class="n-message">${localizeTimes(i.message, new Date(state.now))}</p>`}
          <p class="n-when"><${When} at=${i.created_at} /></p>
          <div class="n-actions">
            ${i.task_id && html`<button type="button" class="link" onClick=${() => store.showTask(i.task_id)} aria-label=${`Show task: ${i.title}`}>Show task</button>`}
            ${!i.read && html`<button type="button" class="link" data-control="mark-read" onClick=${() => store.markRead(i)} aria-label=${`Mark read: ${i.title}`}>Mark read</button>`}
          </div>
        </li>`,
      )}
    </ul>
  <//>`;
}

// ---- shortcuts --------------------------------------------------------------------------------

export const SHORTCUTS = [
  ["N", "New task"],
  ["/", "Search"],
  ["J / K", "Next / previous task"],
  ["X", "Complete or reopen the task"],
  ["S", "Next status (to do → in progress → done)"],
  ["E or Enter", "Edit the task"],
  ["H", "History of the task"],
  ["Delete", "Delete the task (undo for 5 s)"],
  ["U", "Undo the last delete"],
  ["1 – 4", "All / Active / In progress / Done"],
  ["B", "Notifications"],
  ["?", "These shortcuts"],
  ["Enter · Esc", "In an edit: save · cancel"],
];

export function ShortcutsDialog() {
  return html`<${Dialog} labelledBy="shortcuts-title" onClose=${() => store.setShortcutsOpen(false)} className="shortcuts">
    <header class="sheet-head">
      <h2 id="shortcuts-title">Keyboard shortcuts</h2>
      <${CloseButton} label="Close the shortcuts" onClick=${() => store.setShortcutsOpen(false)} />
    </header>
    <dl class="keys">
      ${SHORTCUTS.map(([k, what]) => html`<div><dt><kbd>${k}</kbd></dt><dd>${what}</dd></div>`)}
    </dl>
  <//>`;
}

// ---- toasts -----------------------------------------------------------------------------------

export function Toasts() {
  return html`<div class="toasts" role="status" aria-live="polite">
    ${state.toasts.map(
      (t) => html`<div key=${t.id} class=${"toast " + t.kind}>
        <p>${t.kind === "notification" && html`<${Icon} name="bell" /> `}${t.text}</p>
        ${t.action &&
        html`<button type="button" class="link toast-action" onClick=${() => {
          store.dismissToast(t.id);
          t.action.run();
        }}>${t.action.label}</button>`}
        <button type="button" class="icon-button" aria-label="Dismiss" onClick=${() => store.dismissToast(t.id)}><${Icon} name="close" /></button>
      </div>`,
    )}
  </div>`;
}
