// Wall screen entry: log in, load the picture once over REST, then keep it live over one WebSocket.
// A slow full refresh (REFRESH_MS) is the only polling: a safety net, not a data path.
import { api, getToken, initToken, onAuthRequired } from "./api.js";
import { tzOffsetMinutes } from "./fmt.js";
import { initLang, onLangChange, setLang, getLang, t } from "./i18n.js";
import { devicesChanged, markAllDirty, markDirty, renderStats, state } from "./state.js";
import { LiveStream } from "./stream.js";
import { initAlarms } from "./panels/alarms.js";
import { initCameras, onAlarm, onSnapshot, showVillage } from "./panels/cameras.js";
import { initCharts } from "./panels/charts.js";
import { initHeader } from "./panels/header.js";
import { initKpis } from "./panels/kpis.js";
import { initMap, onVillageClick } from "./panels/map.js";
import { initOperator, reloadBroadcastList, showLogin, toggleVillageTarget } from "./panels/operator.js";
import { initSpeakers } from "./panels/speakers.js";
import { initLights, loadLights, onLightCommand, onLightPresence, openLights } from "./panels/lights.js";
import { initProblems, loadProblems, onProblemEvent } from "./panels/problems.js";
import { initRanking, loadRanking } from "./panels/ranking.js";
import { initTabs, onTab } from "./panels/tabs.js";

export const REFRESH_MS = 60000;
const OVERVIEW_DEBOUNCE_MS = 1500;
let stream = null;
let refreshTimer = 0;
let overviewTimer = 0;
let linkTimer = 0;

async function loadDevices() {
  const all = new Map();
  const limit = 1000;
  for (let offset = 0; offset < 100000; offset += limit) {
    const page = await api(`/devices?limit=${limit}&offset=${offset}`);
    for (const d of page.items) all.set(d.id, d);
    if (page.items.length < limit || all.size >= page.total) break;
  }
  // keep live-only fields (snapshot time) across reloads
  for (const [id, d] of all) { const old = state.devices.get(id); if (old?.snapshot_ts && !d.snapshot_ts) d.snapshot_ts = old.snapshot_ts; }
  state.devices = all;
  devicesChanged();
}

/** Today in the township's zone, as Unix seconds [from, to). */
export function todayRange() {
  const now = Date.now() / 1000;
  const dayStart = Math.floor(now - ((now + tzOffsetMinutes(now) * 60) % 86400)); // local midnight
  return { from: dayStart, to: dayStart + 86400 };
}

async function loadCalendar() {
  const { from, to } = todayRange();
  state.calendarFrom = from;
  const cal = await api(`/broadcasts/calendar?from=${from}&to=${to}`).catch(() => null);
  if (cal) state.calendar = Array.isArray(cal) ? cal : cal.items || [];
  markDirty("speakers", "kpis");
}

async function loadOverview() {
  const [ov, now] = await Promise.all([api("/overview"), api("/broadcasts/now").catch(() => null)]);
  // the broadcasts service's own "now" view fills in what the overview leaves empty
  ov.broadcasts = ov.broadcasts || {};
  if (now && !(ov.broadcasts.playing || []).length) ov.broadcasts.playing = now.playing || [];
  if (now && !(ov.broadcasts.next || []).length) ov.broadcasts.next = now.next || [];
  state.overview = ov;
  if (ov.tz) state.tz = ov.tz;
  if (ov.health) { state.health.mqtt = ov.health.mqtt; state.health.store = ov.health.store; }
  state.health.hub = true;
  markDirty("header", "kpis", "speakers");
}

async function loadAll() {
  try {
    const [villages, alerts, history] = await Promise.all([
      api("/villages").catch(() => null),
      api("/alerts?state=open"),
      api("/stats/history?hours=24").catch(() => null),
      loadCalendar(),
      loadOverview(),
      loadDevices(),
      loadProblems().catch(() => null),
      loadLights().catch(() => null),
      loadRanking().catch(() => null),
    ]);
    // /villages (with groups) when the registry routes are there; else the overview's list
    const list = Array.isArray(villages) ? villages : villages?.items || [];
    state.villages = list.length ? list : state.overview?.villages || [];
    state.villageById = new Map(state.villages.map((v) => [v.id, v]));
    const open = alerts?.items || [];
    const next = new Map(open.map((a) => [String(a.id), a]));
    state.alerts = next;
    if (history) state.history = history;
    state.health.hub = true;
  } catch (err) {
    if (err.status !== 401) state.health.hub = false;
    console.warn("load failed", err);
  }
  markAllDirty();
}

function scheduleOverview() {
  if (overviewTimer) return;
  overviewTimer = setTimeout(() => { overviewTimer = 0; loadOverview().catch(() => {}); loadCalendar(); }, OVERVIEW_DEBOUNCE_MS);
}

function liveBroadcast(id) {
  let b = state.progress.get(id);
  if (!b) { b = { id, done: 0, total: 0, by_state: {} }; state.progress.set(id, b); }
  return b;
}

function findAlertByKey(key) { for (const a of state.alerts.values()) if (a.key === key && a.state === "open") return a; return null; }

export function handleEvent(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case "presence": {
      if (d.kind === "light" || state.lights.has(d.device)) onLightPresence(d);
      let dev = state.devices.get(d.device);
      if (!dev) { dev = { id: d.device, kind: d.kind, village: d.village, name: d.device, status: "unknown" }; state.devices.set(d.device, dev); }
      dev.status = d.status;
      dev.presence_reason = d.reason;
      devicesChanged();
      if (d.status === "online") dev.last_seen = ev.ts;
      markDirty("kpis", "map", "cameras");
      break;
    }
    case "heartbeat": {
      const dev = state.devices.get(d.device);
      if (dev) dev.last_seen = ev.ts;
      break;
    }
    case "alert":
      state.alerts.set(String(d.id), d);
      if (d.state === "open") onAlarm(d);
      markDirty("alarms", "kpis", "map", "cameras");
      break;
    case "alert_cleared": {
      const a = state.alerts.get(String(d.id)) || findAlertByKey(d.key);
      if (a) { a.state = "cleared"; a.cleared_at = ev.ts; }
      markDirty("alarms", "kpis", "map", "cameras");
      break;
    }
    case "snapshot":
      onSnapshot({ ...d, ts: d.ts ?? ev.ts });
      break;
    case "delivery": {
      const live = liveBroadcast(d.broadcast_id);
      Object.assign(live, { done: d.done, total: d.total, by_state: d.by_state || {}, updated: Date.now() / 1000 });
      markDirty("progress", "bclist");
      break;
    }
    case "broadcast": {
      const live = liveBroadcast(d.id);
      for (const k of ["title", "priority", "status"]) if (d[k] !== undefined) live[k] = d[k];
      if (d.total !== undefined && d.status !== "cancelled") Object.assign(live, { total: d.total, done: 0, by_state: {} });
      live.updated = Date.now() / 1000;
      scheduleOverview();
      reloadBroadcastList();
      markDirty("progress");
      break;
    }
    case "health":
      if ("mqtt" in d) state.health.mqtt = d.mqtt;
      if ("store" in d) state.health.store = d.store;
      markDirty("header");
      break;
    case "problem":
      onProblemEvent(d);
      break;
    case "light_command":
      onLightCommand(d);
      break;
    case "resync":
      loadAll();
      break;
    default:
      break;
  }
}

let retryAt = 0;
function setLink(status, retryMs) {
  state.link = status;
  const banner = document.getElementById("link-banner");
  clearInterval(linkTimer);
  if (status === "lost") {
    if (retryMs !== null) retryAt = Date.now() + retryMs;
    const until = retryAt;
    const show = () => { banner.textContent = t("link_lost", { n: Math.max(0, Math.ceil((until - Date.now()) / 1000)) }); };
    show();
    linkTimer = setInterval(show, 500);
    banner.classList.remove("hidden");
    banner.dataset.state = "lost";
  } else if (status === "unauthorized") {
    banner.classList.add("hidden");
    showLogin(t("login_needed"));
  } else if (status === "connecting" && !banner.classList.contains("hidden")) {
    banner.textContent = t("link_connecting");
  } else if (status === "open") {
    banner.classList.add("hidden");
    banner.dataset.state = "open";
    if (state.everOpened) loadAll(); // catch up on what we missed while disconnected
    state.everOpened = true;
  }
  markDirty("header");
}

async function start() {
  if (!getToken()) { showLogin(); return; }
  try {
    state.me = await api("/whoami");
  } catch (err) {
    if (err.status !== 401) { state.health.hub = false; markDirty("header"); setTimeout(start, 5000); }
    return;
  }
  markDirty("header");
  await loadAll();
  if (stream) stream.stop();
  stream = new LiveStream({ token: getToken(), onEvent: handleEvent, onState: setLink });
  stream.start();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(loadAll, REFRESH_MS);
}

function boot() {
  initLang();
  initToken();
  if (!window.echarts) {
    const b = document.getElementById("vendor-banner");
    b.textContent = t("vendor_missing");
    b.classList.remove("hidden");
  }
  initHeader();
  initKpis();
  initMap();
  initCameras();
  initSpeakers();
  initAlarms();
  initCharts();
  initTabs();
  initProblems();
  initRanking();
  initLights({ onLayerChange: () => markDirty("map") });
  onTab(".p-charts", (name) => { window.dispatchEvent(new Event("resize")); if (name === "ranking") loadRanking().catch(() => {}); });
  onTab(".p-alarms", () => markDirty("problems", "alarms"));
  initOperator({ afterLogin: start, refresh: scheduleOverview });
  onVillageClick((id, picking, lamp) => (lamp ? openLights(id) : picking ? toggleVillageTarget(id) : showVillage(id)));
  onAuthRequired(() => { if (stream) stream.stop(); showLogin(t("login_needed")); });
  document.getElementById("btn-lang").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  onLangChange(() => { if (state.link === "lost") setLink("lost", null); markAllDirty(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") for (const m of document.querySelectorAll(".modal")) if (m.id !== "login-modal") m.classList.add("hidden"); });
  window.__vh = { state, handleEvent, renderStats }; // for tests and the curious
  markAllDirty();
  start();
}

boot();
