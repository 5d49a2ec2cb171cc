// Township map: villages placed by coordinates, coloured by health. No tiles: a scatter on
// plain axes, or on the township boundary (GeoJSON) when the hub serves /wall/boundary.geojson.
import { fittedChart } from "../echart.js";
import { escapeHtml } from "../fmt.js";
import { t } from "../i18n.js";
import { countDevices, markDirty, openAlerts, openAlertsByVillage, register, state } from "../state.js";
import { lampMapData, lampTooltipHtml } from "./lights.js";

const MANY_VILLAGES = 30; // beyond this, smaller dots and only the labels that fit
const MAX_RIPPLES = 12;
const COLORS = { ok: "#2fe08a", warn: "#ffc53d", bad: "#ff4d5e", unknown: "#6c7b90" };
let chart = null;
let hasBoundary = false;
let clickHandler = () => {};
export const selected = new Set(); // villages picked as broadcast targets
let picking = false;

/** ok | warn | bad | unknown for a village (pure over its counts and open alarms):
 * bad = a critical alarm or half the devices offline; warn = another alarm or some offline. */
export function villageHealth(cam, spk, alarms, critical = 0) {
  const total = cam.total + spk.total;
  const offline = cam.offline + spk.offline;
  const known = cam.online + spk.online + offline;
  if (critical > 0 || (known > 0 && offline / total >= 0.5)) return "bad";
  if (alarms > 0 || offline > 0) return "warn";
  if (total === 0 || known === 0) return "unknown";
  return "ok";
}

/** Label to the right unless another village sits there; then above (pure over coordinates). */
export function placeLabels(data, lons, lats) {
  const spanLon = Math.max(1e-6, Math.max(...lons) - Math.min(...lons));
  const spanLat = Math.max(1e-6, Math.max(...lats) - Math.min(...lats));
  for (const d of data) {
    const crowded = data.some((o) => o !== d && o.value[0] > d.value[0]
      && (o.value[0] - d.value[0]) / spanLon < 0.3 && Math.abs(o.value[1] - d.value[1]) / spanLat < 0.06);
    d.label = { position: crowded ? "top" : "right" };
  }
}

/** The tooltip of a village dot: HTML, so every value in it is escaped (names are typed by people). */
export function tooltipHtml(p) {
  const d = p.data;
  if (d?.lamp) return lampTooltipHtml(d);
  if (!d?.cam) return "";
  const line = (label, a, b) => `${escapeHtml(label)} ${escapeHtml(a)}${b === undefined ? "" : `/${escapeHtml(b)}`}`;
  return `<b>${escapeHtml(d.name)}</b><br>${line(t("cameras"), d.cam.online, d.cam.total)}`
    + `<br>${line(t("speakers_s"), d.spk.online, d.spk.total)}<br>${line(t("alarms"), d.alarms)}`;
}

export function onVillageClick(fn) { clickHandler = fn; }
export function setPicking(on) { picking = on; document.getElementById("map-hint").textContent = on ? t("map_pick") : ""; render(); }

async function loadBoundary() {
  try {
    const res = await fetch("/wall/boundary.geojson");
    if (!res.ok) return;
    window.echarts.registerMap("township", await res.json());
    hasBoundary = true;
  } catch { /* no boundary: plain axes */ }
}

function render() {
  if (!chart) return;
  const byVillage = openAlertsByVillage();
  const many = state.villages.length > MANY_VILLAGES;
  const critical = new Map();
  for (const a of openAlerts()) if (a.severity === "critical" && a.village) critical.set(a.village, (critical.get(a.village) || 0) + 1);
  const data = state.villages.filter((v) => Number.isFinite(v.lon) && Number.isFinite(v.lat)).map((v) => {
    const cam = countDevices("camera", v.id), spk = countDevices("speaker", v.id);
    const alarms = byVillage.get(v.id) || 0;
    const health = villageHealth(cam, spk, alarms, critical.get(v.id) || 0);
    const isSel = selected.has(v.id);
    return {
      name: v.name, id: v.id, value: [v.lon, v.lat], cam, spk, alarms, health,
      symbolSize: many ? 8 + Math.min(8, Math.sqrt(cam.total + spk.total)) : 14 + Math.min(18, Math.sqrt(cam.total + spk.total) * 2.5),
      itemStyle: { color: COLORS[health], shadowBlur: health === "bad" ? 20 : 8, shadowColor: COLORS[health],
        borderColor: isSel ? "#ffffff" : "rgba(0,0,0,0)", borderWidth: isSel ? 4 : 0 },
    };
  });
  const lamps = lampMapData(); // street lights layer (toggle in the panel title)
  const lons = [...data, ...lamps].map((d) => d.value[0]), lats = [...data, ...lamps].map((d) => d.value[1]);
  if (many) {
    // a crowded map names only its worst villages (hover names the rest)
    const named = new Set(data.filter((d) => d.health === "bad").sort((a, b) => b.alarms - a.alarms).slice(0, MAX_RIPPLES));
    for (const d of data) d.label = { show: named.has(d), position: "right" };
  } else {
    placeLabels(data, lons, lats);
  }
  const pad = (a) => Math.max(0.005, (Math.max(...a) - Math.min(...a)) * 0.12);
  const series = {
    type: "scatter", data, coordinateSystem: hasBoundary ? "geo" : "cartesian2d",
    label: { show: true, position: "right", color: "#e8f3ff", fontSize: 14,
      formatter: (p) => `${p.data.name} ${p.data.cam.online + p.data.spk.online}/${p.data.cam.total + p.data.spk.total}` },
    labelLayout: many ? { hideOverlap: true } : { moveOverlap: "shiftY" },
    emphasis: { scale: 1.4 },
  };
  const alarmRipple = {
    type: "effectScatter", coordinateSystem: series.coordinateSystem, silent: true, z: 1,
    // ripples are costly to animate: only the worst few villages get one
    data: data.filter((d) => d.health === "bad").sort((a, b) => b.alarms - a.alarms).slice(0, MAX_RIPPLES)
      .map((d) => ({ value: d.value, symbolSize: d.symbolSize })),
    rippleEffect: { scale: 3, brushType: "stroke" }, itemStyle: { color: COLORS.bad },
  };
  const option = {
    animation: false,
    tooltip: { trigger: "item", backgroundColor: "#081a36", borderColor: "#27c4ff", textStyle: { color: "#e8f3ff", fontSize: 15 },
      formatter: tooltipHtml },
    // lamps above the village dots (they stand within a few hundred metres of the centre), outlined
    series: [alarmRipple, { ...series, z: 2 }, { type: "scatter", name: "lamps", coordinateSystem: series.coordinateSystem, data: lamps, z: 3,
      symbolSize: many ? 5 : 8, itemStyle: { borderColor: "#041020", borderWidth: 1.5 }, emphasis: { scale: 1.8 }, label: { show: false } }],
  };
  if (hasBoundary) {
    option.geo = { map: "township", roam: false, top: 10, bottom: 10, left: 10, right: 90, itemStyle: { areaColor: "rgba(20,60,110,0.5)", borderColor: "#27c4ff" },
      emphasis: { disabled: true }, label: { show: false } };
  } else {
    const axis = (vals) => (vals.length
      ? { type: "value", show: false, scale: true, min: Math.min(...vals) - pad(vals), max: Math.max(...vals) + pad(vals) }
      : { type: "value", show: false, scale: true });
    option.grid = { left: 10, right: 90, top: 10, bottom: 10 };
    option.xAxis = axis(lons);
    option.yAxis = axis(lats);
  }
  chart.setOption(option, { notMerge: true, lazyUpdate: true });
}

export async function initMap() {
  if (!window.echarts) return;
  await loadBoundary();
  chart = fittedChart(document.getElementById("map"), null, { renderer: "canvas" });
  chart.on("click", (p) => { if (p.data?.id) clickHandler(p.data.id, picking, Boolean(p.data.lamp)); });
  register("map", render);
  markDirty("map"); // data may have arrived while the boundary loaded
}
