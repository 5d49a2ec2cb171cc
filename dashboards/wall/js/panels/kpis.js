// KPI strip: cameras online x/y, speakers online, broadcasts today, open alarms, villages.
import { t } from "../i18n.js";
import { broadcastsToday, countDevices, openAlerts, openAlertsByVillage, openProblems, register, state } from "../state.js";
import { lampCounts } from "./lights.js";
import { isOverdue } from "./problems.js";
import { playingNow } from "./speakers.js";

function setKpi(id, value, total, pct) {
  const el = document.getElementById(id);
  el.querySelector(".val b").textContent = value;
  if (total !== undefined) el.querySelector(".val small").textContent = `/ ${total}`;
  const bar = el.querySelector(".bar i");
  if (bar && pct !== undefined) {
    bar.style.width = `${pct}%`;
    bar.style.background = pct >= 90 ? "var(--ok)" : pct >= 70 ? "var(--warn)" : "var(--bad)";
  }
}

export function initKpis() {
  register("kpis", () => {
    for (const [id, kind] of [["kpi-cameras", "camera"], ["kpi-speakers", "speaker"]]) {
      const c = countDevices(kind);
      setKpi(id, c.online, c.total, c.total ? Math.round((100 * c.online) / c.total) : 0);
    }
    const now = Date.now() / 1000;
    const dayStart = now - (now - state.calendarFrom) % 86400;
    setKpi("kpi-broadcasts", state.overview ? broadcastsToday(dayStart, dayStart + 86400) : "-");
    document.getElementById("kpi-playing").textContent = state.overview ? t("playing_now", { n: playingNow().length }) : "";
    const open = openAlerts();
    setKpi("kpi-alarms", open.length);
    const crit = open.filter((a) => a.severity === "critical").length;
    document.getElementById("kpi-alarm-critical").textContent = t("critical_n", { n: crit });
    document.getElementById("kpi-alarms").classList.toggle("hot", open.length > 0);
    const villages = state.villages.length || state.overview?.villages?.length || 0;
    setKpi("kpi-villages", villages);
    const byVillage = openAlertsByVillage();
    let bad = 0;
    for (const v of state.villages) {
      const c = countDevices("camera", v.id), s = countDevices("speaker", v.id);
      if (byVillage.get(v.id) || c.offline + s.offline > 0) bad += 1;
    }
    document.getElementById("kpi-villages-sub").textContent = t("villages_sub", { bad });
    // street lights: online / registered, lit and faulty; problems in the ledger not yet closed
    const lc = lampCounts(state.lights.values());
    setKpi("kpi-lights", lc.online, lc.total, lc.total ? Math.round((100 * lc.online) / lc.total) : 0);
    document.getElementById("kpi-lights-sub").textContent = t("lights_sub", { on: lc.on, fault: lc.fault });
    const pending = openProblems();
    const overdue = pending.filter((p) => isOverdue(p)).length;
    setKpi("kpi-problems", pending.length);
    document.getElementById("kpi-problems-sub").textContent = t("problems_sub", { n: overdue });
    document.getElementById("kpi-problems").classList.toggle("hot", overdue > 0);
  });
}
