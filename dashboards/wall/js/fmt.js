// Display formatting in the township's time zone (VH_TZ), whatever the browser's own zone.
import { getLang } from "./i18n.js";
import { state } from "./state.js";

const cache = new Map();
function formatter(kind) {
  const key = `${kind}|${getLang()}|${state.tz}`;
  let f = cache.get(key);
  if (!f) {
    const locale = getLang() === "zh" ? "zh-CN" : "en-GB";
    const opts = { timeZone: state.tz, hour12: false };
    if (kind === "time") Object.assign(opts, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    if (kind === "hm") Object.assign(opts, { hour: "2-digit", minute: "2-digit" });
    if (kind === "date") Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit", weekday: "long" });
    if (kind === "datetime") Object.assign(opts, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
    f = new Intl.DateTimeFormat(locale, opts);
    cache.set(key, f);
  }
  return f;
}

export const fmtTime = (ts) => formatter("time").format(new Date(ts * 1000));
export const fmtHM = (ts) => formatter("hm").format(new Date(ts * 1000));
export const fmtDate = (ts) => formatter("date").format(new Date(ts * 1000));
export const fmtDateTime = (ts) => formatter("datetime").format(new Date(ts * 1000));

/** Seconds since the township's local midnight, for placing things on today's timeline. */
export function localSecondsOfDay(ts) {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: state.tz, hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(new Date(ts * 1000));
  const get = (t) => Number(parts.find((p) => p.type === t)?.value || 0);
  return (get("hour") % 24) * 3600 + get("minute") * 60 + get("second");
}

/** Minutes between the township's zone and UTC at `ts` (e.g. +480 for Asia/Shanghai). */
export function tzOffsetMinutes(ts) {
  const d = new Date(ts * 1000);
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: state.tz, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(d);
  const get = (t) => Number(parts.find((p) => p.type === t)?.value || 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
  return Math.round((asUtc - d.getTime()) / 60000);
}

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text → HTML that shows it literally, in element content or a quoted attribute value.
 * The rule for contributors (docs/wall-screen.md): anything that came from the API or the stream
 * (names, messages, titles, ids, even numbers) goes through this before it joins an HTML string
 * (`innerHTML`, ECharts tooltip formatters); or set it with `textContent`. */
export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]);
}

/** Short name for escapeHtml in templates. */
export const esc = escapeHtml;
