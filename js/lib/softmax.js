// Action probabilities from logits, shared by ActionPreferences and StatusLine.

/** Numerically safe softmax; NaN logits give NaN, +Inf logits share the mass. @param {ArrayLike<number>} x */
export function softmax(x) {
  const n = x.length, out = new Float64Array(n);
  let posInf = 0, m = -Infinity;
  for (let i = 0; i < n; i++) { if (x[i] === Infinity) posInf++; else if (Number.isFinite(x[i]) && x[i] > m) m = x[i]; }
  let z = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = Number.isNaN(v) ? NaN : posInf ? (v === Infinity ? 1 / posInf : 0) : v === -Infinity ? 0 : Math.exp(v - m);
    if (!posInf && Number.isFinite(out[i])) z += out[i];
  }
  if (!posInf) for (let i = 0; i < n; i++) out[i] = z > 0 ? out[i] / z : Number.isNaN(out[i]) ? NaN : 1 / n;
  return out;
}
