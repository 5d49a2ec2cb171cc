// Loudspeakers: now playing with live delivery progress, today's timeline, next up.
import { esc, fmtHM, localSecondsOfDay } from "../fmt.js";
import { t } from "../i18n.js";
import { register, state } from "../state.js";

const EMERGENCY = 8;

function prio(p) { return `<span class="prio${p >= EMERGENCY ? " emergency" : ""}">P${esc(p)}</span>`; }

function renderPlaying() {
  const ul = document.getElementById("now-playing");
  const playing = state.overview?.broadcasts?.playing || [];
  if (!playing.length) { ul.innerHTML = `<li class="empty">${esc(t("nothing_playing"))}</li>`; return; }
  ul.innerHTML = playing.slice(0, 4).map((b) => {
    const live = state.progress.get(b.id);
    const done = live?.done ?? b.done ?? 0, total = live?.total ?? b.total ?? 0;
    const pct = total ? Math.round((100 * done) / total) : 0;
    return `<li data-broadcast="${esc(b.id)}">${prio(b.priority)}<span class="grow">${esc(b.title)}</span>`
      + `<span class="num progress-text">${done}/${total}</span><div class="progress"><i style="width:${pct}%"></i></div></li>`;
  }).join("");
}

function renderNext() {
  const ul = document.getElementById("next-up");
  const next = state.overview?.broadcasts?.next || [];
  if (!next.length) { ul.innerHTML = `<li class="empty">${esc(t("nothing_next"))}</li>`; return; }
  ul.innerHTML = next.slice(0, 4).map((b) => `<li>${prio(b.priority)}<span class="grow">${esc(b.title)}</span><span class="num">${b.at ? fmtHM(b.at) : ""}</span></li>`).join("");
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
  for (const b of state.overview?.broadcasts?.next || []) if (b.at && !items.some((o) => (o.broadcast_id ?? o.id) === b.id && occurrenceTs(o) === b.at)) items.push(b);
  for (const o of items) {
    const ts = occurrenceTs(o);
    if (ts === null || now - ts > 86400) continue;
    const left = (localSecondsOfDay(ts) / 86400) * 100;
    const cls = `${ts < now ? "done" : ""} ${(o.priority ?? 0) >= EMERGENCY ? "emergency" : ""}`;
    html += `<span class="mark ${cls}" style="left:${left}%" title="${esc(fmtHM(ts))} ${esc(o.title ?? "")}"></span>`;
  }
  html += `<span class="now" style="left:${(localSecondsOfDay(now) / 86400) * 100}%"></span>`;
  el.innerHTML = html;
}

export function initSpeakers() {
  register("speakers", () => { renderPlaying(); renderNext(); renderTimeline(); });
  register("progress", renderPlaying);
}
