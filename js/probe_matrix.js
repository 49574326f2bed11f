// ProbeMatrix: concepts x sites (hook @ token position), colour = selectivity (score minus the
// control task's score), hover = every metric. Click a cell to set `selected_cell` [row, col].
// Traits: selectivity [R, C], metrics [M, R, C], metric_names [M], concepts [R], sites [C], title, vmax.
import { widget } from "./lib/widget.js";
import { decode, absMax } from "./lib/arrays.js";
import { h, nth, push } from "./lib/dom.js";
import { pos } from "./lib/canvas.js";
import { vmaxControl } from "./lib/heat.js";
import { drawProbeGrid, metricLines } from "./probe_grid.js";

export default widget("dtw-probes", ({ model, body, tip, noData }) => {
  const title = h("div", { class: "dtw-title" });
  const vc = vmaxControl(model);
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-heat" }));
  body.append(title, vc.el, cv);
  let S = null, Mx = null, R = 0, C = 0, g = { cs: 10, ox: 0, oy: 0 };
  const rl = (r) => nth(model.get("concepts"), r, (i) => `concept ${i}`);
  const cl = (c) => nth(model.get("sites"), c, (i) => `site ${i}`);

  function draw() {
    title.textContent = model.get("title") || ""; title.title = title.textContent;
    title.style.display = title.textContent ? "" : "none";
    S = decode(model.get("selectivity")); Mx = decode(model.get("metrics"));
    if (S.size === 0) { S = null; return noData(); }
    if (S.shape.length !== 2) { S = null; return noData(`selectivity must be [R, C], got [${S.shape.join(", ")}]`); }
    [R, C] = S.shape;
    const vmax = vc.update(absMax(S.data));
    g = drawProbeGrid(cv, { R, C, sel: (r, c) => S.data[r * C + c], rowLabel: rl, colLabel: cl, vmax,
      selected: model.get("selected_cell") });
  }
  const metric = (m, r, c) => (Mx && Mx.size === Mx.shape[0] * R * C ? Mx.data[(m * R + r) * C + c] : NaN);
  cv.addEventListener("mousemove", (e) => {
    const [px, py] = pos(cv, e), c = Math.floor((px - g.ox) / g.cs), r = Math.floor((py - g.oy) / g.cs);
    if (!S || r < 0 || c < 0 || r >= R || c >= C) return tip.hide();
    const names = (model.get("metric_names") || []).map(String);
    tip.show(e, [...metricLines(rl(r), cl(c), names, (m) => metric(m, r, c)), `selectivity: ${S.data[r * C + c].toFixed(4)}`]);
  });
  cv.addEventListener("mouseleave", () => tip.hide());
  cv.addEventListener("click", (e) => {
    const [px, py] = pos(cv, e), c = Math.floor((px - g.ox) / g.cs), r = Math.floor((py - g.oy) / g.cs);
    if (S && r >= 0 && c >= 0 && r < R && c < C) push(model, "selected_cell", [r, c]);
  });
  return { draw, traits: ["selectivity", "metrics", "metric_names", "concepts", "sites", "title", "vmax", "selected_cell"] };
});
