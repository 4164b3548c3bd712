// The task screen: the add form, filters / search / sort, and the list. A row shows its task,
// or its open edit (view-editor.js) when there is a draft for it.

import * as store from "./store.js";
import * as model from "./model.js";
import { formatFull, formatWhen } from "./time.js";
import { Field, html, Icon, plural } from "./ui.js";
import { Editor } from "./view-editor.js";

const { state } = store;

export function TaskScreen() {
  const hidden = new Set(state.pending.keys());
  const pinned = new Set(state.drafts.keys());
  const rows = model.visible(state.tasks, state.view, hidden, pinned);
  const shown = rows.slice(0, state.view.shown);
  // An open edit is never cut off by the page window, nor lost with its task: one deleted
  // elsewhere stays on top, holding the text, until the user saves it as new or lets it go.
  for (const t of rows.slice(state.view.shown)) if (pinned.has(t.id)) shown.push(t);
  for (const d of state.drafts.values()) if (d.gone && !state.tasks.has(d.id)) shown.unshift(d.base);
  const counts = model.counts(state.tasks, hidden);
  return html`
    <section class="add" aria-labelledby="add-heading">
      <h2 id="add-heading" class="visually-hidden">Add a task</h2>
      <${AddForm} />
    </section>
    <section class="list" aria-labelledby="list-heading">
      <h2 id="list-heading" class="visually-hidden">Your tasks</h2>
      <${Toolbar} counts=${counts} />
      ${state.load.error && html`<p class="banner error" role="alert">The list could not be loaded: ${state.load.error} <button type="button" class="link" onClick=${() => store.loadTasks()}>Try again</button></p>`}
      ${shown.length
        ? html`<ul id="tasks" class="tasks" aria-label=${listLabel(rows.length)}>
            ${shown.map((t) => html`<${TaskRow} key=${t.id} task=${t} />`)}
          </ul>`
        : html`<p class="empty">${emptyText(counts)}</p>`}
      <div class="list-foot">
        <p class="count" aria-live="polite">${footText(counts, rows.length)}</p>
        ${counts.done > 0 &&
        html`<button type="button" class="secondary" id="clear-completed" onClick=${() => store.clearCompleted()}>Clear completed (${counts.done})</button>`}
        ${rows.length > shown.length &&
        html`<button type="button" class="secondary" id="show-more" onClick=${() => store.showMore()}>
          Show ${Math.min(store.PAGE_SIZE, rows.length - shown.length)} more (${rows.length - shown.length} not shown)
        </button>`}
      </div>
    </section>
  `;
}

function listLabel(n) {
  const f = state.view.filter;
  return `${model.FILTER_LABEL[f]} tasks${state.view.query ? ` matching “${state.view.query}”` : ""}: ${n}`;
}

function emptyText(counts) {
  if (!state.load.done && state.load.loading) return "Loading your tasks…";
  if (state.view.query) return `No task matches “${state.view.query}”.`;
  if (counts.all === 0) return "No tasks yet. Add your first one above.";
  return { active: "Nothing left to do.", in_progress: "Nothing in progress.", done: "Nothing done yet." }[state.view.filter] ?? "No tasks.";
}

function footText(counts, shown) {
  const loading = state.load.loading ? " · loading more…" : "";
  const filtered = shown !== counts.all ? `${shown} shown · ` : "";
  return `${filtered}${plural(counts.active, "task")} left · ${counts.all} in all${loading}`;
}

// ---- adding -----------------------------------------------------------------------------------

function AddForm() {
  const a = state.add;
  const submit = (e) => {
    e.preventDefault();
    store.addTask();
  };
  const onDue = (e) => store.setAddField("due", e.currentTarget.value, { dueInvalid: e.currentTarget.validity.badInput });
  return html`<form id="add-form" class="add-form" onSubmit=${submit} novalidate aria-busy=${a.busy ? "true" : "false"}>
    <div class="add-row">
      <${Field} id="new-title" label="New task" className="grow" error=${a.errors.title} count=${model.counter(a.title, model.LIMITS.title)}>
        ${({ describedBy, invalid }) => html`<input id="new-title" type="text" autocomplete="off" placeholder="What needs doing?"
          value=${a.title} onInput=${(e) => store.setAddField("title", e.currentTarget.value)}
          aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} enterkeyhint="done" />`}
      <//>
      <div class="add-buttons">
        <button type="button" class="secondary" id="add-details-toggle" aria-expanded=${a.expanded ? "true" : "false"} aria-controls="add-details"
          onClick=${() => store.setAddField("expanded", !a.expanded)}>Details</button>
        <button type="submit" id="add">Add</button>
      </div>
    </div>
    <div id="add-details" class="details" hidden=${!a.expanded}>
      <${Field} id="new-description" label="Description" className="wide" error=${a.errors.description} count=${model.counter(a.description, model.LIMITS.description)}>
        ${({ describedBy, invalid }) => html`<textarea id="new-description" rows="2" value=${a.description}
          onInput=${(e) => store.setAddField("description", e.currentTarget.value)}
          aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined}></textarea>`}
      <//>
      <${Field} id="new-priority" label="Priority">
        ${() => html`<select id="new-priority" value=${a.priority} onChange=${(e) => store.setAddField("priority", e.currentTarget.value)}>
          ${model.PRIORITIES.map((p) => html`<option value=${p}>${model.PRIORITY_LABEL[p]}</option>`)}
        </select>`}
      <//>
      <${Field} id="new-due" label="Due (your time)" error=${a.errors.due_at}>
        ${({ describedBy, invalid }) => html`<input id="new-due" type="datetime-local" value=${a.due} onInput=${onDue} onChange=${onDue}
          aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} />`}
      <//>
    </div>
    ${a.error && html`<p class="form-error" role="alert">Not added: ${a.error}</p>`}
  </form>`;
}

// ---- filters, search, sort --------------------------------------------------------------------

function Toolbar({ counts }) {
  const v = state.view;
  return html`<div class="toolbar">
    <div class="filters" role="group" aria-label="Show">
      ${Object.keys(model.FILTERS).map(
        (f, i) => html`<button type="button" class=${"filter" + (v.filter === f ? " selected" : "")} aria-pressed=${v.filter === f ? "true" : "false"}
          data-filter=${f} title=${`Shortcut: ${i + 1}`} onClick=${() => store.setView({ filter: f })}>
          ${model.FILTER_LABEL[f]} <span class="n">${counts[f]}</span>
        </button>`,
      )}
    </div>
    <div class="finders">
      <div class="search">
        <label for="search" class="visually-hidden">Search tasks</label>
        <${Icon} name="search" />
        <input id="search" type="search" placeholder="Search" value=${v.query} title="Shortcut: /"
          onInput=${(e) => store.setView({ query: e.currentTarget.value })} />
      </div>
      <label class="sort">
        <span>Sort</span>
        <select id="sort" value=${v.sort} onChange=${(e) => store.setView({ sort: e.currentTarget.value })}>
          ${Object.keys(model.SORTS).map((s) => html`<option value=${s}>${model.SORT_LABEL[s]}</option>`)}
        </select>
      </label>
    </div>
  </div>`;
}

// ---- a row ------------------------------------------------------------------------------------

function TaskRow({ task }) {
  const draft = state.drafts.get(task.id);
  const due = model.dueState(task, state.now);
  const cls = ["task", task.status === "done" && "done", due, task.priority === "high" && "high", draft && "editing"].filter(Boolean).join(" ");
  if (draft) return html`<li class=${cls} data-task-id=${task.id}><${Editor} draft=${draft} task=${task} /></li>`;
  const name = `“${task.title}”`;
  return html`<li class=${cls} data-task-id=${task.id}>
    <input type="checkbox" class="complete" data-control="check" checked=${store.shownStatus(task) === "done"}
      aria-label=${`Complete ${name}`} onChange=${(e) => store.setStatus(task.id, e.currentTarget.checked ? "done" : "todo")} />
    <div class="body" onDblClick=${() => store.startEdit(task.id)}>
      <span class="title">${task.title}</span>
      <${Meta} task=${task} due=${due} />
      ${task.description && html`<p class="desc">${task.description}</p>`}
    </div>
    <div class="actions">
      <button type="button" class="icon-button" data-control="edit" aria-label=${`Edit ${name}`} title="Edit (E)" onClick=${() => store.startEdit(task.id)}>
        <${Icon} name="edit" />
      </button>
      <button type="button" class="icon-button" data-control="history" aria-label=${`History of ${name}`} title="History (H)" onClick=${() => store.openHistory(task.id)}>
        <${Icon} name="history" />
      </button>
      <button type="button" class="icon-button danger" data-control="delete" aria-label=${`Delete ${name}`} title="Delete (Del)" onClick=${() => store.deleteTask(task.id)}>
        <${Icon} name="trash" />
      </button>
    </div>
  </li>`;
}

export function Meta({ task, due }) {
  const chips = [];
  if (task.status === "in_progress") chips.push(html`<span class="chip progress">In progress</span>`);
  if (task.priority === "high") chips.push(html`<span class="chip high">High priority</span>`);
  else if (task.priority === "low") chips.push(html`<span class="chip low">Low priority</span>`);
  if (task.due_at) {
    const label = due === "overdue" ? "Overdue" : due === "soon" ? "Due soon" : "Due";
    chips.push(html`<span class=${"chip due " + (due ?? "")} title=${formatFull(task.due_at)}>
      ${label} · <time datetime=${task.due_at}>${formatWhen(task.due_at, new Date(state.now))}</time>
    </span>`);
  }
  if (task.status === "done" && task.completed_at) chips.push(html`<span class="chip muted">Done ${formatWhen(task.completed_at, new Date(state.now))}</span>`);
  return chips.length ? html`<div class="meta">${chips}</div>` : null;
}
