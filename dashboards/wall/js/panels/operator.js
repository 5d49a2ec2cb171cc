// Operator panel: token login, schedule / emergency broadcasts, cancel. Hidden from viewers.
import { api, getToken, setToken } from "../api.js";
import { esc, fmtDateTime, tzOffsetMinutes } from "../fmt.js";
import { t } from "../i18n.js";
import { buildBroadcast, hasTargets, PRESETS } from "../rrule.js";
import { can, markDirty, register, state } from "../state.js";
import { toast } from "../toast.js";
import { selected, setPicking } from "./map.js";

let onLogin = () => {};
let refreshOverview = () => {};
let pendingEmergency = null;

// ---------- login ----------
export function showLogin(message = "") {
  document.getElementById("login-modal").classList.remove("hidden");
  document.getElementById("login-error").textContent = message;
  document.getElementById("btn-logout").classList.toggle("hidden", !getToken());
  document.getElementById("login-token").focus();
}

async function submitLogin(e) {
  e.preventDefault();
  const token = document.getElementById("login-token").value.trim();
  try {
    const me = await api("/whoami", { token });
    setToken(token);
    state.me = me;
    document.getElementById("login-modal").classList.add("hidden");
    document.getElementById("login-token").value = "";
    onLogin();
  } catch (err) {
    document.getElementById("login-error").textContent = err.status === 401 ? t("login_bad") : t("error", { msg: err.message });
  }
}

// ---------- drawer ----------
function isOpen() { return !document.getElementById("operator").classList.contains("hidden"); }

function openDrawer() {
  document.getElementById("operator").classList.remove("hidden");
  renderTree();
  renderForm();
  setPicking(true);
  loadList();
}

function closeDrawer() {
  document.getElementById("operator").classList.add("hidden");
  setPicking(false);
}

function renderTree() {
  const tree = document.getElementById("target-tree");
  tree.innerHTML = state.villages.map((v) => `<details${(v.groups || []).length ? "" : " class=\"leaf\""}><summary><label><input type="checkbox" name="village" value="${esc(v.id)}"${selected.has(v.id) ? " checked" : ""}> ${esc(v.name)}</label></summary>`
    + `<div class="groups">${(v.groups || []).map((g) => `<label><input type="checkbox" name="group" value="${esc(g.id)}"> ${esc(g.name)}</label>`).join("")}</div></details>`).join("");
}

function renderForm() {
  const form = document.getElementById("bc-form");
  const rec = form.elements.recurrence;
  const current = rec.value || "once";
  rec.innerHTML = Object.keys(PRESETS).map((k) => `<option value="${k}">${esc(t(`rec_${k}`))}</option>`).join("");
  rec.value = current;
  const pr = form.elements.priority;
  const p = pr.value || "3";
  pr.innerHTML = [...Array(8).keys()].map((n) => `<option value="${n}">${esc(t("prio_n", { n }))}</option>`).join("");
  pr.value = p;
  showRule();
}

function showRule() {
  const form = document.getElementById("bc-form");
  const rule = PRESETS[form.elements.recurrence.value];
  document.getElementById("bc-rrule").textContent = rule ? `RRULE: ${rule}` : "";
}

/** Keep the map selection and the tree's village boxes in step. */
export function toggleVillageTarget(id) {
  if (selected.has(id)) selected.delete(id); else selected.add(id);
  const box = document.querySelector(`#target-tree input[name=village][value="${CSS.escape(id)}"]`);
  if (box) box.checked = selected.has(id);
  markDirty("map");
}

function formBody(priorityOverride) {
  const form = document.getElementById("bc-form");
  const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  const now = Date.now() / 1000;
  const nowLocal = new Date((now + tzOffsetMinutes(now) * 60) * 1000).toISOString().slice(0, 16);
  const startLocal = form.elements.start.value;
  const startTs = startLocal ? Date.parse(`${startLocal}:00Z`) / 1000 : now;
  return buildBroadcast({
    title: form.elements.title.value, text: form.elements.text.value, all: form.elements.all.checked,
    villages: checked("village"), groups: checked("group"),
    priority: priorityOverride ?? form.elements.priority.value, volume: form.elements.volume.value, repeat: form.elements.repeat.value,
    startLocal, preset: form.elements.recurrence.value, offsetMinutes: tzOffsetMinutes(startTs), nowLocal,
  });
}

async function send(body) {
  const err = document.getElementById("bc-error"), ok = document.getElementById("bc-ok");
  err.textContent = ""; ok.textContent = "";
  if (!hasTargets(body)) { err.textContent = t("bc_no_targets"); return; }
  try {
    const created = await api("/broadcasts", { method: "POST", body });
    const id = created?.id ?? "";
    ok.dataset.broadcast = id;
    ok.textContent = t("bc_created", { id });
    toast(t("bc_created", { id }));
    // say when it will first play (quiet hours may postpone a routine broadcast)
    api(`/broadcasts/${encodeURIComponent(id)}`).then((b) => {
      const at = b?.next_at ?? b?.upcoming?.[0];
      if (at && at - Date.now() / 1000 > 60 && ok.dataset.broadcast === id) ok.textContent = t("bc_created_at", { id, at: fmtDateTime(at) });
    }).catch(() => {});
    refreshOverview();
    loadList();
  } catch (e) {
    err.textContent = e.status === 403 ? t("forbidden") : t("error", { msg: e.message });
  }
}

function targetsText(body) {
  if (body.targets.all) return t("all_township");
  const names = body.targets.villages.map((v) => state.villageById.get(v)?.name || v);
  return [...names, ...body.targets.groups].join("、");
}

/** The hub keeps an audit log of operator actions; the wall screen adds its confirmation steps. */
function audit(action, target, detail = "") {
  api("/audit", { method: "POST", body: { action, target: String(target).slice(0, 128), detail: String(detail).slice(0, 2000) } }).catch(() => {});
}

function askEmergency() {
  const form = document.getElementById("bc-form");
  if (!form.reportValidity()) return;
  const body = formBody(9);
  delete body.schedule; // an emergency plays now
  if (!hasTargets(body)) { document.getElementById("bc-error").textContent = t("bc_no_targets"); return; }
  pendingEmergency = body;
  document.getElementById("confirm-text").textContent = t("confirm_text", { title: body.title, p: body.priority, targets: targetsText(body) });
  document.getElementById("confirm-modal").classList.remove("hidden");
}

// ---------- list + cancel ----------
async function loadList() {
  if (!can("viewer")) return;
  try {
    const r = await api("/broadcasts");
    state.broadcasts = Array.isArray(r) ? r : r?.items || [];
  } catch { state.broadcasts = []; }
  markDirty("bclist");
}

function renderList() {
  const ul = document.getElementById("bc-list");
  const items = [...state.broadcasts].sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0)).slice(0, 40);
  if (!items.length) { ul.innerHTML = `<li class="empty">${esc(t("bc_empty"))}</li>`; return; }
  ul.innerHTML = items.map((b) => {
    const status = b.status ?? b.state;
    const st = status ? t(`state_${status}`) : "";
    const live = state.progress.get(b.id);
    const prog = live?.total ? `${live.done}/${live.total}` : "";
    const cancellable = status === "active" || status === "scheduled";
    return `<li data-broadcast="${esc(b.id)}"><span class="prio${b.priority >= 8 ? " emergency" : ""}">P${esc(b.priority)}</span>`
      + `<span class="grow">${esc(b.title)}<br><span class="hint">${esc(b.id)} ${b.created_at ? esc(fmtDateTime(b.created_at)) : ""}</span></span>`
      + `<span class="num">${esc(st)} ${esc(prog)}</span>${cancellable ? `<button class="btn small danger" data-cancel="${esc(b.id)}">${esc(t("bc_cancel"))}</button>` : ""}</li>`;
  }).join("");
}

export function initOperator({ afterLogin, refresh }) {
  onLogin = afterLogin;
  refreshOverview = refresh;
  document.getElementById("login-form").addEventListener("submit", submitLogin);
  document.getElementById("btn-login").addEventListener("click", () => showLogin());
  document.getElementById("btn-logout").addEventListener("click", () => { setToken(""); location.reload(); });
  document.getElementById("btn-operator").addEventListener("click", () => (isOpen() ? closeDrawer() : openDrawer()));
  document.querySelector("[data-close-drawer]").addEventListener("click", closeDrawer);
  for (const tab of document.querySelectorAll("#operator .tab")) {
    tab.addEventListener("click", () => {
      for (const x of document.querySelectorAll("#operator .tab")) x.classList.toggle("active", x === tab);
      for (const b of document.querySelectorAll("#operator [data-tab-body]")) b.classList.toggle("hidden", b.dataset.tabBody !== tab.dataset.tab);
      if (tab.dataset.tab === "list") loadList();
    });
  }
  const form = document.getElementById("bc-form");
  form.elements.recurrence.addEventListener("change", showRule);
  form.addEventListener("submit", (e) => { e.preventDefault(); send(formBody()); });
  form.addEventListener("change", (e) => {
    if (e.target.name === "village") { if (e.target.checked) selected.add(e.target.value); else selected.delete(e.target.value); markDirty("map"); }
  });
  document.getElementById("bc-emergency").addEventListener("click", askEmergency);
  document.getElementById("confirm-go").addEventListener("click", () => {
    document.getElementById("confirm-modal").classList.add("hidden");
    if (pendingEmergency) { audit("emergency.confirm", pendingEmergency.title, targetsText(pendingEmergency)); send(pendingEmergency); }
    pendingEmergency = null;
  });
  document.getElementById("confirm-modal").addEventListener("click", (e) => {
    if (e.target.hasAttribute("data-close") || e.target.id === "confirm-modal") {
      if (pendingEmergency) audit("emergency.abort", pendingEmergency.title, targetsText(pendingEmergency));
      pendingEmergency = null;
      document.getElementById("confirm-modal").classList.add("hidden");
    }
  });
  document.getElementById("bc-list").addEventListener("click", async (e) => {
    const id = e.target.dataset?.cancel;
    if (!id) return;
    e.target.disabled = true;
    try { await api(`/broadcasts/${encodeURIComponent(id)}/cancel`, { method: "POST" }); toast(t("bc_cancelled", { id })); refreshOverview(); loadList(); }
    catch (err) { e.target.disabled = false; toast(err.status === 403 ? t("forbidden") : t("error", { msg: err.message }), true); }
  });
  register("bclist", renderList);
  register("operator", () => { if (isOpen()) { renderForm(); } });
}

export function operatorIsOpen() { return isOpen(); }
export function reloadBroadcastList() { if (isOpen()) loadList(); }
