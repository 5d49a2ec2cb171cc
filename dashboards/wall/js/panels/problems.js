// Problem ledger 整改台账: the open problems beside the alarms (tab), a drawer with the ledger
// (state / village / overdue filters, CSV and Excel export), one problem's detail (before and
// after photos, history, the transitions the role may make), and the "new problem" dialog used
// from an alarm row and from the enlarged camera. Live from `problem` stream events.
import { api, fetchImage, getToken } from "../api.js";
import { esc, fmtDateTime, tzOffsetMinutes } from "../fmt.js";
import { t } from "../i18n.js";
import { can, markDirty, openProblems, register, state, villageName } from "../state.js";
import { toast } from "../toast.js";

export const STATES = ["open", "assigned", "fixed", "verified", "closed", "rejected"];
export const CATEGORIES = ["environment", "device_fault", "safety", "sanitation", "other"];
const PENDING = new Set(["open", "assigned"]);
const LIST_LIMIT = 500;
const DEFAULT_DAYS = 3;

/** The transitions offered for a problem in `state` (the hub's state machine): [to, label key]. */
export function transitionsFor(st) {
  switch (st) {
    case "open": return [["assigned", "pb_to_assigned"], ["rejected", "pb_to_rejected"]];
    case "assigned": return [["fixed", "pb_to_fixed"], ["rejected", "pb_to_rejected"]];
    case "fixed": return [["verified", "pb_to_verified"], ["assigned", "pb_rework"], ["rejected", "pb_to_rejected"]];
    case "verified": return [["closed", "pb_to_closed"], ["assigned", "pb_rework"], ["rejected", "pb_to_rejected"]];
    default: return [];
  }
}

/** Overdue now: a deadline passed while nobody has fixed it (open or assigned), as the hub counts it. */
export function isOverdue(p, now = Date.now() / 1000) {
  return Boolean(p.deadline) && now > p.deadline && PENDING.has(p.state);
}

/** Open problems for the wall: overdue first, then the nearest deadline, then newest. */
export function sortProblems(items, now = Date.now() / 1000) {
  return [...items].sort((a, b) => Number(isOverdue(b, now)) - Number(isOverdue(a, now))
    || (a.deadline ?? Infinity) - (b.deadline ?? Infinity)
    || (b.created_at ?? 0) - (a.created_at ?? 0));
}

const stateChip = (st) => `<span class="pb-state s-${esc(st)}">${esc(t(`pb_state_${st}`))}</span>`;

// ---------- data ----------
export async function loadProblems() {
  const r = await api(`/problems?limit=${LIST_LIMIT}`);
  const next = new Map();
  for (const p of r.items || []) next.set(p.id, p);
  state.problems = next;
  markDirty("problems", "ledger", "kpis", "alarms");
}

/** A `problem` stream event: merge the summary (it lacks description, photos, history). */
export function onProblemEvent(d) {
  if (!d?.id) return;
  if (d.deleted || d.action === "deleted") state.problems.delete(d.id);
  else state.problems.set(d.id, { ...(state.problems.get(d.id) || {}), ...d });
  markDirty("problems", "ledger", "kpis", "alarms");
  if (detailId === d.id) { if (d.deleted) showList(); else loadDetail(d.id); }
}

// ---------- alarm-panel tab: the open problems ----------
function renderFeed() {
  const ul = document.getElementById("pb-feed");
  const now = Date.now() / 1000;
  const open = openProblems();
  const overdue = open.filter((p) => isOverdue(p, now)).length;
  const badge = document.getElementById("pb-tab-count");
  badge.textContent = overdue ? t("overdue_n", { n: overdue }) : open.length ? String(open.length) : "";
  badge.classList.toggle("hot", overdue > 0);
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const p of open) counts[p.state] += 1;
  document.getElementById("pb-summary").innerHTML = ["open", "assigned", "fixed", "verified"]
    .map((s) => `<span class="pb-count s-${s}"><b>${esc(counts[s])}</b>${esc(t(`pb_state_${s}`))}</span>`).join("")
    + `<span class="pb-count overdue${overdue ? " hot" : ""}"><b>${esc(overdue)}</b>${esc(t("overdue"))}</span>`;
  const rows = sortProblems(open, now).slice(0, 40);
  if (!rows.length) { ul.innerHTML = `<li class="empty">${esc(t("pb_empty"))}</li>`; return; }
  ul.innerHTML = rows.map((p) => {
    const od = isOverdue(p, now);
    return `<li class="${od ? "overdue" : ""}" data-problem="${esc(p.id)}">${stateChip(p.state)}`
      + `<span class="grow">${esc(p.title)}<br><span class="hint">${esc(villageName(p.village))} · ${esc(p.owner || "—")}`
      + ` · ${p.deadline ? esc(fmtDateTime(p.deadline)) : "—"}</span></span>${od ? `<span class="od">${esc(t("overdue"))}</span>` : ""}</li>`;
  }).join("");
}

// ---------- drawer: list ----------
let detailId = null;
let photoUrls = [];

function drawer() { return document.getElementById("ledger"); }
export function ledgerIsOpen() { return !drawer().classList.contains("hidden"); }

export function openLedger(id = null) {
  for (const d of document.querySelectorAll(".drawer")) if (d !== drawer()) d.classList.add("hidden");
  drawer().classList.remove("hidden");
  renderFilters();
  if (id) showDetail(id); else showList();
  loadProblems().catch(() => {});
}

function closeLedger() { drawer().classList.add("hidden"); detailId = null; }

function renderFilters() {
  const st = document.getElementById("pb-f-state");
  if (!st.options.length || st.dataset.lang !== t("pb_all_states")) {
    const cur = st.value;
    st.innerHTML = `<option value="">${esc(t("pb_all_states"))}</option>` + STATES.map((s) => `<option value="${s}">${esc(t(`pb_state_${s}`))}</option>`).join("");
    st.value = cur;
    st.dataset.lang = t("pb_all_states");
  }
  const vs = document.getElementById("pb-f-village");
  const sig = state.villages.map((v) => v.id).join("|") + t("pb_all_villages");
  if (vs.dataset.sig !== sig) {
    const cur = vs.value;
    vs.innerHTML = `<option value="">${esc(t("pb_all_villages"))}</option>` + state.villages.map((v) => `<option value="${esc(v.id)}">${esc(v.name)}</option>`).join("");
    vs.value = cur;
    vs.dataset.sig = sig;
  }
}

function filters() {
  return {
    state: document.getElementById("pb-f-state").value,
    village: document.getElementById("pb-f-village").value,
    overdue: document.getElementById("pb-f-overdue").checked,
  };
}

function filterQuery() {
  const f = filters();
  const q = new URLSearchParams();
  if (f.state) q.set("state", f.state);
  if (f.village) q.set("village", f.village);
  if (f.overdue) q.set("overdue", "true");
  return q;
}

function renderTable() {
  if (!ledgerIsOpen()) return;
  renderFilters();
  const f = filters();
  const now = Date.now() / 1000;
  const rows = [...state.problems.values()]
    .filter((p) => (!f.state || p.state === f.state) && (!f.village || p.village === f.village) && (!f.overdue || isOverdue(p, now)))
    .sort((a, b) => Number(isOverdue(b, now)) - Number(isOverdue(a, now)) || (b.created_at ?? 0) - (a.created_at ?? 0));
  const body = document.getElementById("pb-rows");
  if (!rows.length) { body.innerHTML = `<tr><td colspan="7" class="empty">${esc(t("pb_empty"))}</td></tr>`; return; }
  body.innerHTML = rows.slice(0, 300).map((p) => {
    const od = isOverdue(p, now);
    return `<tr data-problem="${esc(p.id)}" class="${od ? "overdue" : ""}"><td class="mono">${esc(p.id)}</td><td>${esc(villageName(p.village))}</td>`
      + `<td class="title">${esc(p.title)}</td><td>${esc(t(`pb_cat_${p.category}`))}</td><td>${esc(p.owner || "—")}</td>`
      + `<td class="mono">${p.deadline ? esc(fmtDateTime(p.deadline)) : "—"}${od ? ` <span class="od">${esc(t("overdue"))}</span>` : ""}</td><td>${stateChip(p.state)}</td></tr>`;
  }).join("");
}

function showList() {
  detailId = null;
  for (const u of photoUrls) URL.revokeObjectURL(u);
  photoUrls = [];
  document.getElementById("pb-list-view").classList.remove("hidden");
  document.getElementById("pb-detail").classList.add("hidden");
  markDirty("ledger");
}

async function exportLedger(format) {
  const q = filterQuery();
  q.set("format", format);
  try {
    const res = await fetch(`/api/v1/problems/export?${q}`, { headers: { Authorization: `Bearer ${getToken()}` } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const blob = await res.blob();
    const cd = res.headers.get("content-disposition") || "";
    const m = /filename\*=UTF-8''([^;]+)/.exec(cd);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = m ? decodeURIComponent(m[1]) : `problems.${format}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) { toast(t("error", { msg: err.message }), true); }
}

// ---------- drawer: one problem ----------
function showDetail(id) {
  detailId = id;
  document.getElementById("pb-list-view").classList.add("hidden");
  document.getElementById("pb-detail").classList.remove("hidden");
  const known = state.problems.get(id);
  if (known) fillDetail(known, false);
  loadDetail(id);
}

async function loadDetail(id) {
  try {
    const p = await api(`/problems/${encodeURIComponent(id)}`);
    if (detailId !== id) return;
    state.problems.set(p.id, { ...(state.problems.get(p.id) || {}), ...p });
    fillDetail(p, true);
    markDirty("problems", "kpis");
  } catch (err) { toast(t("error", { msg: err.message }), true); }
}

/** Local date-time input value (township zone) for a Unix time, and back. */
export function toLocalInput(ts) {
  return new Date((ts + tzOffsetMinutes(ts) * 60) * 1000).toISOString().slice(0, 16);
}
export function fromLocalInput(value) {
  if (!value) return null;
  const guess = Date.parse(`${value}:00Z`) / 1000;
  return guess - tzOffsetMinutes(guess) * 60;
}

function fillDetail(p, full) {
  const now = Date.now() / 1000;
  const od = isOverdue(p, now);
  document.getElementById("pb-d-title").innerHTML = `<span class="mono">${esc(p.id)}</span> ${esc(p.title)} ${stateChip(p.state)}`
    + (od ? ` <span class="od">${esc(t("overdue"))}</span>` : "");
  const row = (k, v) => `<dt>${esc(t(k))}</dt><dd>${esc(v ?? "—")}</dd>`;
  const group = p.group ? state.villageById.get(p.village)?.groups?.find((g) => g.id === p.group)?.name || p.group : "";
  document.getElementById("pb-d-info").innerHTML = row("village", `${villageName(p.village)}${group ? ` · ${group}` : ""}`)
    + row("pb_category", t(`pb_cat_${p.category}`)) + row("device", p.device_id || "—") + row("pb_owner", p.owner || "—")
    + `<dt>${esc(t("pb_deadline"))}</dt><dd class="${od ? "od-text" : ""}">${p.deadline ? esc(fmtDateTime(p.deadline)) : "—"}</dd>`
    + row("pb_created", p.created_at ? `${fmtDateTime(p.created_at)} · ${p.created_by || ""}` : "—")
    + (p.description ? row("pb_description", p.description) : "");
  if (!full) return;
  renderPhotos(p);
  document.getElementById("pb-d-history").innerHTML = (p.history || []).map((h) => `<li><span class="time">${esc(fmtDateTime(h.ts))}</span>`
    + `<span class="grow">${esc(h.by)} · ${h.from ? esc(t("pb_history_row", { from: t(`pb_state_${h.from}`), to: t(`pb_state_${h.to}`) })) : esc(t("pb_created_row"))}`
    + `${h.note ? `<br><span class="hint">${esc(h.note)}</span>` : ""}</span></li>`).join("");
  renderActions(p);
}

function renderPhotos(p) {
  for (const u of photoUrls) URL.revokeObjectURL(u);
  photoUrls = [];
  for (const stage of ["before", "after"]) {
    const box = document.getElementById(`pb-d-${stage}`);
    const photos = (p.photos || []).filter((ph) => ph.stage === stage);
    box.textContent = "";
    if (!photos.length) { box.innerHTML = `<div class="noimg">${esc(t("pb_no_photo"))}</div>`; continue; }
    for (const ph of photos.slice(-3)) {
      const fig = document.createElement("figure");
      fig.dataset.photo = ph.id;
      fig.innerHTML = `<img alt=""><figcaption>${esc(fmtDateTime(ph.taken_at))} · ${esc(t(ph.source === "camera" ? "pb_source_camera" : "pb_source_upload"))}</figcaption>`;
      box.appendChild(fig);
      const path = String(ph.url || "").replace(/^\/api\/v1/, "");
      fetchImage(path).then(({ url }) => {
        if (detailId !== p.id) { URL.revokeObjectURL(url); return; }
        photoUrls.push(url);
        fig.querySelector("img").src = url;
        fig.classList.add("loaded");
      }).catch(() => {});
    }
  }
}

function renderActions(p) {
  const box = document.getElementById("pb-d-actions");
  const moves = can("operator") ? transitionsFor(p.state) : [];
  const camera = p.device_id && state.devices.get(p.device_id)?.kind === "camera";
  const canPhoto = can("operator") && camera && ["assigned", "fixed"].includes(p.state);
  if (!moves.length && !canPhoto) { box.innerHTML = ""; return; }
  const needsAssign = moves.some(([to]) => to === "assigned");
  const deadline = p.deadline || Date.now() / 1000 + DEFAULT_DAYS * 86400;
  box.innerHTML = (needsAssign ? `<div class="row"><label><span>${esc(t("pb_owner"))}</span><input id="pb-a-owner" maxlength="64" value="${esc(p.owner || "")}"></label>`
    + `<label><span>${esc(t("pb_deadline"))}</span><input id="pb-a-deadline" type="datetime-local" value="${esc(toLocalInput(deadline))}"></label></div>` : "")
    + `<label><span>${esc(t("pb_note"))}</span><input id="pb-a-note" maxlength="1000"></label>`
    + `<div class="row">${canPhoto ? `<button class="btn" data-after-photo>${esc(t("pb_after_photo"))}</button>` : ""}`
    + moves.map(([to, key]) => `<button class="btn ${to === "rejected" ? "danger" : "primary"}" data-to="${esc(to)}">${esc(t(key))}</button>`).join("")
    + "</div>";
}

async function doTransition(to, btn) {
  const id = detailId;
  const body = { to };
  const note = document.getElementById("pb-a-note")?.value.trim();
  if (note) body.note = note;
  if (to === "assigned") {
    const owner = document.getElementById("pb-a-owner")?.value.trim();
    const deadline = fromLocalInput(document.getElementById("pb-a-deadline")?.value);
    if (!owner || !deadline) { toast(t("pb_need_owner"), true); return; }
    body.owner = owner;
    body.deadline = deadline;
  }
  btn.disabled = true;
  try {
    const p = await api(`/problems/${encodeURIComponent(id)}/transitions`, { method: "POST", body });
    state.problems.set(p.id, { ...(state.problems.get(p.id) || {}), ...p });
    toast(t("pb_moved", { id: p.id, state: t(`pb_state_${p.state}`) }));
    if (detailId === id) fillDetail(p, true);
    markDirty("problems", "ledger", "kpis", "alarms");
  } catch (err) {
    btn.disabled = false;
    toast(err.status === 403 ? t("forbidden") : t("error", { msg: err.message }), true);
  }
}

async function takeAfterPhoto(btn) {
  const id = detailId;
  const p = state.problems.get(id);
  if (!p?.device_id) return;
  btn.disabled = true;
  try {
    const res = await fetch(`/api/v1/problems/${encodeURIComponent(id)}/photos`, {
      method: "POST", headers: { Authorization: `Bearer ${getToken()}`, "Content-Type": "application/json" },
      body: JSON.stringify({ stage: "after", from_camera: p.device_id, fresh: true }),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(typeof data?.detail === "string" ? data.detail : `HTTP ${res.status}`);
    toast(res.status === 202 ? t("pb_after_pending") : t("pb_after_added"));
    if (detailId === id) loadDetail(id);
  } catch (err) { toast(t("error", { msg: err.message }), true); }
  finally { btn.disabled = false; }
}

// ---------- new problem (from an alarm or a camera) ----------
let draft = null;

/** Open the dialog: `alert` (an alarm of the feed) and/or `camera` (a camera id whose latest
 * snapshot becomes the before-photo). */
export function openCreate({ alert = null, camera = null } = {}) {
  const deviceId = camera || alert?.device_id || null;
  const dev = deviceId ? state.devices.get(deviceId) : null;
  const cam = camera || (dev?.kind === "camera" ? dev.id : null);
  draft = { alert_key: alert?.key || null, device_id: deviceId, camera: cam };
  const form = document.getElementById("pb-create-form");
  form.reset();
  form.elements.category.innerHTML = CATEGORIES.map((c) => `<option value="${c}">${esc(t(`pb_cat_${c}`))}</option>`).join("");
  form.elements.category.value = alert || dev?.kind !== "camera" ? "device_fault" : "environment";
  const village = alert?.village || dev?.village || "";
  form.elements.village.innerHTML = state.villages.map((v) => `<option value="${esc(v.id)}">${esc(v.name)}</option>`).join("");
  form.elements.village.value = village;
  form.elements.village.disabled = Boolean(deviceId && village);
  const name = dev ? `${villageName(dev.village)} ${dev.name || dev.id}` : "";
  form.elements.title.value = (alert?.message || (dev ? `${name}` : "")).slice(0, 200);
  form.elements.description.value = alert ? `${alert.key || ""} ${alert.raised_at ? fmtDateTime(alert.raised_at) : ""}`.trim() : "";
  form.elements.deadline.value = toLocalInput(Date.now() / 1000 + DEFAULT_DAYS * 86400);
  form.elements.with_before.checked = Boolean(cam);
  document.getElementById("pb-create-before").classList.toggle("hidden", !cam);
  document.getElementById("pb-create-device").textContent = deviceId ? `${t("device")}: ${deviceId}` : "";
  document.getElementById("pb-create-error").textContent = "";
  document.getElementById("pb-create-modal").classList.remove("hidden");
  form.elements.title.focus();
}

async function submitCreate(e) {
  e.preventDefault();
  const form = e.target;
  const body = { category: form.elements.category.value, title: form.elements.title.value.trim() };
  // a device's village (and group) come from the registry; else the village chosen here
  if (!form.elements.village.disabled) body.village = form.elements.village.value;
  const desc = form.elements.description.value.trim();
  if (desc) body.description = desc;
  const owner = form.elements.owner.value.trim();
  if (owner) body.owner = owner;
  const deadline = fromLocalInput(form.elements.deadline.value);
  if (deadline) body.deadline = deadline;
  if (draft?.device_id) body.device_id = draft.device_id;
  if (draft?.alert_key) body.alert_key = draft.alert_key;
  if (draft?.camera && form.elements.with_before.checked) body.before_from_camera = draft.camera;
  const btn = form.querySelector("button[type=submit]");
  btn.disabled = true;
  try {
    const p = await api("/problems", { method: "POST", body });
    state.problems.set(p.id, p);
    document.getElementById("pb-create-modal").classList.add("hidden");
    document.getElementById("cam-modal").classList.add("hidden");
    toast(t("pb_created_ok", { id: p.id }));
    markDirty("problems", "kpis", "alarms");
    openLedger(p.id);
  } catch (err) {
    document.getElementById("pb-create-error").textContent = err.status === 403 ? t("forbidden") : t("error", { msg: err.message });
  } finally { btn.disabled = false; }
}

// ---------- wiring ----------
export function initProblems() {
  document.getElementById("btn-ledger").addEventListener("click", () => (ledgerIsOpen() ? closeLedger() : openLedger()));
  document.querySelector("[data-close-ledger]").addEventListener("click", closeLedger);
  document.getElementById("pb-feed").addEventListener("click", (e) => {
    const li = e.target.closest("[data-problem]");
    if (li) openLedger(li.dataset.problem);
  });
  document.getElementById("pb-rows").addEventListener("click", (e) => {
    const tr = e.target.closest("[data-problem]");
    if (tr) showDetail(tr.dataset.problem);
  });
  for (const id of ["pb-f-state", "pb-f-village", "pb-f-overdue"]) document.getElementById(id).addEventListener("change", () => markDirty("ledger"));
  document.getElementById("pb-export-csv").addEventListener("click", () => exportLedger("csv"));
  document.getElementById("pb-export-xlsx").addEventListener("click", () => exportLedger("xlsx"));
  document.getElementById("pb-back").addEventListener("click", showList);
  document.getElementById("pb-d-actions").addEventListener("click", (e) => {
    const btn = e.target.closest("button");
    if (!btn) return;
    if (btn.dataset.to) doTransition(btn.dataset.to, btn);
    else if (btn.hasAttribute("data-after-photo")) takeAfterPhoto(btn);
  });
  document.getElementById("pb-create-form").addEventListener("submit", submitCreate);
  document.getElementById("pb-create-modal").addEventListener("click", (e) => {
    if (e.target.id === "pb-create-modal" || e.target.hasAttribute("data-close")) document.getElementById("pb-create-modal").classList.add("hidden");
  });
  setInterval(() => markDirty("problems", "kpis"), 30000); // deadlines pass
  register("problems", renderFeed);
  register("ledger", renderTable);
}
