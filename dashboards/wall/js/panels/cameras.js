// Camera wall (视频调度): a page of latest thumbnails with their age, greyed when offline or stale,
// a village filter, an auto-tour that pauses on a village with an open alarm, click to enlarge.
import { fetchImage } from "../api.js";
import { esc } from "../fmt.js";
import { ago, t } from "../i18n.js";
import { markDirty, register, snapTimes, state, villageName } from "../state.js";
import { initCameraModal, onModalSnapshot, openCamera } from "./camera-modal.js";

export const PAGE_SIZE = 16;
export const TOUR_DWELL_MS = 12000;
export const TOUR_ALARM_HOLD = 4;    // a page with an unacknowledged alarm stays this many dwells
export const STALE_S = 600;          // a thumbnail older than this is marked stale
const MAX_THUMBS = 80;               // object URLs kept (LRU)
const FETCH_CONCURRENCY = 4;

let filter = "";
let tourOn = true;
let pageIndex = 0;
let tourTimer = 0;
let pausedForAlarm = false;
let held = 0;
// Thumbnails: an LRU cache of object URLs (only images, never evicting one on screen), the last
// snapshot time of every camera, and which cameras have a newer snapshot than the cached image.
const thumbs = new Map();            // device → {url, ts}; url null when the hub has none yet
const stale = new Set();             // devices whose cached thumbnail is older than their snapshot
const queued = new Set();
const queue = [];
let inflight = 0;
let tiles = [];

/** Pages to show: whole villages packed in order, each page at most `pageSize` cameras; a village
 * with more cameras than that gets pages of its own. Each page lists the villages it shows. */
export function buildPages(cameras, villageFilter, pageSize = PAGE_SIZE) {
  const byVillage = new Map();
  for (const c of cameras) {
    if (villageFilter && c.village !== villageFilter) continue;
    const key = c.village || "";
    if (!byVillage.has(key)) byVillage.set(key, []);
    byVillage.get(key).push(c);
  }
  const pages = [];
  let current = null;
  for (const key of [...byVillage.keys()].sort()) {
    const list = byVillage.get(key).sort((a, b) => a.id.localeCompare(b.id));
    if (current && current.cameras.length + list.length <= pageSize) {
      current.villages.push(key);
      current.cameras.push(...list);
      continue;
    }
    for (let i = 0; i < list.length; i += pageSize) {
      current = { villages: [key], cameras: list.slice(i, i + pageSize) };
      pages.push(current);
    }
  }
  return pages;
}

function cameras() { return [...state.devices.values()].filter((d) => d.kind === "camera"); }
function pages() { return buildPages(cameras(), filter); }


function snapshotTs(d) {
  return snapTimes.get(d.id) ?? d.snapshot_ts ?? thumbs.get(d.id)?.ts ?? null;
}

/** What a tile shows for one camera (pure over the device, its snapshot time and now). */
export function tileState(d, snapTs, now) {
  if (d.status === "offline") return { cls: "offline", badge: "offline" };
  if (d.health === "stale" || (snapTs !== null && snapTs !== undefined && now - snapTs > STALE_S)) return { cls: "stale", badge: "stale" };
  if (d.status === "unknown") return { cls: "unknown", badge: "unknown" };
  if (d.health && d.health !== "ok") return { cls: "unhealthy", badge: `health_${d.health}` };
  return { cls: "", badge: "" };
}

function ensureTiles() {
  const grid = document.getElementById("camera-grid");
  if (tiles.length === PAGE_SIZE) return;
  grid.textContent = "";
  tiles = [];
  for (let i = 0; i < PAGE_SIZE; i += 1) {
    const el = document.createElement("div");
    el.className = "tile hidden";
    el.innerHTML = '<img alt="" decoding="async"><div class="noimg"></div><span class="live"></span><span class="badge"></span>'
      + '<div class="cap"><span class="name"></span><span class="age"></span></div>';
    el.addEventListener("click", () => { if (el.dataset.device) openCamera(el.dataset.device); });
    grid.appendChild(el);
    tiles.push(el);
  }
}

function render() {
  ensureTiles();
  const ps = pages();
  if (pageIndex >= ps.length) pageIndex = 0;
  const page = ps[pageIndex];
  const alarms = unackedAlarmsByVillage();
  const alarmDevices = new Set([...state.alerts.values()].filter((a) => a.state === "open").map((a) => a.device_id));
  const now = Date.now() / 1000;
  const list = page ? page.cameras : [];
  const grid = document.getElementById("camera-grid");
  layoutGrid(grid, list.length); // reads the box size before any write: no forced layout
  tiles.forEach((el, i) => {
    const d = list[i];
    if (!d) { el.classList.add("hidden"); delete el.dataset.device; return; }
    el.dataset.device = d.id;
    const th = thumbs.get(d.id);
    const st = tileState(d, snapshotTs(d), now);
    el.className = `tile ${st.cls}${alarmDevices.has(d.id) ? " alarm" : ""}`;
    el.dataset.status = d.status;
    const img = el.querySelector("img");
    if (th?.url) { if (img.getAttribute("src") !== th.url) img.src = th.url; img.classList.remove("hidden"); }
    else { img.removeAttribute("src"); img.classList.add("hidden"); }
    el.querySelector(".noimg").textContent = th?.url ? "" : t("no_image");
    el.querySelector(".badge").textContent = st.badge ? t(st.badge) : "";
    el.querySelector(".badge").classList.toggle("hidden", !st.badge);
    el.querySelector(".name").textContent = `${villageName(d.village)} · ${d.name || d.id}`;
    const ts = snapshotTs(d);
    el.querySelector(".age").textContent = ts ? ago(now - ts) : "";
    if (!th || stale.has(d.id)) wantThumb(d.id);
  });
  grid.dataset.village = page?.villages.join(",") ?? "";
  const label = document.getElementById("cam-page");
  pausedForAlarm = Boolean(tourOn && page && page.villages.some((v) => alarms.get(v)));
  label.textContent = ps.length ? `${page.villages.map(villageName).join("、")} · ${t("page", { p: pageIndex + 1, n: ps.length })}` : t("no_cameras");
  const tourBtn = document.getElementById("cam-tour");
  tourBtn.textContent = !tourOn ? t("tour_off") : pausedForAlarm ? t("tour_paused") : t("tour_on");
  tourBtn.setAttribute("aria-pressed", String(tourOn));
  renderFilter();
}

/** Columns and tile height that make `n` 16:9 tiles as large as the box allows (pure). */
export function bestLayout(n, width, height, gap = 8) {
  let best = { cols: 1, rows: 1, tileH: 0 };
  for (let cols = 1; cols <= 6; cols += 1) {
    const rows = Math.max(1, Math.ceil(n / cols));
    const w = (width - gap * (cols - 1)) / cols;
    const h = Math.min((height - gap * (rows - 1)) / rows, w * 0.75);
    if (h > best.tileH) best = { cols, rows, tileH: Math.floor(h) };
  }
  return best;
}

let lastLayout = "";
function layoutGrid(grid, n) {
  const { cols, rows, tileH } = bestLayout(Math.max(n, 4), grid.clientWidth, grid.clientHeight);
  const sig = `${cols}x${rows}x${tileH}`;
  if (sig === lastLayout) return;
  lastLayout = sig;
  grid.style.gridTemplateColumns = `repeat(${cols}, 1fr)`;
  grid.style.gridTemplateRows = `repeat(${rows}, ${tileH}px)`;
}

function renderFilter() {
  const sel = document.getElementById("cam-village");
  const opts = [["", t("all_villages")], ...state.villages.map((v) => [v.id, v.name])];
  const sig = opts.map((o) => o.join("=")).join("|");
  if (sel.dataset.sig !== sig) {
    sel.innerHTML = opts.map(([id, name]) => `<option value="${esc(id)}">${esc(name)}</option>`).join("");
    sel.dataset.sig = sig;
  }
  sel.value = filter;
}

function wantThumb(id) {
  if (queued.has(id)) return;
  queued.add(id);
  queue.push(id);
  pump();
}

function visibleIds() { return new Set(tiles.map((el) => el.dataset.device).filter(Boolean)); }

function pump() {
  while (inflight < FETCH_CONCURRENCY && queue.length) {
    const id = queue.shift();
    queued.delete(id);
    if (!visibleIds().has(id)) continue;
    stale.delete(id);
    inflight += 1;
    fetchImage(`/devices/${encodeURIComponent(id)}/thumbnail`)
      .then(({ url, ts }) => {
        const old = thumbs.get(id);
        thumbs.delete(id); // re-insert: most recently used last
        thumbs.set(id, { url, ts: ts ?? snapTimes.get(id) ?? null });
        if (ts && !(snapTimes.get(id) > ts)) snapTimes.set(id, ts);
        if (old?.url) setTimeout(() => URL.revokeObjectURL(old.url), 2000); // after the tile shows the new one
        evict();
      })
      .catch(() => { if (!thumbs.has(id)) thumbs.set(id, { url: null, ts: null }); })
      .finally(() => { inflight -= 1; markDirty("cameras"); pump(); });
  }
}

/** Keep at most MAX_THUMBS images, dropping the least recently fetched that are not on screen. */
function evict() {
  if (thumbs.size <= MAX_THUMBS) return;
  const onScreen = visibleIds();
  for (const [id, th] of thumbs) {
    if (thumbs.size <= MAX_THUMBS) break;
    if (onScreen.has(id)) continue;
    if (th.url) URL.revokeObjectURL(th.url);
    thumbs.delete(id);
  }
}

/** Live snapshot event: remember the time; a camera on screen gets its new thumbnail. */
export function onSnapshot(data) {
  const d = state.devices.get(data.device);
  if (d && data.health !== undefined) d.health = data.health;
  snapTimes.set(data.device, data.ts);
  if (thumbs.has(data.device)) stale.add(data.device);
  if (visibleIds().has(data.device)) markDirty("cameras");
  onModalSnapshot(data.device); // e.g. the answer to 立即抓拍
}

/** A new alarm: the tour jumps to its village. */
export function onAlarm(alert) {
  if (!tourOn || !alert.village || filter) return;
  const idx = pages().findIndex((p) => p.villages.includes(alert.village));
  if (idx >= 0) { pageIndex = idx; held = 0; markDirty("cameras"); }
}

export function showVillage(id) {
  filter = id;
  pageIndex = 0;
  held = 0;
  markDirty("cameras");
}

function unackedAlarmsByVillage() {
  const m = new Map();
  for (const a of state.alerts.values()) if (a.state === "open" && !a.acked_by && a.village) m.set(a.village, (m.get(a.village) || 0) + 1);
  return m;
}

/** The tour moves on every dwell, but holds a page with an unacknowledged alarm for TOUR_ALARM_HOLD dwells. */
function advance() {
  if (!tourOn) return;
  if (pausedForAlarm && held < TOUR_ALARM_HOLD - 1) { held += 1; return; }
  held = 0;
  const n = pages().length;
  pageIndex = n ? (pageIndex + 1) % n : 0;
  markDirty("cameras");
}

export function initCameras() {
  ensureTiles();
  document.getElementById("cam-village").addEventListener("change", (e) => showVillage(e.target.value));
  document.getElementById("cam-tour").addEventListener("click", () => { tourOn = !tourOn; markDirty("cameras"); });
  tourTimer = setInterval(advance, TOUR_DWELL_MS);
  setInterval(() => markDirty("cameras"), 5000); // ages tick
  initCameraModal();
  window.addEventListener("resize", () => { lastLayout = ""; markDirty("cameras"); });
  register("cameras", render);
  return () => clearInterval(tourTimer);
}
