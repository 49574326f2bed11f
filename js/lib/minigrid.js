// MiniGrid tile drawing from the integer encoding (object, colour, state).
import { MG_COLORS, css } from "./colors.js";

export const BG_SEEN = "#1c1c1c";
export const BG_UNSEEN = "#000";
export const LAVA = [255, 128, 0];

const col = (c) => MG_COLORS[c] || [255, 0, 255];
const dim = (c, k) => [c[0] * k, c[1] * k, c[2] * k].map(Math.round);

/**
 * Draw the agent triangle (MiniGrid shape) centred in the cell.
 * @param {CanvasRenderingContext2D} ctx @param {number} dir 0 right, 1 down, 2 left, 3 up
 */
export function agent(ctx, x, y, s, dir, color = "rgb(255,0,0)") {
  const pts = [[0.12, 0.19], [0.87, 0.5], [0.12, 0.81]];
  const a = ((dir | 0) % 4) * Math.PI / 2, cx = x + s / 2, cy = y + s / 2;
  ctx.fillStyle = color;
  ctx.beginPath();
  pts.forEach(([px, py], i) => {
    const dx = (px - 0.5) * s, dy = (py - 0.5) * s;
    const X = cx + dx * Math.cos(a) - dy * Math.sin(a), Y = cy + dx * Math.sin(a) + dy * Math.cos(a);
    i ? ctx.lineTo(X, Y) : ctx.moveTo(X, Y);
  });
  ctx.closePath(); ctx.fill();
}

/**
 * Draw one tile. Background must already be painted.
 * @param {CanvasRenderingContext2D} ctx @param {number} o object idx @param {number} c colour idx @param {number} st state idx
 */
export function tile(ctx, x, y, s, o, c, st) {
  const k = col(c), K = css(k);
  const p = (f) => f * s;
  switch (o) {
    case 0: case 1: return;
    case 2: ctx.fillStyle = K; ctx.fillRect(x, y, s, s); return;
    case 3: ctx.fillStyle = css(dim(k, 0.5)); ctx.fillRect(x + 1, y + 1, s - 2, s - 2); return;
    case 4: // door
      if (st === 0) { // open: thin frame along the edge
        ctx.fillStyle = K; ctx.fillRect(x + p(0.88), y, p(0.12), s);
        ctx.fillStyle = css(dim(k, 0.5)); ctx.fillRect(x + p(0.9), y + p(0.04), p(0.06), s - p(0.08));
      } else if (st === 2) { // locked: solid with keyhole
        ctx.fillStyle = K; ctx.fillRect(x, y, s, s);
        ctx.fillStyle = css(dim(k, 0.45)); ctx.fillRect(x + p(0.06), y + p(0.06), s - p(0.12), s - p(0.12));
        ctx.fillStyle = K; ctx.fillRect(x + p(0.52), y + p(0.46), p(0.23), p(0.08));
      } else { // closed: frame, dark inside, handle
        ctx.fillStyle = K; ctx.fillRect(x, y, s, s);
        ctx.fillStyle = "#000"; ctx.fillRect(x + p(0.06), y + p(0.06), s - p(0.12), s - p(0.12));
        ctx.fillStyle = K; ctx.fillRect(x + p(0.12), y + p(0.12), s - p(0.24), s - p(0.24));
        ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(x + p(0.75), y + p(0.5), p(0.08), 0, 7); ctx.fill();
      }
      return;
    case 5: // key
      ctx.fillStyle = K;
      ctx.fillRect(x + p(0.5), y + p(0.31), p(0.13), p(0.57));
      ctx.fillRect(x + p(0.38), y + p(0.59), p(0.12), p(0.07));
      ctx.fillRect(x + p(0.38), y + p(0.81), p(0.12), p(0.07));
      ctx.beginPath(); ctx.arc(x + p(0.56), y + p(0.28), p(0.19), 0, 7); ctx.fill();
      ctx.fillStyle = BG_SEEN; ctx.beginPath(); ctx.arc(x + p(0.56), y + p(0.28), p(0.064), 0, 7); ctx.fill();
      return;
    case 6: ctx.fillStyle = K; ctx.beginPath(); ctx.arc(x + s / 2, y + s / 2, p(0.31), 0, 7); ctx.fill(); return;
    case 7: // box
      ctx.strokeStyle = K; ctx.lineWidth = Math.max(1, p(0.07));
      ctx.strokeRect(x + p(0.15), y + p(0.15), p(0.7), p(0.7));
      ctx.beginPath(); ctx.moveTo(x + p(0.15), y + p(0.5)); ctx.lineTo(x + p(0.85), y + p(0.5)); ctx.stroke();
      return;
    case 8: ctx.fillStyle = K; ctx.fillRect(x, y, s, s); return;
    case 9: { // lava: orange with dark waves
      ctx.fillStyle = css(LAVA); ctx.fillRect(x, y, s, s);
      ctx.strokeStyle = "#000"; ctx.lineWidth = Math.max(1, s / 24);
      for (const fy of [0.3, 0.5, 0.7]) {
        ctx.beginPath();
        for (let i = 0; i <= 5; i++) ctx.lineTo(x + p(0.1 + 0.16 * i), y + p(fy + (i % 2 ? 0.03 : -0.03)));
        ctx.stroke();
      }
      return;
    }
    case 10: agent(ctx, x, y, s, st, css(k)); return;
    default: // unknown object index
      ctx.fillStyle = "#f0f"; ctx.fillRect(x + p(0.2), y + p(0.2), p(0.6), p(0.6));
  }
}

/**
 * MiniGrid's partial-view square (top-left corner) for an agent at (ax, ay) facing dir.
 * @returns {[number, number]}
 */
export function viewTopLeft(ax, ay, dir, vs) {
  const half = Math.floor(vs / 2);
  switch (dir) {
    case 0: return [ax, ay - half];
    case 1: return [ax - half, ay];
    case 2: return [ax - vs + 1, ay - half];
    default: return [ax - half, ay - vs + 1];
  }
}
