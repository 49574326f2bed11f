// Token labels by episode step (dtwidgets/widgets/_traits.py fill_steps, the same rule): a widget with a
// `steps` trait (int16 [T], the episode step of each window token, negative = left padding) shows its
// labels with each "{k}" replaced by the subscript of steps[k] ("s{25}" -> "s₉", or "s·pad"); "{{" and
// "}}" are literal braces. Without steps the labels are shown as they are. The labels are sent once;
// only the steps change per state.
import { decode } from "./arrays.js";

const SUB = "₀₁₂₃₄₅₆₇₈₉";

/** "₉" for 9, "·pad" for a negative step, "?" when missing. @param {number | undefined} s */
export function stepText(s) {
  if (s === undefined || !Number.isFinite(s)) return "?";
  return s < 0 ? "·pad" : String(Math.trunc(s)).replace(/\d/g, (d) => SUB[+d]);
}

/** A function filling templates from the model's `steps` trait (identity when it is empty). */
export function stepFiller(model) {
  const S = decode(model.get("steps"));
  if (!S.size) return (/** @type {any} */ t) => t;
  return (/** @type {any} */ t) => (typeof t !== "string" ? t : t.replace(/\{\{|\}\}|\{(\d+)\}/g,
    (m, k) => (k === undefined ? m[0] : stepText(+k < S.size ? S.data[+k] : undefined))));
}
