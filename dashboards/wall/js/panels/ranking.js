// Village ranking 红榜/黑榜: the best and the worst villages of a period with score and trend
// (↑ ↓ against the period before), each village's breakdown on hover or click, a period picker,
// and a link to the printable page (ranking.html) for public posting (张榜公示).
import { api } from "../api.js";
import { esc } from "../fmt.js";
import { t } from "../i18n.js";
import { markDirty, register, state } from "../state.js";

export const COMPONENTS = ["availability", "alarm_ack", "problems_on_time", "broadcast_delivery"];
const SHOWN = 5;
let period = "";
let picked = null; // village whose breakdown is shown (hover, or pinned by a click)
let pinned = false;

/** Red list (top) and black list (bottom), without overlap: with fewer than 2×n villages they
 * split the list in half (pure). The black list reads worst first. */
export function splitBoards(items, n = SHOWN) {
  const sorted = [...items].sort((a, b) => a.rank - b.rank || String(a.village).localeCompare(String(b.village)));
  const k = Math.min(n, Math.ceil(sorted.length / 2));
  const red = sorted.slice(0, k);
  const black = sorted.slice(k).slice(-Math.min(n, sorted.length - k)).reverse();
  return { red, black };
}

/** Scores print with one decimal, as the hub computes them. */
export function fmtScore(v) { return Number.isFinite(Number(v)) && v !== null ? Number(v).toFixed(1) : "—"; }

export function trendMark(trend) {
  return { up: "↑", down: "↓", same: "—", new: t("rk_trend_new") }[trend] ?? "";
}

/** The breakdown of one village as HTML (escaped: names and details come from the hub). */
export function breakdownHtml(item) {
  const rows = COMPONENTS.map((k) => {
    const c = item.breakdown?.[k] || {};
    const pct = Math.max(0, Math.min(100, Number(c.score) || 0));
    return `<tr><th>${esc(t(`rk_${k}`))}</th><td class="bar"><i style="width:${pct}%"></i></td>`
      + `<td class="num">${esc(c.score ?? "—")}</td><td class="hint">${esc(t("rk_weight"))} ${esc(c.weight ?? "")}</td>`
      + `<td class="detail" title="${esc(c.detail ?? "")}">${esc(c.detail ?? "")}</td></tr>`;
  }).join("");
  const prev = item.previous_rank ? ` · ${esc(t("rk_prev", { n: item.previous_rank }))}` : "";
  return `<div class="rk-bd-head"><b>${esc(item.name || item.village)}</b> ${esc(t("rk_score"))} <b class="num">${esc(fmtScore(item.score))}</b>${prev}</div>`
    + `<table class="rk-bd-table">${rows}</table>`;
}

export async function loadRanking() {
  const q = period ? `?period=${encodeURIComponent(period)}` : "";
  const [r, periods] = await Promise.all([
    api(`/rankings${q}`),
    state.rankingPeriods.length ? null : api("/rankings/periods").catch(() => null),
  ]);
  state.ranking = r;
  if (periods) state.rankingPeriods = periods.items || [];
  markDirty("ranking");
}

function row(item, board) {
  const tr = item.trend || "";
  return `<li data-village="${esc(item.village)}" class="${picked === item.village ? "picked" : ""}">`
    + `<span class="rk-no ${board}">${esc(item.rank)}</span><span class="grow">${esc(item.name || item.village)}</span>`
    + `<span class="rk-score">${esc(fmtScore(item.score))}</span><span class="rk-trend ${esc(tr)}" title="${item.previous_rank ? esc(t("rk_prev", { n: item.previous_rank })) : ""}">${esc(trendMark(tr))}</span></li>`;
}

function render() {
  const box = document.getElementById("ranking");
  if (!box) return;
  renderPicker();
  const r = state.ranking;
  const items = r?.items || [];
  if (!items.length) { box.innerHTML = `<p class="empty">${esc(t("rk_no_data"))}</p>`; return; }
  const { red, black } = splitBoards(items);
  const item = items.find((i) => i.village === picked);
  box.innerHTML = `<div class="rk-boards"><section class="rk-board red"><h3>${esc(t("red_list"))}</h3><ul class="list">${red.map((i) => row(i, "red")).join("")}</ul></section>`
    + `<section class="rk-board black"><h3>${esc(t("black_list"))}</h3><ul class="list">${black.map((i) => row(i, "black")).join("")}</ul></section></div>`
    + `<div class="rk-foot"><span class="hint">${esc(t("rk_hint"))}</span>`
    + `<a id="rk-print" class="btn small" target="_blank" href="/wall/ranking.html?period=${esc(encodeURIComponent(r.period))}">${esc(t("print_ranking"))}</a></div>`
    + (item ? `<div id="rk-breakdown" class="rk-breakdown">${breakdownHtml(item)}</div>` : "");
}

function renderPicker() {
  const sel = document.getElementById("rk-period");
  const opts = state.rankingPeriods.map((p) => [p.period, p.label || p.period]);
  if (state.ranking && !opts.some(([k]) => k === state.ranking.period)) opts.unshift([state.ranking.period, state.ranking.label || state.ranking.period]);
  const sig = opts.map((o) => o.join("=")).join("|");
  if (sel.dataset.sig !== sig) {
    sel.innerHTML = opts.map(([k, label]) => `<option value="${esc(k)}">${esc(label)}</option>`).join("");
    sel.dataset.sig = sig;
  }
  if (state.ranking) sel.value = state.ranking.period;
}

function pick(village) {
  picked = village;
  markDirty("ranking");
}

export function initRanking() {
  const box = document.getElementById("ranking");
  box.addEventListener("click", (e) => {
    const li = e.target.closest("[data-village]");
    if (li) { pinned = !(pinned && picked === li.dataset.village); pick(pinned ? li.dataset.village : null); }
    else if (e.target.closest("#rk-breakdown")) { pinned = false; pick(null); }
  });
  box.addEventListener("mouseover", (e) => {
    const li = e.target.closest("[data-village]");
    if (li && !pinned && li.dataset.village !== picked) pick(li.dataset.village);
  });
  box.addEventListener("mouseleave", () => { if (!pinned && picked) pick(null); });
  document.getElementById("rk-period").addEventListener("change", (e) => { period = e.target.value; loadRanking().catch(() => {}); });
  register("ranking", render);
}
