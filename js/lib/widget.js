// Shared anywidget `render` wrapper: root element, tooltip, error box,
// coalesced redraws on trait changes, and a "no data" placeholder.
import { h, injectStyle } from "./dom.js";
import { tooltip } from "./tooltip.js";
import { errorBox } from "./errorbox.js";

/**
 * @typedef {object} Ctx
 * @property {any} model anywidget model
 * @property {HTMLElement} root widget root (.dtw-root)
 * @property {HTMLElement} body container for the drawing
 * @property {ReturnType<typeof tooltip>} tip
 * @property {(msg: string) => void} noData show a placeholder instead of the drawing
 * @property {() => void} redraw schedule a redraw
 * @property {(natural: number) => number} avail width to draw at: `natural` CSS px, or less when the
 *   widget's column is narrower (the widget redraws when its column is resized)
 */

/**
 * Define an anywidget module. `create(ctx)` builds the persistent view and returns
 * {draw(), traits: string[], dispose?()}; draw() is called on every change of `traits`
 * (coalesced to one call per task) and must update the existing DOM in place.
 * @param {string} cls CSS class of the root
 * @param {(ctx: Ctx) => {draw: () => void, traits: string[], dispose?: () => void}} create
 */
export function widget(cls, create) {
  function render({ model, el }) {
    injectStyle(cls, el);
    const root = h("div", { class: "dtw-root " + cls });
    const body = h("div", { class: "dtw-body" });
    const empty = h("div", { class: "dtw-nodata", text: "no data", style: { display: "none" } });
    root.append(empty, body);
    el.appendChild(root);
    const tip = tooltip(root);
    const err = errorBox(root, model);
    let pending = false, view = null;
    const run = () => {
      pending = false;
      try {
        empty.style.display = "none"; body.style.display = "";
        view && view.draw();
        err.js(null);
      } catch (e) {
        err.js(e);
      }
    };
    const ctx = {
      model, root, body, tip,
      noData(msg = "no data") { empty.textContent = msg; empty.style.display = "block"; body.style.display = "none"; },
      redraw() { if (!pending) { pending = true; queueMicrotask(run); } },
      avail(natural) { const w = el.clientWidth; return w > 0 ? Math.max(60, Math.min(natural, w - 12)) : natural; },
    };
    try {
      view = create(ctx);
    } catch (e) {
      err.js(e);
    }
    const traits = (view && view.traits) || [];
    for (const t of traits) model.on("change:" + t, ctx.redraw);
    run();
    let lastW = el.clientWidth;
    const ro = typeof ResizeObserver === "function" ? new ResizeObserver(() => {
      const w = el.clientWidth;
      if (Math.abs(w - lastW) >= 1) { lastW = w; ctx.redraw(); }
    }) : null;
    ro && ro.observe(el);
    return () => {
      ro && ro.disconnect();
      for (const t of traits) model.off("change:" + t, ctx.redraw);
      err.dispose();
      view && view.dispose && view.dispose();
    };
  }
  return { render };
}
