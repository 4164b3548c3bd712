// taskstream's web page: wires the store to the views and the keyboard. docs/web.md describes
// what the page does; store.js holds the state and actions, view-*.js draw it.

import { render } from "../vendor/preact.mjs";
import { html } from "./ui.js";
import * as store from "./store.js";
import { App } from "./view-app.js";

const { state } = store;
const root = document.getElementById("root");

/// Draws the page. A keyed list can move the focused row (a sort by due date after a change
/// elsewhere); moving a node drops its focus, so focus and caret go back where they were.
function draw() {
  const active = document.activeElement;
  let caret = null;
  try {
    if (active && typeof active.selectionStart === "number") caret = [active.selectionStart, active.selectionEnd];
  } catch {
    caret = null;
  }
  render(html`<${App} />`, root);
  const f = state.focus;
  state.focus = null;
  // A request made "from" a place (an add whose answer came late) is dropped when the user has
  // moved on meanwhile (to a row with J): an answer never pulls the focus away.
  const from = f?.from === "row" ? `[data-task-id="${CSS.escape(f.id)}"]` : f?.from;
  const movedOn = from && active && active.isConnected && active !== document.body && !active.closest(from);
  if (f && !movedOn) {
    const el = f.selector
      ? document.querySelector(f.selector)
      : document.querySelector(`[data-task-id="${CSS.escape(f.id)}"] [data-control="${f.control}"]`);
    if (el) {
      el.focus();
      if (!f.selector) el.scrollIntoView({ block: "nearest" });
      return;
    }
  }
  // Only focus that was dropped (to <body>), never focus a render moved on purpose (a dialog).
  const dropped = !document.activeElement || document.activeElement === document.body;
  if (dropped && active && active !== document.body && active.isConnected) {
    active.focus({ preventScroll: true });
    if (caret) {
      try {
        active.setSelectionRange(caret[0], caret[1]);
      } catch {
        // Not every input type has a caret.
      }
    }
  }
}

// ---- keyboard shortcuts (docs/web.md; the ? dialog lists them) -----------------------------------

function typing(el) {
  if (!el) return false;
  if (el.tagName === "INPUT") return !/^(checkbox|radio|button|submit|reset)$/.test(el.type);
  return el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName);
}

function currentTaskId() {
  return document.activeElement?.closest?.("[data-task-id]")?.dataset.taskId ?? null;
}

function moveRow(step) {
  const rows = [...document.querySelectorAll("#tasks > li[data-task-id]")];
  if (!rows.length) return;
  const i = rows.findIndex((r) => r.contains(document.activeElement));
  const next = rows[i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step))];
  (next.querySelector("[data-control=check]") ?? next.querySelector("[data-control=title]"))?.focus();
  next.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (e) => {
  if (state.session.phase !== "signed-in" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  if (typing(e.target) || document.querySelector("dialog[open]") || state.confirmSignOut) return;
  const id = currentTaskId();
  const editing = id && state.drafts.has(id);
  const act = {
    n: () => store.focusNext({ selector: "#new-title" }),
    "/": () => store.focusNext({ selector: "#search" }),
    j: () => moveRow(1),
    k: () => moveRow(-1),
    x: () => id && !editing && state.tasks.has(id) && store.setStatus(id, store.shownStatus(state.tasks.get(id)) === "done" ? "todo" : "done"),
    s: () => id && !editing && store.cycleStatus(id),
    e: () => id && store.startEdit(id),
    h: () => id && !editing && store.openHistory(id),
    Delete: () => id && !editing && store.deleteTask(id),
    u: () => store.undoDelete(),
    b: () => store.openNotifications(),
    "?": () => store.setShortcutsOpen(true),
    1: () => store.setView({ filter: "all" }),
    2: () => store.setView({ filter: "active" }),
    3: () => store.setView({ filter: "in_progress" }),
    4: () => store.setView({ filter: "done" }),
  }[e.key];
  // Enter on a row's checkbox opens its edit (a button's Enter stays a click).
  const enterEdits = e.key === "Enter" && id && !editing && e.target.matches?.("[data-control=check]");
  if (enterEdits) {
    e.preventDefault();
    return store.startEdit(id);
  }
  if (!act) return;
  e.preventDefault();
  act();
});

store.setRenderer(draw);
draw();
store.boot();

// For tests and debugging from the console: the state, and dropping the socket as a network
// failure would (it reconnects and resumes).
window.taskstream = { state, store, dropSocket: (ms) => store.liveSocket.drop(ms) };
