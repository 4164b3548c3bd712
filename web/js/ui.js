// Small view helpers shared by the screens: htm bound to Preact, icons, a labelled field with
// its counter and error, and a modal dialog.

import { h } from "../vendor/preact.mjs";
import { useLayoutEffect, useRef } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";

export const html = htm.bind(h);

const ICONS = {
  edit: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  history: "M12 7v5l3 2M3.05 11a9 9 0 1 1 .5 4M3 4v5h5",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  bell: "M6 16V11a6 6 0 1 1 12 0v5l2 2H4l2-2zM10 20a2 2 0 0 0 4 0",
  close: "M6 6l12 12M18 6L6 18",
  keyboard: "M3 6h18v12H3zM7 10h.01M11 10h.01M15 10h.01M7 14h10",
  search: "M11 18a7 7 0 1 1 0-14 7 7 0 0 1 0 14zM16 16l5 5",
  plus: "M12 5v14M5 12h14",
  more: "M6 9l6 6 6-6",
  signout: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10",
};

/// A stroked 24×24 icon, hidden from assistive technology (the control names itself).
export function Icon({ name }) {
  return html`<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
    <path d=${ICONS[name]} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
  </svg>`;
}

/// A label, its control (children, given `describedBy` and `invalid` to use), the counter of a
/// limited field, and the field's error: the error is tied to the control for screen readers.
export function Field({ id, label, error, count, hint, className = "", children }) {
  const render = Array.isArray(children) ? children.find((c) => typeof c === "function") : children;
  const ids = [hint && `${id}-hint`, count && `${id}-count`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
  return html`<div class=${"field " + className + (error ? " invalid" : "")}>
    <label for=${id}>${label}</label>
    ${render({ describedBy: ids, invalid: !!error })}
    ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
    ${count && html`<p class=${"counter" + (count.over ? " over" : "")} id=${`${id}-count`} aria-live="polite">${count.text}</p>`}
    ${error && html`<p class="field-error" id=${`${id}-error`} role="alert">${error}</p>`}
  </div>`;
}

/// A modal <dialog>, open while mounted. Escape (the dialog's cancel) calls onClose.
export function Dialog({ labelledBy, onClose, className = "", children }) {
  const ref = useRef(null);
  useLayoutEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d && d.open && d.close();
  }, []);
  const cancel = (e) => {
    e.preventDefault();
    onClose();
  };
  // A click on the backdrop (the dialog element itself, outside its content) closes it.
  const click = (e) => {
    if (e.target === ref.current) onClose();
  };
  return html`<dialog ref=${ref} class=${"sheet " + className} aria-labelledby=${labelledBy} onCancel=${cancel} onClick=${click}>
    <div class="sheet-body">${children}</div>
  </dialog>`;
}

export const plural = (n, one, many = one + "s") => `${n} ${n === 1 ? one : many}`;
