// An open edit: the form, the conflict view after a 412 (yours beside theirs: keep yours,
// take theirs, or merge by hand), and what is left when the task was deleted elsewhere.
// Enter (in the title) or Save saves; Escape or Cancel cancels; Ctrl+Enter saves from anywhere.

import * as store from "./store.js";
import * as model from "./model.js";
import { formatFull, formatWhen, toLocalInput } from "./time.js";
import { Field, html } from "./ui.js";

const { state } = store;

export function Editor({ draft, task }) {
  if (draft.gone) return html`<${Gone} draft=${draft} />`;
  if (draft.conflict) return html`<${Conflict} draft=${draft} />`;
  return html`<${Form} draft=${draft} task=${task} />`;
}

function keys(e, id) {
  if (e.key === "Escape") {
    e.preventDefault();
    e.stopPropagation();
    store.cancelEdit(id);
  } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    store.saveEdit(id);
  }
}

function Form({ draft: d, task }) {
  const id = d.id;
  const fid = (f) => `edit-${f}-${id}`;
  const name = `“${d.base.title}”`;
  const set = (f) => (e) => store.editField(id, f, e.currentTarget.value);
  const onDue = (e) => store.editField(id, "due", e.currentTarget.value, { dueInvalid: e.currentTarget.validity.badInput });
  const submit = (e) => {
    e.preventDefault();
    store.saveEdit(id);
  };
  // Merging by hand: what the other version holds, beside each field that differs from it.
  const theirs = (f) => {
    if (!d.merge) return null;
    const mine = store.draftFields(d)[f];
    if (model.sameValue(f, model.normalise({ [f]: mine })[f], d.merge[f] ?? null)) return null;
    const value = shown(f, d.merge[f]);
    const use = () => store.editField(id, f === "due_at" ? "due" : f, f === "due_at" ? toLocalInput(d.merge[f]) : d.merge[f] ?? "");
    return html`<p class="theirs">Saved elsewhere: <span class="value">${value}</span>
      <button type="button" class="link" onClick=${use} aria-label=${`Use this ${model.FIELD_LABEL[f].toLowerCase()} saved elsewhere`}>Use this</button></p>`;
  };
  const elsewhere = d.changedElsewhere.filter((f) => model.FIELDS.includes(f));
  return html`<form class="editor" aria-label=${`Edit ${name}`} onSubmit=${submit} onKeyDown=${(e) => keys(e, id)} novalidate aria-busy=${d.saving ? "true" : "false"}>
    <p class="editor-head" aria-hidden="true">Editing “${d.base.title}”</p>
    ${d.merge && html`<p class="notice" role="status">Merging: your changes are applied to the version saved elsewhere. Adjust, then save.</p>`}
    ${!d.merge && elsewhere.length > 0 &&
    html`<p class="notice" role="status">Changed elsewhere while you edit (${elsewhere.map((f) => model.FIELD_LABEL[f].toLowerCase()).join(", ")}).
      Your edit is kept; saving will show both versions.</p>`}
    <${Field} id=${fid("title")} label="Title" error=${d.errors.title} count=${model.counter(d.fields.title, model.LIMITS.title)}>
      ${({ describedBy, invalid }) => html`<input id=${fid("title")} type="text" data-control="title" value=${d.fields.title} onInput=${set("title")}
        autocomplete="off" aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} enterkeyhint="done" />`}
    <//>
    ${theirs("title")}
    <${Field} id=${fid("description")} label="Description" error=${d.errors.description}
      count=${model.counter(d.fields.description, model.LIMITS.description)}>
      ${({ describedBy, invalid }) => html`<textarea id=${fid("description")} data-control="description" rows="3" value=${d.fields.description}
        onInput=${set("description")} aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined}></textarea>`}
    <//>
    ${theirs("description")}
    <div class="editor-row">
      <${Field} id=${fid("status")} label="Status">
        ${() => html`<select id=${fid("status")} data-control="status" value=${d.fields.status} onChange=${set("status")}>
          ${model.STATUSES.map((s) => html`<option value=${s}>${model.STATUS_LABEL[s]}</option>`)}
        </select>`}
      <//>
      <${Field} id=${fid("priority")} label="Priority">
        ${() => html`<select id=${fid("priority")} data-control="priority" value=${d.fields.priority} onChange=${set("priority")}>
          ${model.PRIORITIES.map((p) => html`<option value=${p}>${model.PRIORITY_LABEL[p]}</option>`)}
        </select>`}
      <//>
      <${Field} id=${fid("due")} label="Due (your time)" error=${d.errors.due_at}>
        ${({ describedBy, invalid }) => html`<div class="due-input">
          <input id=${fid("due")} type="datetime-local" data-control="due" value=${d.fields.due} onInput=${onDue} onChange=${onDue}
            aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} />
          ${d.fields.due && html`<button type="button" class="link" aria-label="Clear the due date" onClick=${() => store.editField(id, "due", "", { dueInvalid: false })}>Clear</button>`}
        </div>`}
      <//>
    </div>
    ${theirs("status")} ${theirs("priority")} ${theirs("due_at")}
    ${d.error && html`<p class="form-error" role="alert">Not saved: ${d.error}</p>`}
    <div class="editor-buttons">
      <button type="submit" data-control="save" disabled=${d.saving}>${d.saving ? "Saving…" : "Save"}</button>
      <button type="button" class="secondary" data-control="cancel" onClick=${() => store.cancelEdit(id)}>Cancel</button>
      <span class="hint">Enter saves · Esc cancels</span>
    </div>
  </form>`;
}

/// A field's value as a person reads it.
export function shown(field, value) {
  if (value === null || value === undefined || value === "") return field === "due_at" ? "no due date" : field === "description" ? "(empty)" : "—";
  if (field === "due_at") return formatWhen(value, new Date(state.now));
  if (field === "status") return model.STATUS_LABEL[value] ?? value;
  if (field === "priority") return model.PRIORITY_LABEL[value] ?? value;
  return value;
}

function Conflict({ draft: d }) {
  const theirs = d.conflict.theirs;
  const mine = { ...theirs, ...store.yourChanges(d) };
  const rows = model.FIELDS.map((f) => ({ f, differs: !model.sameValue(f, mine[f] ?? null, theirs[f] ?? null) }));
  const hid = `conflict-${d.id}`;
  return html`<section class="conflict" aria-labelledby=${hid}>
    <h3 id=${hid} tabindex="-1" data-control="conflict">“${d.base.title}” was changed elsewhere while you edited it</h3>
    <p>Nothing has been overwritten. Compare the two versions and choose what to keep.</p>
    <table class="compare">
      <caption class="visually-hidden">Your edit beside the version saved elsewhere</caption>
      <thead><tr><th scope="col">Field</th><th scope="col">Your edit</th>
        <th scope="col">Saved elsewhere <span class="when" title=${formatFull(theirs.updated_at)}>(${formatWhen(theirs.updated_at, new Date(state.now))})</span></th></tr></thead>
      <tbody>
        ${rows.map(
          ({ f, differs }) => html`<tr class=${differs ? "differs" : ""}>
            <th scope="row">${model.FIELD_LABEL[f]}${differs ? html`<span class="visually-hidden"> (differs)</span>` : ""}</th>
            ${differs
              ? html`<td class="value" data-label="Your edit">${shown(f, mine[f])}</td>
                  <td class="value" data-label="Saved elsewhere">${shown(f, theirs[f])}</td>`
              : html`<td class="value same" colspan="2" data-label="The same in both">${shown(f, theirs[f])}</td>`}
          </tr>`,
        )}
      </tbody>
    </table>
    ${d.error && html`<p class="form-error" role="alert">Not saved: ${d.error}</p>`}
    <div class="editor-buttons">
      <button type="button" data-control="keep-mine" disabled=${d.saving} onClick=${() => store.resolveConflict(d.id, "mine")}>${d.saving ? "Saving…" : "Keep mine"}</button>
      <button type="button" class="secondary" data-control="take-theirs" onClick=${() => store.resolveConflict(d.id, "theirs")}>Take theirs</button>
      <button type="button" class="secondary" data-control="merge" onClick=${() => store.resolveConflict(d.id, "merge")}>Merge by hand</button>
    </div>
  </section>`;
}

function Gone({ draft: d }) {
  const f = store.draftFields(d);
  return html`<section class="conflict gone" aria-labelledby=${`gone-${d.id}`}>
    <h3 id=${`gone-${d.id}`} tabindex="-1" data-control="conflict">“${d.base.title}” was deleted elsewhere while you edited it</h3>
    <p>Your text is kept below. Save it as a new task, or let it go.</p>
    <dl class="kept">
      ${model.FIELDS.map((k) => html`<div><dt>${model.FIELD_LABEL[k]}</dt><dd>${shown(k, f[k])}</dd></div>`)}
    </dl>
    ${d.errors.title && html`<p class="form-error" role="alert">${d.errors.title}</p>`}
    ${d.error && html`<p class="form-error" role="alert">Not saved: ${d.error}</p>`}
    <div class="editor-buttons">
      <button type="button" data-control="restore" disabled=${d.saving} onClick=${() => store.restoreAsNew(d.id)}>Save as a new task</button>
      <button type="button" class="secondary" data-control="discard" onClick=${() => store.discardDraft(d.id)}>Discard</button>
    </div>
  </section>`;
}
