// MatrixHeatmap: values [R, C] on a diverging scale (row 0 at top), with row/column labels,
// hover readout, optional annotation and click-to-select (selected_cell = [row, col]).
// Used for activation patching (layers x positions) and QK/OV maps. steps [T] (optional): labels and
// title are templates whose "{k}" shows the episode step of token k (lib/steps.js).
import { widget } from "./lib/widget.js";
import { decode, absMax } from "./lib/arrays.js";
import { h, nth, fmt, push } from "./lib/dom.js";
import { sized, pos, fitText, outline } from "./lib/canvas.js";
import { diverging } from "./lib/colors.js";
import { heat, vmaxControl, nonFiniteNote } from "./lib/heat.js";
import { stepFiller } from "./lib/steps.js";

export default widget("dtw-matrix", ({ model, body, tip, noData, avail }) => {
  const title = h("div", { class: "dtw-title" });
  const vc = vmaxControl(model);
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-heat" }));
  const note = h("div", { class: "dtw-note" });
  body.append(title, vc.el, cv, note);
  let A = null, R = 0, C = 0, g = { cs: 10, ox: 0, oy: 0 }, fill = stepFiller(model);
  const rl = (r) => fill(nth(model.get("row_labels"), r, String));
  const cl = (c) => fill(nth(model.get("col_labels"), c, String));

  function draw() {
    A = decode(model.get("values"));
    fill = stepFiller(model);
    title.textContent = fill(model.get("title") || ""); title.title = title.textContent;
    title.style.display = title.textContent ? "" : "none";
    if (A.size === 0) { A = null; return noData(); }
    if (A.shape.length !== 2) { A = null; return noData(`values must be [R, C], got [${A.shape.join(", ")}]`); }
    [R, C] = A.shape;
    const vmax = vc.update(absMax(A.data));
    let cs = (model.get("cell_size") | 0) || Math.max(3, Math.min(40, Math.floor(420 / Math.max(R, C))));
    const labels = cs >= 8, font = `${Math.min(11, cs - 1)}px sans-serif`;
    const ctx0 = sized(cv, 1, 1); ctx0.font = font;
    let lw = 0, th = 0;
    if (labels) {
      for (let r = 0; r < R; r++) lw = Math.max(lw, ctx0.measureText(rl(r)).width);
      for (let c = 0; c < C; c++) th = Math.max(th, ctx0.measureText(cl(c)).width);
    }
    const yl = model.get("y_label") || "", xl = model.get("x_label") || "";
    const ax = 14; // room for axis titles
    const ox = (labels ? Math.min(120, lw) + 8 : 0) + (yl ? ax : 0);
    cs = Math.max(2, Math.min(cs, Math.floor((avail(ox + C * cs + 2) - ox - 2) / C)));  // never wider than the column
    g = { cs, ox, oy: (labels ? Math.min(80, th) + 8 : 0) + (xl ? ax : 0) };
    const ctx = sized(cv, g.ox + C * cs + 2, g.oy + R * cs + 2);
    Object.assign(cv.dataset, { cell: cs, ox: g.ox, oy: g.oy });
    const res = heat(ctx, (c, r) => A.data[r * C + c], C, R, cs, (v) => diverging(v, vmax), !!model.get("annotate"), g.ox, g.oy);
    ctx.fillStyle = "#333"; ctx.textBaseline = "middle";
    if (labels) {
      ctx.font = font; ctx.textAlign = "right";
      for (let r = 0; r < R; r++) ctx.fillText(fitText(ctx, rl(r), 120), g.ox - 5, g.oy + r * cs + cs / 2);
      ctx.textAlign = "left";
      for (let c = 0; c < C; c++) {
        ctx.save(); ctx.translate(g.ox + c * cs + cs / 2, g.oy - 5); ctx.rotate(-Math.PI / 2);
        ctx.fillText(fitText(ctx, cl(c), 80), 0, 0); ctx.restore();
      }
    }
    ctx.font = "bold 11px sans-serif"; ctx.textAlign = "center";
    if (xl) ctx.fillText(fitText(ctx, xl, Math.max(40, C * cs)), g.ox + (C * cs) / 2, 7);
    if (yl) { ctx.save(); ctx.translate(7, g.oy + (R * cs) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(fitText(ctx, yl, Math.max(40, R * cs)), 0, 0); ctx.restore(); }
    const sel = model.get("selected_cell");
    if (Array.isArray(sel) && sel.length === 2) outline(ctx, g.ox + sel[1] * cs, g.oy + sel[0] * cs, cs, cs, "#ff9800", 2);
    note.textContent = nonFiniteNote(res.nan, res.inf);
  }

  const at = (e) => {
    const [px, py] = pos(cv, e), c = Math.floor((px - g.ox) / g.cs), r = Math.floor((py - g.oy) / g.cs);
    return { r, c, px, py, inside: A && r >= 0 && c >= 0 && r < R && c < C };
  };
  cv.addEventListener("mousemove", (e) => {
    const p = at(e);
    if (p.inside) return tip.show(e, [`row: ${rl(p.r)}`, `col: ${cl(p.c)}`, `value: ${fmt(A.data[p.r * C + p.c], 4)}`]);
    if (A && p.px < g.ox && p.r >= 0 && p.r < R) return tip.show(e, `row: ${rl(p.r)}`);
    if (A && p.py < g.oy && p.c >= 0 && p.c < C) return tip.show(e, `col: ${cl(p.c)}`);
    tip.hide();
  });
  cv.addEventListener("mouseleave", () => tip.hide());
  cv.addEventListener("click", (e) => { const p = at(e); if (p.inside) push(model, "selected_cell", [p.r, p.c]); });
  return { draw, traits: ["values", "row_labels", "col_labels", "title", "vmax", "annotate", "selected_cell", "x_label", "y_label", "cell_size", "steps"] };
});
