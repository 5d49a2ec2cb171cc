// 24 h charts from /api/v1/stats/history: online rate per kind, heartbeat loss.
import { fittedChart } from "../echart.js";
import { fmtHM } from "../fmt.js";
import { t } from "../i18n.js";
import { register, state } from "../state.js";

let online = null;
let loss = null;
const AXIS = { axisLabel: { color: "#8fb0d6", fontSize: 13 }, axisLine: { lineStyle: { color: "#1b4a80" } }, splitLine: { lineStyle: { color: "rgba(27,74,128,0.4)" } } };

/** The axis spans the last 24 h, or less while the hub has not been up that long (≥ 30 min). */
export function axisRange(points, nowMs) {
  const day = nowMs - 24 * 3600 * 1000;
  const first = points.length ? points[0].ts * 1000 : nowMs;
  return { min: Math.max(day, Math.min(first, nowMs - 30 * 60 * 1000)), max: nowMs };
}

function base(title, points) {
  const now = Date.now();
  const { min, max } = axisRange(points, now);
  return {
    animation: false, backgroundColor: "transparent",
    title: { text: title, textStyle: { color: "#e8f3ff", fontSize: 15, fontWeight: 500 }, left: 0, top: 0 },
    legend: { right: 0, top: 0, textStyle: { color: "#8fb0d6", fontSize: 13 }, itemWidth: 14 },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "—" : String(v)) },
    grid: { left: 44, right: 12, top: 34, bottom: 24 },
    xAxis: { type: "time", min, max, ...AXIS, splitLine: { show: false },
      splitNumber: 4, axisLabel: { ...AXIS.axisLabel, hideOverlap: true, formatter: (v) => fmtHM(v / 1000) } },
  };
}

const pct = (a, b) => (b ? Math.round((1000 * a) / b) / 10 : null);

function render() {
  if (!online) return;
  const pts = state.history?.points || [];
  online.setOption({
    ...base(t("online_rate"), pts),
    yAxis: { type: "value", min: (v) => Math.max(0, Math.floor(v.min / 10) * 10), max: 100, ...AXIS, axisLabel: { ...AXIS.axisLabel, formatter: "{value}%" } },
    series: [
      { name: t("cameras"), type: "line", showSymbol: false, smooth: true, lineStyle: { width: 2.5 }, color: "#27c4ff", areaStyle: { opacity: 0.12 },
        data: pts.map((p) => [p.ts * 1000, pct(p.cameras_online, p.cameras_total)]) },
      { name: t("speakers_s"), type: "line", showSymbol: false, smooth: true, lineStyle: { width: 2.5 }, color: "#2fe08a",
        data: pts.map((p) => [p.ts * 1000, pct(p.speakers_online, p.speakers_total)]) },
    ],
  }, { notMerge: true });
  loss.setOption({
    ...base(t("heartbeat_loss"), pts),
    yAxis: [{ type: "value", ...AXIS, axisLabel: { ...AXIS.axisLabel, formatter: "{value}%" } }],
    series: [
      { name: `${t("lost")} %`, type: "bar", color: "#ff4d5e", barMaxWidth: 6,
        data: pts.map((p) => [p.ts * 1000, pct(p.heartbeats_lost ?? 0, (p.heartbeats ?? 0) + (p.heartbeats_lost ?? 0))]) },
    ],
  }, { notMerge: true });
}

export function initCharts() {
  if (!window.echarts) return;
  online = fittedChart(document.getElementById("chart-online"));
  loss = fittedChart(document.getElementById("chart-loss"));
  register("charts", render);
}
