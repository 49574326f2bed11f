// Canvas helpers: HiDPI sizing, text fitting, hatching, hit-testing.

/**
 * Create (or resize) a canvas of w x h CSS pixels drawn at devicePixelRatio.
 * Returns the 2D context already scaled so drawing uses CSS pixel units.
 * @param {HTMLCanvasElement | null} canvas @param {number} w @param {number} h
 */
export function sized(canvas, w, h) {
  const c = canvas || document.createElement("canvas");
  const dpr = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
  w = Math.max(1, Math.round(w)); h = Math.max(1, Math.round(h));
  if (c.width !== w * dpr || c.height !== h * dpr) { c.width = w * dpr; c.height = h * dpr; }
  c.style.width = w + "px"; c.style.height = h + "px";
  const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

/** Mouse position in CSS pixels relative to the canvas. @param {MouseEvent} e */
export function pos(canvas, e) {
  const r = canvas.getBoundingClientRect();
  const sx = r.width ? parseFloat(canvas.style.width) / r.width : 1;
  const sy = r.height ? parseFloat(canvas.style.height) / r.height : 1;
  return [(e.clientX - r.left) * (sx || 1), (e.clientY - r.top) * (sy || 1)];
}

/** Truncate `text` with an ellipsis so it fits in maxWidth px for ctx's font. */
export function fitText(ctx, text, maxWidth) {
  text = String(text ?? "");
  if (maxWidth <= 0) return "";
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + "…").width <= maxWidth) lo = mid; else hi = mid - 1;
  }
  return lo > 0 ? text.slice(0, lo) + "…" : "…";
}

/** Grey cell with diagonal hatching (used for NaN). */
export function hatch(ctx, x, y, w, h) {
  ctx.save();
  ctx.fillStyle = "#c8c8c8";
  ctx.fillRect(x, y, w, h);
  ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
  ctx.strokeStyle = "#7a7a7a"; ctx.lineWidth = 1;
  ctx.beginPath();
  const step = Math.max(3, Math.min(w, h) / 3);
  for (let d = -h; d < w; d += step) { ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); }
  ctx.stroke();
  ctx.restore();
}

/** Small black/white corner flag marking a clamped (±Inf) value. */
export function flag(ctx, x, y, s) {
  const k = Math.max(3, s * 0.35);
  ctx.fillStyle = "#000";
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + k, y); ctx.lineTo(x, y + k); ctx.fill();
}

/** Outline a rectangle with a crisp stroke inside the cell. */
export function outline(ctx, x, y, w, h, color, lw = 2, dash = null) {
  ctx.save();
  ctx.strokeStyle = color; ctx.lineWidth = lw;
  if (dash) ctx.setLineDash(dash);
  ctx.strokeRect(x + lw / 2, y + lw / 2, w - lw, h - lw);
  ctx.restore();
}

/** "Nice" tick values spanning [lo, hi]. */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** Draw a horizontal colour bar for scale(v) over [-vmax, vmax] (or [0, vmax]). */
export function colorbar(canvas, scale, lo, hi, width = 160) {
  const ctx = sized(canvas, width, 10);
  for (let i = 0; i < width; i++) {
    const c = scale(lo + ((hi - lo) * (i + 0.5)) / width);
    ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    ctx.fillRect(i, 0, 1, 10);
  }
  ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.strokeRect(0.5, 0.5, width - 1, 9);
}
