// The enlarged camera: latest snapshot, a strip of recent ones, heartbeat values, a 24 h chart of
// image metrics, and (operators) a snapshot request whose answer replaces the picture.
import { api, fetchImage } from "../api.js";
import { fittedChart } from "../echart.js";
import { esc, fmtDateTime, fmtHM } from "../fmt.js";
import { ago, t } from "../i18n.js";
import { snapTimes, state, villageName } from "../state.js";
import { toast } from "../toast.js";
import { openCreate } from "./problems.js";

let modalDevice = null;
let modalChart = null;
let modalUrl = null;

function showLatest(id) {
  const img = document.getElementById("cam-modal-img");
  const meta = document.getElementById("cam-modal-meta");
  fetchImage(`/devices/${encodeURIComponent(id)}/snapshot`).then(({ url, ts }) => {
    if (modalDevice !== id) { URL.revokeObjectURL(url); return; }
    if (modalUrl) URL.revokeObjectURL(modalUrl);
    modalUrl = url;
    img.src = url;
    for (const f of document.getElementById("cam-modal-history").children) f.classList.remove("active");
    const when = ts ?? snapTimes.get(id) ?? null;
    meta.textContent = when ? `${fmtDateTime(when)} · ${ago(Date.now() / 1000 - when)}` : "";
  }).catch(() => { if (modalDevice === id && !img.src) meta.textContent = t("no_image"); });
}

export async function openCamera(id) {
  modalDevice = id;
  const modal = document.getElementById("cam-modal");
  modal.classList.remove("hidden");
  const d = state.devices.get(id) || { id };
  document.getElementById("cam-modal-title").textContent = `${villageName(d.village)} · ${d.name || id}`;
  document.getElementById("cam-modal-img").removeAttribute("src");
  document.getElementById("cam-modal-meta").textContent = "";
  showLatest(id);
  const info = document.getElementById("cam-modal-info");
  const row = (k, v) => `<dt>${esc(t(k))}</dt><dd>${esc(v ?? "—")}</dd>`;
  const fill = (x) => {
    info.innerHTML = row("device", x.id) + row("village", villageName(x.village)) + row("status", t(x.status || "unknown"))
      + row("health", x.health ? t(`health_${x.health}`) : "—") + row("last_seen", x.last_seen ? fmtDateTime(x.last_seen) : "—")
      + row("reason", x.presence_reason) + Object.entries(x.heartbeat || {}).filter(([k]) => !["seq", "interval_s", "stream_url"].includes(k)).slice(0, 6).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  };
  fill(d);
  api(`/devices/${encodeURIComponent(id)}`).then((x) => { if (modalDevice === id) fill(x); }).catch(() => {});
  loadHistory(id);
  const end = Math.floor(Date.now() / 1000), start = end - 24 * 3600;
  const fields = ["brightness", "sharpness", "fps"];
  const results = await Promise.all(fields.map((f) => api(`/devices/${encodeURIComponent(id)}/series?field=${f}&start=${start}&end=${end}&every=600`).catch(() => null)));
  if (modalDevice !== id || !window.echarts) return;
  modalChart ||= fittedChart(document.getElementById("cam-modal-chart")); // the details beside it may grow after it is drawn
  const axisStyle = { axisLabel: { color: "#8fb0d6" }, splitLine: { lineStyle: { color: "#1b3a66" } } };
  modalChart.setOption({
    animation: false, backgroundColor: "transparent", tooltip: { trigger: "axis" },
    legend: { top: 0, textStyle: { color: "#e8f3ff", fontSize: 13 } },
    grid: { left: 50, right: 50, top: 30, bottom: 25 },
    xAxis: { type: "time", min: (start * 1000), max: (end * 1000), axisLabel: { color: "#8fb0d6", formatter: (v) => fmtHM(v / 1000) } },
    yAxis: [{ type: "value", ...axisStyle }, { type: "value", ...axisStyle, splitLine: { show: false } }],
    series: fields.map((f, i) => ({ name: f, type: "line", showSymbol: false, connectNulls: false, yAxisIndex: f === "sharpness" ? 1 : 0,
      data: (results[i]?.points || []).map(([ts, v]) => [ts * 1000, v]) })),
  }, { notMerge: true });
  modalChart.resize();
}

const HISTORY_SHOWN = 8;
let historyUrls = [];

/** The camera's recent snapshots (kept by the hub on health changes and periodically), newest first. */
async function loadHistory(id) {
  const strip = document.getElementById("cam-modal-history");
  for (const u of historyUrls) URL.revokeObjectURL(u);
  historyUrls = [];
  strip.textContent = "";
  let items = [];
  try { items = (await api(`/devices/${encodeURIComponent(id)}/snapshots`)).items || []; } catch { return; }
  if (modalDevice !== id) return;
  for (const it of items.slice(0, HISTORY_SHOWN)) {
    const fig = document.createElement("figure");
    const bad = it.health && it.health !== "ok";
    fig.innerHTML = `<img alt=""><figcaption class="${bad ? "bad" : ""}">${esc(fmtDateTime(it.ts))}${bad ? ` ${esc(t(`health_${it.health}`))}` : ""}</figcaption>`;
    strip.appendChild(fig);
    fetchImage(`/devices/${encodeURIComponent(id)}/snapshots/${it.id}`).then(({ url }) => {
      if (modalDevice !== id) { URL.revokeObjectURL(url); return; }
      historyUrls.push(url);
      fig.querySelector("img").src = url;
      fig.addEventListener("click", () => {
        for (const f of strip.children) f.classList.toggle("active", f === fig);
        document.getElementById("cam-modal-img").src = url;
        document.getElementById("cam-modal-meta").textContent = `${fmtDateTime(it.ts)} · ${ago(Date.now() / 1000 - it.ts)}`;
      });
    }).catch(() => {});
  }
}

/** A new snapshot of the camera shown enlarged replaces its picture. */
export function onModalSnapshot(device) {
  if (modalDevice === device) showLatest(device);
}

export function initCameraModal() {
  document.getElementById("cam-modal-snap").addEventListener("click", async () => {
    if (!modalDevice) return;
    try { await api(`/devices/${encodeURIComponent(modalDevice)}/snapshot-request`, { method: "POST" }); toast(t("snapshot_requested")); }
    catch (err) { toast(t("error", { msg: err.message }), true); }
  });
  // 转为整改问题: a problem with this camera's latest snapshot as its before-photo
  document.getElementById("cam-modal-problem").addEventListener("click", () => {
    if (!modalDevice) return;
    const alert = [...state.alerts.values()].find((a) => a.state === "open" && a.device_id === modalDevice) || null;
    openCreate({ alert, camera: modalDevice });
  });
  const close = () => { document.getElementById("cam-modal").classList.add("hidden"); modalDevice = null; };
  document.getElementById("cam-modal").addEventListener("click", (e) => {
    if (e.target.id === "cam-modal" || e.target.hasAttribute("data-close")) close();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && modalDevice) close(); });
}
