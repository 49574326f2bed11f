// ChannelHeatmap: small-multiple heatmaps of values [C, W, H] (x horizontal, y vertical).
// Traits: values float32 [C, W, H], titles [C], vmax (null = auto), annotate, agent_cell [x, y] | null,
// selected_cell [x, y] | null, cell_size (0 = auto), unused [k] channel indices the model never uses:
// drawn greyed out (values still in the hover) with "unused" in the title, and left out of the auto vmax.
import { widget } from "./lib/widget.js";
import { decode, absMax } from "./lib/arrays.js";
import { h, nth, fmt, push } from "./lib/dom.js";
import { sized, pos, outline } from "./lib/canvas.js";
import { diverging } from "./lib/colors.js";
import { heat, vmaxControl, nonFiniteNote } from "./lib/heat.js";

/** Wash a drawn map out to light grey and write "unused" across it. */
function greyOut(ctx, w, h) {
  ctx.save();
  ctx.globalCompositeOperation = "saturation"; ctx.fillStyle = "#888"; ctx.fillRect(0, 0, w, h);  // drop the colour
  ctx.globalCompositeOperation = "source-over"; ctx.fillStyle = "rgba(240, 240, 240, 0.82)"; ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#8a5a00"; ctx.font = `bold ${Math.max(10, Math.min(16, Math.round(w / 8)))}px sans-serif`;
  ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.fillText("unused", w / 2, h / 2);
  ctx.restore();
}

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
    const unused = new Set((model.get("unused") || []).filter((c) => Number.isInteger(c) && c >= 0 && c < C));
    let used = 0;  // auto scale from the channels the model uses (an unused channel must not set the colours)
    for (let c = 0; c < C; c++) if (!unused.has(c)) used = Math.max(used, absMax(A.data.subarray(c * W * H, (c + 1) * W * H)));
    vmax = vc.update(unused.size === C ? absMax(A.data) : used);
    const m = Math.max(W, H);
    cs = (model.get("cell_size") | 0) || Math.max(3, Math.min(C <= 4 ? 40 : 24, Math.floor((C <= 4 ? 220 : 120) / m)));
    const ann = !!model.get("annotate"), ag = model.get("agent_cell"), sel = model.get("selected_cell");
    const scale = (v) => diverging(v, vmax);
    let nan = 0, inf = 0;
    const kids = [];
    for (let c = 0; c < C; c++) {
      const p = panel(c);
      const off = unused.has(c), name = title(c);
      p.title.textContent = off && !/unused/i.test(name) ? `${name} (unused)` : name;
      p.title.title = off ? `${p.title.textContent}: the model never reads this input here; the map carries no meaning` : name;
      p.title.style.color = off ? "#8a5a00" : "";
      p.el.classList.toggle("dtw-unused", off);
      p.title.style.maxWidth = Math.max(W * cs, 40) + "px";
      const ctx = sized(p.cv, W * cs, H * cs);
      p.cv.dataset.cell = String(cs);
      const r = heat(ctx, (x, y) => val(c, x, y), W, H, cs, scale, ann);
      nan += r.nan; inf += r.inf;
      if (off) greyOut(ctx, W * cs, H * cs);
      if (Array.isArray(ag) && ag.length === 2) outline(ctx, ag[0] * cs, ag[1] * cs, cs, cs, "#000", Math.max(1.5, cs / 10));
      if (Array.isArray(sel) && sel.length === 2) outline(ctx, sel[0] * cs, sel[1] * cs, cs, cs, "#ff9800", Math.max(1.5, cs / 10), [3, 2]);
      kids.push(p.el);
    }
    if (panels.children.length !== kids.length || kids.some((k, i) => panels.children[i] !== k)) panels.replaceChildren(...kids);
    note.textContent = nonFiniteNote(nan, inf);
  }
  return { draw, traits: ["values", "titles", "vmax", "annotate", "agent_cell", "selected_cell", "cell_size", "unused"] };
});
