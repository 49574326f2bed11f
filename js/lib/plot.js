// Minimal 2-D plot frame: linear scales, axes with ticks, polyline with NaN gaps.
import { ticks } from "./canvas.js";
import { fmt } from "./dom.js";

/** Padded [lo, hi] around a finite range (or [0, 1]). */
export function padRange(r, pad = 0.06) {
  if (!r) return [0, 1];
  let [lo, hi] = r;
  if (hi - lo < 1e-12) { const d = Math.abs(lo) * 0.1 || 0.5; lo -= d; hi += d; }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

/**
 * Frame with scales. box = {x, y, w, h} plot area in CSS px.
 * @returns {{sx: (v: number) => number, sy: (v: number) => number, ix: (px: number) => number}}
 */
export function frame(ctx, box, xr, yr, opts = {}) {
  const sx = (v) => box.x + ((v - xr[0]) / (xr[1] - xr[0] || 1)) * box.w;
  const sy = (v) => box.y + box.h - ((v - yr[0]) / (yr[1] - yr[0] || 1)) * box.h;
  const ix = (px) => xr[0] + ((px - box.x) / box.w) * (xr[1] - xr[0]);
  ctx.save();
  ctx.font = "10px sans-serif"; ctx.fillStyle = "#666"; ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of ticks(yr[0], yr[1], opts.ny || 4)) {
    const y = Math.round(sy(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
    ctx.fillText(fmt(t, 3), box.x - 4, y);
  }
  if (opts.xticks !== false) {
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const t of ticks(xr[0], xr[1], opts.nx || 6)) {
      const x = Math.round(sx(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, box.y); ctx.lineTo(x, box.y + box.h); ctx.stroke();
      ctx.fillText(fmt(t, 3), x, box.y + box.h + 3);
    }
  }
  if (yr[0] < 0 && yr[1] > 0) { ctx.strokeStyle = "#aaa"; const y = Math.round(sy(0)) + 0.5; ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke(); }
  ctx.strokeStyle = "#999"; ctx.strokeRect(box.x + 0.5, box.y + 0.5, box.w - 1, box.h - 1);
  ctx.restore();
  return { sx, sy, ix };
}

/** Polyline through (xs[i], ys(i)); non-finite points break the line. Infinite y is clamped. */
export function line(ctx, xs, ys, sx, sy, yr, color, width = 1.6) {
  ctx.save();
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.lineJoin = "round";
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    let y = ys(i);
    if (y === Infinity) y = yr[1]; else if (y === -Infinity) y = yr[0];
    if (!Number.isFinite(xs[i]) || !Number.isFinite(y)) { pen = false; continue; }
    pen ? ctx.lineTo(sx(xs[i]), sy(y)) : ctx.moveTo(sx(xs[i]), sy(y));
    pen = true;
  }
  ctx.stroke();
  ctx.restore();
}
