// One line of feedback at the bottom of the screen.
let timer = 0;
export function toast(text, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.classList.remove("hidden");
  clearTimeout(timer);
  timer = setTimeout(() => el.classList.add("hidden"), 4000);
}
