// Header: township name, clock (township time zone), hub/broker/store/live-link health.
import { fmtDate, fmtTime } from "../fmt.js";
import { t } from "../i18n.js";
import { register, state } from "../state.js";

function pill(id, up) {
  const el = document.getElementById(id);
  el.classList.toggle("up", up === true);
  el.classList.toggle("down", up === false);
}

export function initHeader() {
  const tick = () => {
    const now = Date.now() / 1000;
    document.getElementById("clock-time").textContent = fmtTime(now);
    document.getElementById("clock-date").textContent = fmtDate(now);
  };
  tick();
  setInterval(tick, 1000);
  register("header", () => {
    document.getElementById("township").textContent = state.overview?.township || "VillageHub";
    pill("health-hub", state.health.hub);
    pill("health-mqtt", state.health.mqtt);
    pill("health-store", state.health.store);
    pill("health-link", state.link === "open" ? true : state.link === "lost" ? false : null);
    const who = document.getElementById("who");
    who.textContent = state.me ? `${state.me.name} · ${t(`role_${state.me.role}`)}` : t("login");
    document.body.className = `role-${state.me?.role || "none"}`;
  });
}
