// RTG following: widgets of one Explorer share a `follow_group` id. The RTG slider announces its
// position on the page (no kernel message); each follower previews its data from the RTG scan the
// kernel shipped once per state (`scan_rtgs` [R] + a [R, C] table), linearly interpolated between
// grid points, until the kernel confirms the released value with fresh data.
import { decode } from "./arrays.js";

const BUS = /** @type {EventTarget} */ (globalThis.__dtwFollowBus || (globalThis.__dtwFollowBus = new EventTarget()));

/** Announce an RTG position to `group` (`final`: the slider was released). */
export function publish(group, rtg, final = false) {
  if (group) BUS.dispatchEvent(new CustomEvent("rtg:" + group, { detail: { rtg: Number(rtg), final: !!final } }));
}

/** Listen to a group's RTG positions; returns the unsubscribe function. */
export function subscribe(group, fn) {
  const on = (/** @type {any} */ e) => fn(e.detail);
  BUS.addEventListener("rtg:" + group, on);
  return () => BUS.removeEventListener("rtg:" + group, on);
}

/**
 * Row of `table` [R, C] (flat, row-major) at `rtg`, linearly interpolated on the ascending grid `rtgs` [R]
 * (clamped to its ends). `exact` is true when `rtg` is a grid point (within 1e-6).
 * @returns {{row: Float64Array, exact: boolean} | null}
 */
export function interpolate(rtgs, table, C, rtg) {
  const R = rtgs.length;
  if (!R || table.length !== R * C || !Number.isFinite(rtg)) return null;
  let i = 0;
  while (i < R - 2 && rtgs[i + 1] < rtg) i++;
  const x0 = rtgs[i], x1 = R > 1 ? rtgs[i + 1] : x0;
  let t = x1 > x0 ? (rtg - x0) / (x1 - x0) : 0;
  t = Math.max(0, Math.min(1, t));
  const row = new Float64Array(C);
  for (let c = 0; c < C; c++) row[c] = table[i * C + c] * (1 - t) + (R > 1 ? table[(i + 1) * C + c] * t : 0);
  const exact = Math.abs(rtg - x0) < 1e-6 || Math.abs(rtg - x1) < 1e-6 || rtg <= rtgs[0] || rtg >= rtgs[R - 1];
  return { row, exact };
}

/**
 * Follow the RTG slider of `model.get("follow_group")`. `state.preview` is `{rtg, final}` while the
 * drawn data is a client-side preview, null once the kernel's data (trait `rtg` or any of
 * `confirmTraits`) arrived. Calls `redraw()` on every change.
 * @param {any} model @param {() => void} redraw @param {string[]} confirmTraits
 */
export function follower(model, redraw, confirmTraits) {
  const state = { preview: /** @type {null | {rtg: number, final: boolean}} */ (null), dispose: () => {} };
  let unsub = null;
  const on = (/** @type {{rtg: number, final: boolean}} */ d) => {
    const now = model.get("rtg");
    state.preview = d.final && Math.abs(d.rtg - now) < 1e-9 ? null : d;
    redraw();
  };
  const resub = () => { unsub && unsub(); const g = model.get("follow_group"); unsub = g ? subscribe(g, on) : null; };
  const confirm = () => { if (state.preview) { state.preview = null; redraw(); } };
  const traits = ["rtg", ...confirmTraits];
  model.on("change:follow_group", resub);
  for (const t of traits) model.on("change:" + t, confirm);
  resub();
  state.dispose = () => { unsub && unsub(); model.off("change:follow_group", resub); for (const t of traits) model.off("change:" + t, confirm); };
  return state;
}

/** Interpolated row of the model's scan table trait `name` ([R, C]) at `rtg`, or null when absent/mismatched. */
export function scanRow(model, name, C, rtg) {
  const X = decode(model.get("scan_rtgs")), T = decode(model.get(name));
  if (!X.size || T.shape.length !== 2 || T.shape[0] !== X.size || T.shape[1] !== C) return null;
  return interpolate(X.data, T.data, C, rtg);
}
