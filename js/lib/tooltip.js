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
      el.style.left = "0px"; el.style.top = "0px";
      const r = root.getBoundingClientRect(), w = el.offsetWidth, hh = el.offsetHeight;
      const view = root.ownerDocument.defaultView || window;
      const vw = view.innerWidth || r.right, vh = view.innerHeight || r.bottom;
      // client coordinates: below-right of the pointer; flip left / above where it would leave the
      // widget (a notebook's output area clips there) or the viewport, then clamp into the viewport
      let x = e.clientX + 12, y = e.clientY + 12;
      if ((x + w > r.right && e.clientX - w - 8 >= r.left) || x + w > vw) x = e.clientX - w - 8;
      if (y + hh > Math.min(vh, r.bottom) && e.clientY - hh - 8 >= 0) y = e.clientY - hh - 8;
      x = Math.max(0, Math.min(x, vw - w)); y = Math.max(0, Math.min(y, vh - hh));
      el.style.left = x - r.left + "px"; el.style.top = y - r.top + "px";
    },
    hide() { el.style.display = "none"; },
  };
}
