// Floating tooltip positioned inside the widget root. Text only.
import { h } from "./dom.js";

/** @param {HTMLElement} root */
export function tooltip(root) {
  const el = h("div", { class: "dtw-tip", role: "tooltip" });
  root.appendChild(el);
  return {
    el,
    /** @param {MouseEvent} e @param {string[]|string} lines */
    show(e, lines) {
      el.textContent = Array.isArray(lines) ? lines.join("\n") : String(lines);
      el.style.display = "block";
      const r = root.getBoundingClientRect();
      let x = e.clientX - r.left + 12, y = e.clientY - r.top + 12;
      const w = el.offsetWidth, hh = el.offsetHeight;
      if (x + w > r.width && e.clientX - r.left - w - 8 > 0) x = e.clientX - r.left - w - 8;
      if (y + hh > r.height + 40 && e.clientY - r.top - hh - 8 > 0) y = e.clientY - r.top - hh - 8;
      el.style.left = x + "px"; el.style.top = y + "px";
    },
    hide() { el.style.display = "none"; },
  };
}
