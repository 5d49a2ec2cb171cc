// Alarm feed: severity, time, device, message; operators acknowledge.
import { api } from "../api.js";
import { esc, fmtDateTime } from "../fmt.js";
import { t } from "../i18n.js";
import { can, markDirty, openAlerts, problemForAlert, register, state } from "../state.js";
import { toast } from "../toast.js";
import { openCreate, openLedger } from "./problems.js";

const RANK = { critical: 0, warning: 1, info: 2 };
const MAX_ROWS = 60;

/** Open alarms first, unacknowledged before acknowledged, then by severity, newest first. */
export function sortAlarms(items) {
  return [...items].sort((a, b) => (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1)
    || (a.acked_at ? 1 : 0) - (b.acked_at ? 1 : 0)
    || (RANK[a.severity] ?? 3) - (RANK[b.severity] ?? 3)
    || (b.raised_at ?? 0) - (a.raised_at ?? 0));
}

function render() {
  const ul = document.getElementById("alarm-feed");
  const open = openAlerts();
  document.getElementById("alarm-count").textContent = t("open_n", { n: open.length });
  const rows = sortAlarms(open).slice(0, MAX_ROWS);
  if (!rows.length) { ul.innerHTML = `<li class="empty">${esc(t("no_alarms"))}</li>`; return; }
  const canAck = can("operator");
  ul.innerHTML = rows.map((a) => {
    const village = state.villageById.get(a.village)?.name || a.village || "";
    const acked = a.acked_by ? `<span class="hint">${esc(t("acked_by", { who: a.acked_by }))}</span>` : "";
    const btn = canAck && !a.acked_by ? `<button class="btn small" data-ack="${esc(a.id)}">${esc(t("ack"))}</button>` : "";
    // the ledger: the problem filed from this alarm, or (operators) file one
    const filed = problemForAlert(a.key);
    const pb = filed ? `<button class="btn small ghost" data-open-problem="${esc(filed.id)}">${esc(t("pb_filed", { id: filed.id }))}</button>`
      : canAck && a.type !== "problem_overdue" ? `<button class="btn small" data-to-problem="${esc(a.id)}">${esc(t("pb_from_alarm"))}</button>` : "";
    return `<li class="${a.acked_by ? "acked" : ""}" data-alert="${esc(a.id)}"><span class="sev ${esc(a.severity)}">${esc(t(`sev_${a.severity}`))}</span>`
      + `<span class="grow"><span class="time">${a.raised_at ? esc(fmtDateTime(a.raised_at)) : ""}</span> `
      + `<span class="dev">${esc(village)} ${esc(a.device_id || "")}</span><br>${esc(a.message || a.type)}</span>${acked}<span class="alarm-btns">${btn}${pb}</span></li>`;
  }).join("");
}

export function initAlarms() {
  document.getElementById("alarm-feed").addEventListener("click", async (e) => {
    const toProblem = e.target.dataset?.toProblem;
    if (toProblem) { const a = state.alerts.get(toProblem); if (a) openCreate({ alert: a }); return; }
    const filed = e.target.dataset?.openProblem;
    if (filed) { openLedger(filed); return; }
    const id = e.target.dataset?.ack;
    if (!id) return;
    e.target.disabled = true;
    try {
      const updated = await api(`/alerts/${encodeURIComponent(id)}/ack`, { method: "POST" });
      const a = state.alerts.get(id);
      if (a) Object.assign(a, updated && typeof updated === "object" && updated.id ? updated : { acked_by: state.me?.name, acked_at: Date.now() / 1000 });
      markDirty("alarms", "cameras");
    } catch (err) {
      e.target.disabled = false;
      toast(err.status === 403 ? t("forbidden") : t("error", { msg: err.message }), true);
    }
  });
  register("alarms", render);
}
