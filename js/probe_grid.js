// Shared drawing of a probe matrix (concepts x sites, colour = selectivity, hover = every metric),
// used by ProbeMatrix and TrainingDynamics.
import { fmt } from "./lib/dom.js";
import { sized, fitText, outline } from "./lib/canvas.js";
import { diverging } from "./lib/colors.js";
import { heat } from "./lib/heat.js";

/**
 * Draw `sel(r, c)` (selectivity) for R concepts x C sites on `cv` and register hover text.
 * @param {HTMLCanvasElement} cv
 * @param {{R: number, C: number, sel: (r: number, c: number) => number, rowLabel: (r: number) => string,
 *   colLabel: (c: number) => string, metrics: (r: number, c: number) => string[], vmax: number,
 *   selected?: number[] | null}} o
 * @returns {{cs: number, ox: number, oy: number}} geometry for hit-testing
 */
export function drawProbeGrid(cv, o) {
  const cs = Math.max(14, Math.min(40, Math.floor(360 / Math.max(o.R, o.C, 1))));
  const ctx0 = sized(cv, 1, 1); ctx0.font = "11px sans-serif";
  let lw = 0, th = 0;
  for (let r = 0; r < o.R; r++) lw = Math.max(lw, ctx0.measureText(o.rowLabel(r)).width);
  for (let c = 0; c < o.C; c++) th = Math.max(th, ctx0.measureText(o.colLabel(c)).width);
  const g = { cs, ox: Math.min(150, lw) + 8, oy: Math.min(110, th) + 8 };
  const ctx = sized(cv, g.ox + o.C * cs + 2, g.oy + o.R * cs + 2);
  heat(ctx, (c, r) => o.sel(r, c), o.C, o.R, cs, (v) => diverging(v, o.vmax), true, g.ox, g.oy);
  ctx.fillStyle = "#333"; ctx.textBaseline = "middle"; ctx.font = "11px sans-serif"; ctx.textAlign = "right";
  for (let r = 0; r < o.R; r++) ctx.fillText(fitText(ctx, o.rowLabel(r), 150), g.ox - 5, g.oy + r * cs + cs / 2);
  ctx.textAlign = "left";
  for (let c = 0; c < o.C; c++) {
    ctx.save(); ctx.translate(g.ox + c * cs + cs / 2, g.oy - 5); ctx.rotate(-Math.PI / 2);
    ctx.fillText(fitText(ctx, o.colLabel(c), 110), 0, 0); ctx.restore();
  }
  if (o.selected && o.selected.length === 2) outline(ctx, g.ox + o.selected[1] * cs, g.oy + o.selected[0] * cs, cs, cs, "#ff9800", 2);
  return g;
}

/** Hover lines for one cell given metric names and a getter. */
export function metricLines(rowLabel, colLabel, names, get) {
  return [`concept: ${rowLabel}`, `site: ${colLabel}`, ...names.map((n, m) => `${n}: ${fmt(get(m), 4)}`)];
}
