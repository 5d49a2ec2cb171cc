// Tabs inside a wall panel (`.ptabs` buttons with data-ptab, bodies with data-ptab-body in the
// same panel): where the 1920×1080 screen has no room for another panel, two share one.
const listeners = new Map();

/** `fn(name)` runs when a tab of `panelSelector` is shown. */
export function onTab(panelSelector, fn) { listeners.set(panelSelector, fn); }

export function showTab(panel, name) {
  for (const b of panel.querySelectorAll(".ptabs [data-ptab]")) {
    b.classList.toggle("active", b.dataset.ptab === name);
    b.setAttribute("aria-selected", String(b.dataset.ptab === name));
  }
  for (const body of panel.querySelectorAll("[data-ptab-body]")) body.classList.toggle("hidden", body.dataset.ptabBody !== name);
  for (const [sel, fn] of listeners) if (panel.matches(sel)) fn(name);
}

export function initTabs() {
  for (const panel of document.querySelectorAll(".panel")) {
    const tabs = panel.querySelector(".ptabs");
    if (!tabs) continue;
    tabs.addEventListener("click", (e) => {
      const b = e.target.closest("[data-ptab]");
      if (b) showTab(panel, b.dataset.ptab);
    });
  }
}
