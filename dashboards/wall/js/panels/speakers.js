// Loudspeakers: now playing with live delivery progress, today's timeline, next up.
import { esc, fmtHM, localSecondsOfDay } from "../fmt.js";
import { t } from "../i18n.js";
import { markDirty, register, state } from "../state.js";

const EMERGENCY = 8;

function prio(p) { return `<span class="prio${p >= EMERGENCY ? " emergency" : ""}">P${esc(p)}</span>`; }

export const RECENT_S = 90; // a broadcast stays under "now playing" this long after its last delivery change
const IN_FLIGHT = ["pending", "sent", "received", "playing"];

/** What plays now: the hub's list, plus broadcasts whose deliveries moved in the last RECENT_S. */
export function playingNow(now = Date.now() / 1000) {
  const out = new Map();
  for (const b of state.overview?.broadcasts?.playing || []) {
    const id = b.id ?? b.broadcast_id;
    out.set(id, { id, title: b.title, priority: b.priority, done: b.done ?? 0, total: b.total ?? 0, by_state: {} });
  }
  for (const live of state.progress.values()) {
    if (live.status === "cancelled") { out.delete(live.id); continue; }
    const inFlight = IN_FLIGHT.some((s) => (live.by_state?.[s] || 0) > 0);
    const recent = live.updated && now - live.updated < RECENT_S;
    if (!out.has(live.id) && !(inFlight || recent)) continue;
    const prev = out.get(live.id) || {};
    out.set(live.id, { ...prev, ...Object.fromEntries(Object.entries(live).filter(([, v]) => v !== undefined)) });
  }
  return [...out.values()].filter((b) => b.title !== undefined || b.total);
}

function renderPlaying() {
  const ul = document.getElementById("now-playing");
  const playing = playingNow();
  if (!playing.length) { ul.innerHTML = `<li class="empty">${esc(t("nothing_playing"))}</li>`; return; }
  ul.innerHTML = playing.slice(0, 4).map((b) => {
    const done = b.done ?? 0, total = b.total ?? 0;
    const pct = total ? Math.round((100 * done) / total) : 0;
    const states = Object.entries(b.by_state || {}).filter(([s, n]) => n > 0 && s !== "done")
      .map(([s, n]) => `${t(`state_${s}`)} ${n}`).join(" · ");
    return `<li data-broadcast="${esc(b.id)}">${prio(b.priority ?? "")}<span class="grow">${esc(b.title ?? b.id)}</span>`
      + `<span class="num progress-text">${esc(done)}/${esc(total)}</span><div class="progress"><i style="width:${Number(pct) || 0}%"></i></div>`
      + (states ? `<span class="hint states">${esc(states)}</span>` : "") + "</li>";
  }).join("");
}

function renderNext() {
  const ul = document.getElementById("next-up");
  const next = state.overview?.broadcasts?.next || [];
  if (!next.length) { ul.innerHTML = `<li class="empty">${esc(t("nothing_next"))}</li>`; return; }
  ul.innerHTML = next.slice(0, 4).map((b) => `<li data-broadcast="${esc(b.id ?? b.broadcast_id)}">${prio(b.priority)}<span class="grow">${esc(b.title)}</span><span class="num">${Number.isFinite(b.at) ? esc(fmtHM(b.at)) : ""}</span></li>`).join("");
}

/** Occurrence start (Unix s) from a calendar item, whatever the exact field name. */
export function occurrenceTs(o) {
  const v = o.at ?? o.start ?? o.ts ?? o.time;
  if (typeof v === "number") return v;
  if (typeof v === "string") { const ms = Date.parse(v); return Number.isFinite(ms) ? ms / 1000 : null; }
  return null;
}

function renderTimeline() {
  const el = document.getElementById("timeline");
  const now = Date.now() / 1000;
  let html = "";
  for (let h = 0; h <= 24; h += 6) html += `<span class="tick" style="left:${(h / 24) * 100}%">${String(h).padStart(2, "0")}:00</span>`;
  const items = [...state.calendar];
  const dayEnd = state.calendarFrom + 86400;
  for (const b of state.overview?.broadcasts?.next || []) {
    const id = b.id ?? b.broadcast_id;
    if (b.at && b.at < dayEnd && !items.some((o) => (o.broadcast_id ?? o.id) === id && occurrenceTs(o) === b.at)) items.push(b);
  }
  for (const o of items) {
    const ts = occurrenceTs(o);
    if (ts === null || ts < state.calendarFrom || ts >= dayEnd) continue;
    const left = (localSecondsOfDay(ts) / 86400) * 100;
    const cls = `${ts < now ? "done" : ""} ${(o.priority ?? 0) >= EMERGENCY ? "emergency" : ""}`;
    html += `<span class="mark ${cls}" style="left:${left}%" title="${esc(fmtHM(ts))} ${esc(o.title ?? "")}"></span>`;
  }
  html += `<span class="now" style="left:${(localSecondsOfDay(now) / 86400) * 100}%"></span>`;
  el.innerHTML = html;
}

export function initSpeakers() {
  register("speakers", () => { renderPlaying(); renderNext(); renderTimeline(); });
  register("progress", () => { renderPlaying(); markDirty("kpis"); });
  setInterval(() => markDirty("progress"), 15000); // finished broadcasts leave "now playing"
}
