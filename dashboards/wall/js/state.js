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
};

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

function flush() {
  frame = 0;
  const names = [...dirty];
  dirty.clear();
  for (const n of names) {
    const fn = renderers.get(n);
    if (!fn) continue;
    try { fn(); } catch (err) { console.error(`render ${n}`, err); }
  }
}

/** Online/offline/unknown/total per kind, optionally within one village. */
export function countDevices(kind, village) {
  const c = { online: 0, offline: 0, unknown: 0, total: 0 };
  if (state.devices.size === 0 && state.overview) {
    const src = village ? state.overview.villages?.find((v) => v.id === village)?.[kind] : state.overview.devices?.[kind];
    return { ...c, ...(src || {}) };
  }
  for (const d of state.devices.values()) {
    if (d.kind !== kind || (village && d.village !== village)) continue;
    c.total += 1;
    c[d.status in c ? d.status : "unknown"] += 1;
  }
  return c;
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
