// The page's frame: the header (connection badge, who is signed in, notifications, sign-out),
// the sign-in screen, and the task screen with what opens over it.

import * as store from "./store.js";
import { Field, html, Icon } from "./ui.js";
import { TaskScreen } from "./view-tasks.js";
import { HistoryDialog, NotificationsDialog, ShortcutsDialog, Toasts } from "./view-panels.js";

const { state } = store;

const BADGE = {
  "signed-out": ["Signed out", "off"],
  connecting: ["Connecting…", "wait"],
  live: ["Live", "on"],
  reconnecting: ["Reconnecting…", "wait"],
};

export function App() {
  const phase = state.session.phase;
  const signedIn = phase === "signed-in";
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <${Header} signedIn=${signedIn} />
    <main id="main" tabindex="-1">
      ${phase === "starting" && html`<p class="starting" role="status">Loading…</p>`}
      ${(phase === "signed-out" || phase === "expired") && html`<${SignIn} />`}
      ${signedIn && html`<${TaskScreen} />`}
    </main>
    ${signedIn && state.history && html`<${HistoryDialog} />`}
    ${signedIn && state.notifications.open && html`<${NotificationsDialog} />`}
    ${state.shortcutsOpen && html`<${ShortcutsDialog} />`}
    <${Toasts} />
  `;
}

function Header({ signedIn }) {
  const [text, cls] = BADGE[state.live] ?? BADGE["signed-out"];
  const unread = store.unreadCount();
  return html`<header class="top">
    <h1 class="brand"><span class="logo" aria-hidden="true">✓</span> taskstream</h1>
    <span id="live" class=${"live " + cls} role="status" title="Live updates from your other tabs and devices">
      <span class="dot" aria-hidden="true"></span>${text}
    </span>
    <div class="who">
      ${signedIn && html`<span class="email" id="signed-in-as" title=${"Signed in as " + state.session.user.email}>
        <span class="visually-hidden">Signed in as </span>${state.session.user.email}</span>`}
      ${signedIn &&
      html`<button type="button" id="notifications-button" class="icon-button bell" aria-haspopup="dialog"
        aria-label=${unread ? `Notifications, ${unread} unread` : "Notifications"} title="Notifications (B)" onClick=${() => store.openNotifications()}>
        <${Icon} name="bell" />${unread > 0 && html`<span class="badge" aria-hidden="true">${unread > 99 ? "99+" : unread}</span>`}
      </button>`}
      ${signedIn &&
      html`<button type="button" id="shortcuts-button" class="icon-button" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" aria-haspopup="dialog"
        onClick=${() => store.setShortcutsOpen(true)}><${Icon} name="keyboard" /></button>`}
      ${signedIn && html`<button type="button" id="signout" class="secondary" onClick=${() => store.signOut()}>Sign out</button>`}
    </div>
    ${signedIn && state.confirmSignOut &&
    html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
      <p id="confirm-text">You have changes that are not saved. Sign out and discard them?</p>
      <button type="button" id="confirm-signout" class="danger" onClick=${() => store.signOut({ confirmed: true })}>Sign out and discard</button>
      <button type="button" class="secondary" onClick=${() => store.cancelSignOut()}>Stay</button>
    </div>`}
  </header>`;
}

function SignIn() {
  const a = state.auth;
  const expired = state.session.phase === "expired";
  const submit = (e) => {
    e.preventDefault();
    store.authenticate(e.submitter?.id === "register");
  };
  return html`<section class="signin" aria-labelledby="signin-title">
    <h2 id="signin-title">${expired ? "Sign in again" : "Sign in"}</h2>
    ${!expired && html`<p class="lead">Your tasks, on every device, updated live.</p>`}
    ${state.session.notice && html`<p class="notice" role="status" id="session-notice">${state.session.notice}</p>`}
    <form id="auth-form" onSubmit=${submit} novalidate aria-busy=${a.busy ? "true" : "false"}>
      <${Field} id="email" label="Email" error=${a.errors.email}>
        ${({ describedBy, invalid }) => html`<input id="email" type="email" autocomplete="username" value=${a.email}
          onInput=${(e) => store.setAuthField("email", e.currentTarget.value)} aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} />`}
      <//>
      <${Field} id="password" label="Password" error=${a.errors.password} hint=${expired ? null : "At least 8 characters for a new account."}>
        ${({ describedBy, invalid }) => html`<input id="password" type="password" autocomplete="current-password" value=${a.password}
          onInput=${(e) => store.setAuthField("password", e.currentTarget.value)} aria-describedby=${describedBy} aria-invalid=${invalid ? "true" : undefined} />`}
      <//>
      ${a.error && html`<p class="form-error" role="alert" id="auth-error">${a.error}</p>`}
      <div class="row">
        <button id="signin" type="submit" disabled=${a.busy}>${a.busy ? "Signing in…" : "Sign in"}</button>
        ${!expired && html`<button id="register" type="submit" class="secondary" disabled=${a.busy}>Create account</button>`}
      </div>
    </form>
  </section>`;
}
