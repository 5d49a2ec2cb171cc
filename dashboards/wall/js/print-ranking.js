// The printable village ranking (ranking.html): A4 portrait for public posting (张榜公示).
// Same token as the wall screen (this browser's login), same CSP: no inline script or style.
import { api, getToken, initToken } from "./api.js";
import { esc } from "./fmt.js";
import { initLang, t } from "./i18n.js";
import { COMPONENTS, fmtScore, trendMark } from "./panels/ranking.js";
import { state } from "./state.js";

const params = new URLSearchParams(location.search);

function day(ts, opts) {
  return new Intl.DateTimeFormat("zh-CN", { timeZone: state.tz, year: "numeric", month: "long", day: "numeric", ...opts }).format(new Date(ts * 1000));
}

/** The rows of the printed table (pure): every village with its components and trend. */
export function tableRows(items) {
  const n = items.length;
  const top = Math.min(3, Math.floor(n / 2));
  return [...items].sort((a, b) => a.rank - b.rank).map((it, i) => ({
    cls: i < top ? "top" : i >= n - top ? "bottom" : "",
    cells: [
      `<td class="rank">${esc(it.rank)}</td>`,
      `<td class="village">${esc(it.name || it.village)}</td>`,
      `<td class="score">${esc(fmtScore(it.score))}</td>`,
      ...COMPONENTS.map((k) => {
        const c = it.breakdown?.[k] || {};
        return `<td>${esc(c.score ?? "—")}<span class="detail">${esc(c.detail ?? "")}</span></td>`;
      }),
      `<td><span class="trend ${esc(it.trend)}">${esc(trendMark(it.trend))}</span>`
        + `${it.previous_rank ? `<span class="detail">${esc(t("rk_prev", { n: it.previous_rank }))}</span>` : ""}</td>`,
    ],
  }));
}

function render(r, township) {
  document.getElementById("title").textContent = t("rk_title", { township, period: r.label || r.period });
  document.title = document.getElementById("title").textContent;
  const start = Date.parse(r.start) / 1000, end = Date.parse(r.end) / 1000 - 1;
  document.getElementById("sub").textContent = `${t("rk_period")}：${day(start)} — ${day(end)}`;
  document.getElementById("rank-head").innerHTML = [t("rk_rank"), t("rk_village"), t("rk_score"),
    ...COMPONENTS.map((k) => `${t(`rk_${k}`)}（${Math.round((r.weights?.[k] ?? 0) * 100)}%）`), t("rk_trend")]
    .map((h) => `<th>${esc(h)}</th>`).join("");
  document.getElementById("rank-body").innerHTML = tableRows(r.items || [])
    .map((row) => `<tr class="${row.cls}">${row.cells.join("")}</tr>`).join("")
    || `<tr><td colspan="${COMPONENTS.length + 4}">${esc(t("rk_no_data"))}</td></tr>`;
  const weights = COMPONENTS.map((k) => `${t(`rk_${k}`)} ${Math.round((r.weights?.[k] ?? 0) * 100)}%`).join("、");
  document.getElementById("method").textContent = t("rk_method", { weights, at: day(r.computed_at || Date.now() / 1000, { hour: "2-digit", minute: "2-digit" }) });
  document.getElementById("posted-by").textContent = t("rk_posted_by", { township });
  document.getElementById("posted-date").textContent = day(Date.now() / 1000);
  document.body.dataset.period = r.period;
  document.body.dataset.ready = "1";
}

async function load(period) {
  const status = document.getElementById("status");
  status.textContent = "";
  try {
    const q = period ? `?period=${encodeURIComponent(period)}` : "";
    const [ov, r] = await Promise.all([api("/overview").catch(() => null), api(`/rankings${q}`)]);
    if (ov?.tz) state.tz = ov.tz;
    render(r, ov?.township || "");
    return r;
  } catch (err) {
    status.textContent = err.status === 401 ? t("rk_login") : t("error", { msg: err.message });
    return null;
  }
}

async function start() {
  initLang();
  initToken();
  document.getElementById("print").addEventListener("click", () => window.print());
  if (!getToken()) { document.getElementById("status").textContent = t("rk_login"); return; }
  const r = await load(params.get("period"));
  const sel = document.getElementById("period");
  const periods = await api("/rankings/periods").catch(() => null);
  const opts = (periods?.items || []).map((p) => [p.period, p.label || p.period]);
  if (r && !opts.some(([k]) => k === r.period)) opts.unshift([r.period, r.label || r.period]);
  sel.innerHTML = opts.map(([k, label]) => `<option value="${esc(k)}">${esc(label)}</option>`).join("");
  if (r) sel.value = r.period;
  sel.addEventListener("change", () => {
    const q = new URLSearchParams(location.search);
    q.set("period", sel.value);
    history.replaceState(null, "", `${location.pathname}?${q}`);
    load(sel.value);
  });
}

start();
