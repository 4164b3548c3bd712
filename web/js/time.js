// Dates as people see them: due dates are entered and shown in the browser's time zone and
// stored as UTC (the API's RFC 3339 "…Z"). Pure functions; tests/web/model.test.mjs.

const pad = (n) => String(n).padStart(2, "0");

/// UTC RFC 3339 (from the API) -> "YYYY-MM-DDTHH:MM" in local time, for <input type=datetime-local>.
export function toLocalInput(utc) {
  if (!utc) return "";
  const d = new Date(utc);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/// "YYYY-MM-DDTHH:MM" in local time -> UTC RFC 3339 ("2026-12-01T16:00:00.000Z"); "" -> null.
/// A value that is not a whole local date and time gives undefined.
export function fromLocalInput(local) {
  if (!local) return null;
  const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) return undefined;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] ?? 0));
  if (Number.isNaN(d.getTime())) return undefined;
  return d.toISOString();
}

const sameDay = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

/// A date-time for a person, in local time: "Today 17:00", "Tomorrow 09:30", "Mon 8 Dec 09:30",
/// "8 Dec 2027 09:30" (another year).
export function formatWhen(utc, now = new Date(), locale = undefined) {
  if (!utc) return "";
  const d = new Date(utc);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString(locale, { hour: "numeric", minute: "2-digit" });
  const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (sameDay(d, now)) return `Today ${time}`;
  if (sameDay(d, tomorrow)) return `Tomorrow ${time}`;
  if (sameDay(d, yesterday)) return `Yesterday ${time}`;
  const opts = d.getFullYear() === now.getFullYear() ? { weekday: "short", day: "numeric", month: "short" } : { day: "numeric", month: "short", year: "numeric" };
  return `${d.toLocaleDateString(locale, opts)} ${time}`;
}

/// The full local date and time with the zone, for a tooltip or a screen reader.
export function formatFull(utc, locale = undefined) {
  if (!utc) return "";
  const d = new Date(utc);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(locale, { dateStyle: "full", timeStyle: "short" });
}

/// "in 5 min", "2 h ago", "just now".
export function relative(utc, now = Date.now(), locale = undefined) {
  const t = Date.parse(utc);
  if (Number.isNaN(t)) return "";
  const s = Math.round((t - now) / 1000);
  const a = Math.abs(s);
  if (a < 45) return "just now";
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" });
  if (a < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (a < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

const ISO_UTC = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z\b/g;

/// A date-time inside a sentence, in local time: "today at 17:00", "on Mon 8 Dec at 09:30".
export function inSentence(utc, now = new Date(), locale = undefined) {
  const text = formatWhen(utc, now, locale);
  const m = /^(Today|Tomorrow|Yesterday) (.*)$/.exec(text);
  if (m) return `${m[1].toLowerCase()} at ${m[2]}`;
  const i = text.lastIndexOf(" ");
  return text ? `on ${text.slice(0, i)} at ${text.slice(i + 1)}` : "";
}

/// A server's text with its UTC timestamps ("is due at 2026-12-01T17:00:00.000Z.") in local
/// time, worded for a sentence ("is due tomorrow at 17:00.").
export function localizeTimes(text, now = new Date(), locale = undefined) {
  return (text ?? "").replace(new RegExp(`(?:\\bat )?${ISO_UTC.source}`, "g"), (match) => {
    const iso = match.replace(/^at /, "");
    return inSentence(iso, now, locale) || match;
  });
}
