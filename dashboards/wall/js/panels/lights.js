// Smart street lights 智慧路灯: the lamps on the map (lit / off / fault / offline), their counts,
// and (operators) on / off / dim for the whole township, a village or one lamp, with each lamp's
// acknowledgement progress live from `light_command` events.
import { api } from "../api.js";
import { esc, fmtHM } from "../fmt.js";
import { t } from "../i18n.js";
import { can, markDirty, register, state, villageName } from "../state.js";
import { toast } from "../toast.js";

export const LAMP_COLORS = { on: "#ffd84d", off: "#3f6aa0", fault: "#ff4d5e", offline: "#5b6573" };
const FINAL = new Set(["done", "failed", "rejected", "expired"]);
const LAYER_KEY = "vh.lamp-layer";
let layerOn = localStorage.getItem(LAYER_KEY) !== "0";
let reloadTimer = 0;
let latestBatch = null;
let sun = null;

/** on | off | fault | offline for one lamp (pure): offline first, then a fault, then lit or not. */
export function lampState(l) {
  if (l.status === "offline") return "offline";
  if (l.fault) return "fault";
  if (l.on && (l.level ?? 100) > 0) return "on";
  return "off";
}

/** Counts over lamps (pure): total, online, on (lit), fault, offline. */
export function lampCounts(lamps) {
  const c = { total: 0, online: 0, on: 0, fault: 0, offline: 0 };
  for (const l of lamps) {
    c.total += 1;
    if (l.status === "online") c.online += 1;
    const s = lampState(l);
    if (s === "on") c.on += 1;
    else if (s === "fault") c.fault += 1;
    else if (s === "offline") c.offline += 1;
  }
  return c;
}

/** Progress of one command batch (pure): done / total and counts by state. */
export function batchProgress(batch) {
  const by = {};
  let done = 0;
  for (const d of batch.deliveries.values()) {
    by[d.state] = (by[d.state] || 0) + 1;
    if (d.state === "done") done += 1;
  }
  const total = batch.deliveries.size;
  const finished = [...batch.deliveries.values()].filter((d) => FINAL.has(d.state)).length;
  return { done, total, by, finished };
}

export function lampLayerOn() { return layerOn; }

/** Map points of the lamps (for map.js): value [lon, lat], coloured by state. */
export function lampMapData() {
  if (!layerOn) return [];
  const out = [];
  for (const l of state.lights.values()) {
    if (!Number.isFinite(l.lon) || !Number.isFinite(l.lat)) continue;
    const s = lampState(l);
    out.push({ name: l.name, id: l.id, lamp: true, value: [l.lon, l.lat], st: s, village: l.village, level: l.level, battery: l.battery_pct, fault: l.fault,
      itemStyle: { color: LAMP_COLORS[s], shadowBlur: s === "on" ? 8 : 0, shadowColor: LAMP_COLORS.on } });
  }
  return out;
}

/** The tooltip of a lamp on the map: HTML, so every value is escaped. */
export function lampTooltipHtml(d) {
  const parts = [`<b>${esc(villageName(d.village))} · ${esc(d.name || d.id)}</b>`, `${esc(d.id)} · ${esc(t(`lamp_${d.st}`))}`];
  if (d.st === "on" && d.level !== null && d.level !== undefined) parts.push(`${esc(t("lt_level"))} ${esc(d.level)}%`);
  if (d.battery !== null && d.battery !== undefined) parts.push(`${esc(t("lt_battery"))} ${esc(Math.round(d.battery))}%`);
  if (d.fault) parts.push(`${esc(t("lamp_fault"))}: ${esc(d.fault)}`);
  return parts.join("<br>");
}

// ---------- data ----------
export async function loadLights() {
  const r = await api("/lights");
  const next = new Map();
  for (const l of r.items || []) next.set(l.id, l);
  state.lights = next;
  markDirty("lights", "kpis", "map");
}

function scheduleReload(ms = 3000) {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = 0; loadLights().catch(() => {}); }, ms);
}

/** A presence event of a lamp. */
export function onLightPresence(d) {
  const l = state.lights.get(d.device);
  if (!l) { scheduleReload(); return; }
  l.status = d.status;
  markDirty("lights", "kpis", "map");
}

/** What a lamp looks like once it has done `batch`'s command (its next heartbeat will confirm). */
function applyDone(batch, device) {
  const l = state.lights.get(device);
  if (!l) return;
  if (batch.action === "on") { l.on = true; l.level = batch.level ?? 100; }
  else if (batch.action === "off") { l.on = false; }
  else if (batch.action === "dim") { l.level = batch.level; l.on = (batch.level ?? 0) > 0; }
}

/** A `light_command` event {id, device, state, command_id, reason}. */
export function onLightCommand(d) {
  let batch = state.lightBatches.get(d.id);
  if (!batch) {
    batch = { id: d.id, action: "", level: null, created_at: Date.now() / 1000, deliveries: new Map() };
    state.lightBatches.set(d.id, batch);
    api(`/lights/commands/${encodeURIComponent(d.id)}`).then((b) => mergeBatch(b)).catch(() => {});
  }
  const prev = batch.deliveries.get(d.device);
  if (!prev || !FINAL.has(prev.state) || FINAL.has(d.state)) batch.deliveries.set(d.device, { state: d.state, reason: d.reason || null });
  if (d.state === "done" && batch.action) applyDone(batch, d.device);
  if (!latestBatch || batch.created_at >= (state.lightBatches.get(latestBatch)?.created_at ?? 0)) latestBatch = batch.id;
  if (FINAL.has(d.state)) scheduleReload(4000);
  markDirty("lights", "kpis", "map");
}

function mergeBatch(b) {
  let batch = state.lightBatches.get(b.id);
  if (!batch) { batch = { id: b.id, deliveries: new Map() }; state.lightBatches.set(b.id, batch); }
  Object.assign(batch, { action: b.action, level: b.level ?? null, created_at: b.created_at, by: b.by });
  for (const d of b.deliveries || []) {
    const cur = batch.deliveries.get(d.device);
    // the REST view and the events race: a final state wins over an earlier one
    if (!cur || !FINAL.has(cur.state)) batch.deliveries.set(d.device, { state: d.state, reason: d.reason });
    if (d.state === "done") applyDone(batch, d.device);
  }
  markDirty("lights", "map", "kpis");
}

// ---------- drawer ----------
function drawer() { return document.getElementById("lights"); }
function isOpen() { return !drawer().classList.contains("hidden"); }

export function openLights(lampId = null) {
  for (const d of document.querySelectorAll(".drawer")) if (d !== drawer()) d.classList.add("hidden");
  drawer().classList.remove("hidden");
  if (lampId) {
    const l = state.lights.get(lampId);
    if (l) { targetVillage = l.village || ""; targetLamp = l.id; }
  }
  markDirty("lights");
  loadLights().catch(() => {});
  api("/lights/sun").then((s) => { sun = s; markDirty("lights"); }).catch(() => {});
}

let targetVillage = "";
let targetLamp = "";

function villagesWithLamps() {
  const m = new Map();
  for (const l of state.lights.values()) {
    const k = l.village || "";
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(l);
  }
  return m;
}

function renderDrawer() {
  if (!isOpen()) return;
  const lamps = [...state.lights.values()];
  const c = lampCounts(lamps);
  document.getElementById("lt-summary").textContent = t("lt_summary", { online: c.online, total: c.total, on: c.on, fault: c.fault });
  const hm = (iso) => (iso ? fmtHM(Date.parse(iso) / 1000) : "—");
  document.getElementById("lt-sun").textContent = sun ? t("lt_sun", { set: hm(sun.sunset), rise: hm(sun.sunrise) }) : "";
  const byVillage = villagesWithLamps();
  // target pickers
  const vsel = document.getElementById("lt-village");
  const vopts = [["", t("lt_all")], ...[...byVillage.keys()].sort().map((v) => [v, villageName(v)])];
  const vsig = vopts.map((o) => o.join("=")).join("|");
  if (vsel.dataset.sig !== vsig) { vsel.innerHTML = vopts.map(([id, n]) => `<option value="${esc(id)}">${esc(n)}</option>`).join(""); vsel.dataset.sig = vsig; }
  vsel.value = targetVillage;
  const lsel = document.getElementById("lt-lamp");
  const inVillage = (byVillage.get(targetVillage) || []).sort((a, b) => a.id.localeCompare(b.id));
  const lopts = [["", t("lt_all_lamps")], ...(targetVillage ? inVillage.map((l) => [l.id, `${l.name || l.id} (${l.id})`]) : [])];
  const lsig = lopts.map((o) => o.join("=")).join("|");
  if (lsel.dataset.sig !== lsig) { lsel.innerHTML = lopts.map(([id, n]) => `<option value="${esc(id)}">${esc(n)}</option>`).join(""); lsel.dataset.sig = lsig; }
  lsel.value = targetLamp;
  lsel.disabled = !targetVillage;
  renderProgress();
  // villages table, or the lamps of the chosen village
  const list = document.getElementById("lt-list");
  if (targetVillage) {
    document.getElementById("lt-list-title").textContent = `${t("lt_lamps")} · ${villageName(targetVillage)}`;
    list.innerHTML = inVillage.map((l) => {
      const s = lampState(l);
      const extra = [l.on && s === "on" ? `${l.level ?? 100}%` : "", l.battery_pct !== null && l.battery_pct !== undefined ? `${t("lt_battery")} ${Math.round(l.battery_pct)}%` : "",
        l.fault ? l.fault : ""].filter(Boolean).join(" · ");
      return `<li data-lamp="${esc(l.id)}" class="${l.id === targetLamp ? "picked" : ""}"><i class="lamp-dot ${s}"></i><span class="grow">${esc(l.name || l.id)} <span class="hint">${esc(l.id)}</span></span>`
        + `<span class="num">${esc(t(`lamp_${s}`))}${extra ? ` · ${esc(extra)}` : ""}</span></li>`;
    }).join("");
  } else {
    document.getElementById("lt-list-title").textContent = t("lt_villages");
    list.innerHTML = [...byVillage.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([v, ls]) => {
      const vc = lampCounts(ls);
      return `<li data-lamp-village="${esc(v)}"><span class="grow">${esc(villageName(v))}</span><span class="num">`
        + `<i class="lamp-dot on"></i>${esc(vc.on)} <i class="lamp-dot fault"></i>${esc(vc.fault)} <i class="lamp-dot offline"></i>${esc(vc.offline)} / ${esc(vc.total)}</span></li>`;
    }).join("");
  }
}

function renderProgress() {
  const box = document.getElementById("lt-progress");
  const batch = latestBatch ? state.lightBatches.get(latestBatch) : null;
  if (!batch) { box.innerHTML = `<p class="hint">${esc(t("lt_no_cmd"))}</p>`; return; }
  const p = batchProgress(batch);
  const pct = p.total ? Math.round((100 * p.done) / p.total) : 0;
  const action = batch.action ? t(`lt_action_${batch.action}`) + (batch.action === "dim" ? ` ${batch.level}%` : "") : "";
  const chips = [...batch.deliveries.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([dev, d]) => `<span class="lt-chip ${esc(d.state)}" data-device="${esc(dev)}" title="${esc(d.reason || "")}">${esc(dev)} ${esc(t(`state_${d.state}`))}</span>`).join("");
  box.innerHTML = `<div class="lt-prog-head" data-batch="${esc(batch.id)}" data-done="${esc(p.done)}" data-total="${esc(p.total)}"><b>${esc(action)}</b> <span class="hint">${esc(batch.id)}</span>`
    + `<span class="num">${esc(t("lt_done_n", { done: p.done, total: p.total }))}</span></div>`
    + `<div class="progress"><i style="width:${pct}%"></i></div><div class="lt-chips">${chips}</div>`;
}

async function sendCommand(action) {
  if (!can("operator")) return;
  const targets = { all: false, villages: [], groups: [], devices: [] };
  if (targetLamp) targets.devices = [targetLamp];
  else if (targetVillage) targets.villages = [targetVillage];
  else targets.all = true;
  const body = { targets, action };
  const level = Number(document.getElementById("lt-level").value);
  if (action === "dim") body.level = level;
  if (action === "on" && level > 0) body.level = level;
  for (const b of document.querySelectorAll("#lights [data-lt-cmd]")) b.disabled = true;
  try {
    const r = await api("/lights/commands", { method: "POST", body });
    const batch = { id: r.id, action, level: body.level ?? (action === "on" ? 100 : null), created_at: Date.now() / 1000, deliveries: new Map() };
    for (const c of r.commands || []) if (!batch.deliveries.has(c.device)) batch.deliveries.set(c.device, { state: "pending", reason: null });
    const early = state.lightBatches.get(r.id); // events may beat the answer
    if (early) for (const [dev, d] of early.deliveries) batch.deliveries.set(dev, d);
    state.lightBatches.set(r.id, batch);
    latestBatch = r.id;
    if (early) for (const [dev, d] of batch.deliveries) if (d.state === "done") applyDone(batch, dev);
    toast(t("lt_sent", { n: batch.deliveries.size }));
    markDirty("lights", "map", "kpis");
    api(`/lights/commands/${encodeURIComponent(r.id)}`).then(mergeBatch).catch(() => {});
  } catch (err) {
    toast(err.status === 403 ? t("forbidden") : t("error", { msg: err.message }), true);
  } finally {
    for (const b of document.querySelectorAll("#lights [data-lt-cmd]")) b.disabled = false;
  }
}

export function initLights({ onLayerChange }) {
  const toggle = document.getElementById("lamp-layer");
  const showToggle = () => { toggle.setAttribute("aria-pressed", String(layerOn)); toggle.classList.toggle("on", layerOn); document.getElementById("lamp-legend").classList.toggle("hidden", !layerOn); };
  showToggle();
  toggle.addEventListener("click", () => { layerOn = !layerOn; localStorage.setItem(LAYER_KEY, layerOn ? "1" : "0"); showToggle(); onLayerChange(); });
  document.getElementById("btn-lights").addEventListener("click", () => (isOpen() ? drawer().classList.add("hidden") : openLights()));
  document.querySelector("[data-close-lights]").addEventListener("click", () => drawer().classList.add("hidden"));
  document.getElementById("lt-village").addEventListener("change", (e) => { targetVillage = e.target.value; targetLamp = ""; markDirty("lights"); });
  document.getElementById("lt-lamp").addEventListener("change", (e) => { targetLamp = e.target.value; markDirty("lights"); });
  const level = document.getElementById("lt-level");
  level.addEventListener("input", () => { document.getElementById("lt-level-val").textContent = `${level.value}%`; });
  document.getElementById("lt-list").addEventListener("click", (e) => {
    const v = e.target.closest("[data-lamp-village]");
    if (v) { targetVillage = v.dataset.lampVillage; targetLamp = ""; markDirty("lights"); return; }
    const l = e.target.closest("[data-lamp]");
    if (l) { targetLamp = l.dataset.lamp === targetLamp ? "" : l.dataset.lamp; markDirty("lights"); }
  });
  for (const b of document.querySelectorAll("#lights [data-lt-cmd]")) b.addEventListener("click", () => sendCommand(b.dataset.ltCmd));
  register("lights", renderDrawer);
}
