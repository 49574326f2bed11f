// Colour scales and palettes. Colours are [r, g, b] with 0..255 channels.

/** @typedef {[number, number, number]} RGB */

const RED = [178, 24, 43], RED2 = [239, 138, 98], WHITE = [247, 247, 247], BLUE2 = [103, 169, 207], BLUE = [33, 102, 172];

function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t].map(Math.round);
}

/**
 * Diverging blue-white-red scale centred on 0 (negative = blue, positive = red).
 * @param {number} v value @param {number} vmax symmetric limit (> 0) @returns {RGB}
 */
export function diverging(v, vmax) {
  let t = vmax > 0 ? v / vmax : 0;
  if (!(t === t)) t = 0;
  t = Math.max(-1, Math.min(1, t));
  if (t >= 0) return t < 0.5 ? mix(WHITE, RED2, t * 2) : mix(RED2, RED, (t - 0.5) * 2);
  t = -t;
  return t < 0.5 ? mix(WHITE, BLUE2, t * 2) : mix(BLUE2, BLUE, (t - 0.5) * 2);
}

const SEQ_END = [63, 0, 125];
/** Sequential white -> purple scale for t in [0, 1]. @returns {RGB} */
export function sequential(t) {
  t = t === t ? Math.max(0, Math.min(1, t)) : 0;
  return mix([252, 251, 253], SEQ_END, Math.pow(t, 0.8));
}

/** @param {RGB} c */
export const css = (c, a = 1) => (a === 1 ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${a})`);

/** Text colour (black/white) readable on background c. @param {RGB} c */
export const ink = (c) => (c[0] * 0.299 + c[1] * 0.587 + c[2] * 0.114 > 140 ? "#111" : "#fff");

/** Categorical palette (Tableau 10). */
export const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
export const pal = (i) => PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];

/** MiniGrid COLOR_TO_IDX order: red green blue purple yellow grey. */
export const MG_COLORS = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [112, 39, 195], [255, 255, 0], [100, 100, 100]];
export const MG_COLOR_NAMES = ["red", "green", "blue", "purple", "yellow", "grey"];
export const MG_OBJECT_NAMES = ["unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent"];
export const MG_STATE_NAMES = ["open", "closed", "locked"];
