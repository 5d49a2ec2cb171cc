// One in-memory picture of the township, fed by REST loads and the live stream.
// Panels never render on every event: they are marked dirty and redrawn once per animation frame.
export const state = {
  me: null,                 // {name, role}
  overview: null,           // GET /overview
  devices: new Map(),       // id → device item
  villages: [],             // GET /villages
  villageById: new Map(),
  alerts: new Map(),        // id → alert item (open and recently cleared)
  history: null,            // GET /stats/history
  broadcasts: [],           // GET /broadcasts (operator list)
  calendar: [],             // today's occurrences
  calendarFrom: 0,          // the township's local midnight (Unix s)
  progress: new Map(),      // broadcast id → {title, priority, status, done, total, by_state, updated} from events
  health: { hub: null, mqtt: null, store: null },
  link: "connecting",
  tz: "Asia/Shanghai",
  // issue 14
  problems: new Map(),      // id → problem summary (GET /problems, `problem` events)
  lights: new Map(),        // id → lamp item (GET /lights; presence and `light_command` events)
  lightBatches: new Map(),  // batch id → {id, action, level, created_at, deliveries: Map device → {state, reason}}
  ranking: null,            // GET /rankings?period=
  rankingPeriods: [],       // GET /rankings/periods
};

/** Unix s of each camera's latest snapshot (from snapshot events and image headers). */
export const snapTimes = new Map();

/** A village's name; devices of no village belong to the township itself (乡政府 etc.). */
export function villageName(id) { return state.villageById.get(id)?.name || id || state.overview?.township || "—"; }

const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
export function can(role) { return (ROLE_RANK[state.me?.role] || 0) >= ROLE_RANK[role]; }

const renderers = new Map();
const dirty = new Set();
let frame = 0;

export function register(name, fn) { renderers.set(name, fn); }

export function markDirty(...names) {
  for (const n of names) dirty.add(n);
  if (!frame) frame = requestAnimationFrame(flush);
}

export function markAllDirty() { markDirty(...renderers.keys()); }

/** Per panel: renders and the slowest one in ms (window.__vh.renderStats, for tuning). */
export const renderStats = {};

function flush() {
  frame = 0;
  const names = [...dirty];
  dirty.clear();
  for (const n of names) {
    const fn = renderers.get(n);
    if (!fn) continue;
    const t0 = performance.now();
    try { fn(); } catch (err) { console.error(`render ${n}`, err); }
    const ms = performance.now() - t0;
    const st = (renderStats[n] ||= { count: 0, max_ms: 0, total_ms: 0 });
    st.count += 1;
    st.total_ms += ms;
    st.max_ms = Math.max(st.max_ms, ms);
  }
}

const zero = () => ({ online: 0, offline: 0, unknown: 0, total: 0 });
let countIndex = null;

/** Call whenever a device's status changes or the device list is replaced: counts are cached. */
export function devicesChanged() { countIndex = null; }

function buildIndex() {
  const byKind = { camera: zero(), speaker: zero() };
  const byVillage = new Map();
  for (const d of state.devices.values()) {
    const k = byKind[d.kind];
    if (!k) continue;
    const st = d.status === "online" || d.status === "offline" ? d.status : "unknown";
    k[st] += 1;
    k.total += 1;
    if (!d.village) continue;
    let v = byVillage.get(d.village);
    if (!v) { v = { camera: zero(), speaker: zero() }; byVillage.set(d.village, v); }
    v[d.kind][st] += 1;
    v[d.kind].total += 1;
  }
  return { byKind, byVillage };
}

/** Online/offline/unknown/total per kind, optionally within one village (one pass, cached). */
export function countDevices(kind, village) {
  if (state.devices.size === 0 && state.overview) {
    const src = village ? state.overview.villages?.find((v) => v.id === village)?.[kind] : state.overview.devices?.[kind];
    return { ...zero(), ...(src || {}) };
  }
  countIndex ||= buildIndex();
  if (!village) return countIndex.byKind[kind] || zero();
  return countIndex.byVillage.get(village)?.[kind] || zero();
}

/** Broadcast occurrences today (calendar), or the overview's count when there is no calendar. */
export function broadcastsToday(from, to) {
  if (state.calendar.length || state.overview?.broadcasts?.today === undefined) {
    return state.calendar.filter((o) => { const at = o.at ?? o.start; return at >= from && at < to; }).length;
  }
  return state.overview.broadcasts.today;
}

export function openAlerts() {
  return [...state.alerts.values()].filter((a) => a.state === "open");
}

export function openAlertsByVillage() {
  const m = new Map();
  for (const a of openAlerts()) if (a.village) m.set(a.village, (m.get(a.village) || 0) + 1);
  return m;
}

/** Problems not closed or rejected, and how many of them are overdue. */
export function openProblems() {
  return [...state.problems.values()].filter((p) => p.state !== "closed" && p.state !== "rejected");
}

/** The open problem filed from an alert (by its key), if any. */
export function problemForAlert(key) {
  if (!key) return null;
  for (const p of state.problems.values()) if (p.alert_key === key && p.state !== "rejected") return p;
  return null;
}
