// ChannelHeatmap: small-multiple heatmaps of values [C, W, H] (x horizontal, y vertical).
// Traits: values float32 [C, W, H], titles [C], vmax (null = auto), annotate, agent_cell [x, y] | null,
// selected_cell [x, y] | null, cell_size (0 = auto).
import { widget } from "./lib/widget.js";
import { decode, absMax } from "./lib/arrays.js";
import { h, nth, fmt, push } from "./lib/dom.js";
import { sized, pos, outline } from "./lib/canvas.js";
import { diverging } from "./lib/colors.js";
import { heat, vmaxControl, nonFiniteNote } from "./lib/heat.js";

export default widget("dtw-channelheatmap", ({ model, body, tip, noData }) => {
  const vc = vmaxControl(model);
  const panels = h("div", { class: "dtw-panels" });
  const note = h("div", { class: "dtw-note" });
  body.append(vc.el, panels, note);
  /** @type {{el: HTMLElement, title: HTMLElement, cv: HTMLCanvasElement}[]} */
  const pool = [];
  let A = null, C = 0, W = 0, H = 0, cs = 16, vmax = 1;

  const val = (c, x, y) => A.data[(c * W + x) * H + y];
  const title = (c) => nth(model.get("titles"), c, (i) => `channel ${i}`);

  function panel(i) {
    if (pool[i]) return pool[i];
    const t = h("div", { class: "dtw-ptitle" });
    const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-heat", "data-channel": i }));
    const el = h("div", { class: "dtw-panel" }, [t, cv]);
    const at = (e) => {
      const [px, py] = pos(cv, e), x = Math.floor(px / cs), y = Math.floor(py / cs);
      return A && x >= 0 && y >= 0 && x < W && y < H ? [x, y] : null;
    };
    cv.addEventListener("mousemove", (e) => {
      const p = at(e);
      if (!p) return tip.hide();
      const v = val(i, p[0], p[1]);
      tip.show(e, [title(i), `x=${p[0]}, y=${p[1]}`, `value: ${fmt(v, 4)}${Number.isFinite(v) || Number.isNaN(v) ? "" : " (clamped)"}`]);
    });
    cv.addEventListener("mouseleave", () => tip.hide());
    cv.addEventListener("click", (e) => { const p = at(e); if (p) push(model, "selected_cell", p); });
    return (pool[i] = { el, title: t, cv });
  }

  function draw() {
    A = decode(model.get("values"));
    if (A.size === 0) { A = null; return noData(); }
    if (A.shape.length !== 3) { A = null; return noData(`values must be [C, W, H], got [${A.shape.join(", ")}]`); }
    [C, W, H] = A.shape;
    vmax = vc.update(absMax(A.data));
    const m = Math.max(W, H);
    cs = (model.get("cell_size") | 0) || Math.max(3, Math.min(C <= 4 ? 40 : 24, Math.floor((C <= 4 ? 220 : 120) / m)));
    const ann = !!model.get("annotate"), ag = model.get("agent_cell"), sel = model.get("selected_cell");
    const scale = (v) => diverging(v, vmax);
    let nan = 0, inf = 0;
    const kids = [];
    for (let c = 0; c < C; c++) {
      const p = panel(c);
      p.title.textContent = title(c); p.title.title = title(c);
      p.title.style.maxWidth = Math.max(W * cs, 40) + "px";
      const ctx = sized(p.cv, W * cs, H * cs);
      p.cv.dataset.cell = String(cs);
      const r = heat(ctx, (x, y) => val(c, x, y), W, H, cs, scale, ann);
      nan += r.nan; inf += r.inf;
      if (Array.isArray(ag) && ag.length === 2) outline(ctx, ag[0] * cs, ag[1] * cs, cs, cs, "#000", Math.max(1.5, cs / 10));
      if (Array.isArray(sel) && sel.length === 2) outline(ctx, sel[0] * cs, sel[1] * cs, cs, cs, "#ff9800", Math.max(1.5, cs / 10), [3, 2]);
      kids.push(p.el);
    }
    if (panels.children.length !== kids.length || kids.some((k, i) => panels.children[i] !== k)) panels.replaceChildren(...kids);
    note.textContent = nonFiniteNote(nan, inf);
  }
  return { draw, traits: ["values", "titles", "vmax", "annotate", "agent_cell", "selected_cell", "cell_size"] };
});
