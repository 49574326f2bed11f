// Cell heatmap drawing shared by ChannelHeatmap, MatrixHeatmap and AttentionView,
// plus the "vmax" control (number input bound to the `vmax` trait).
import { h, push, fmt, cellFmt } from "./dom.js";
import { hatch, flag, colorbar } from "./canvas.js";
import { ink, css, diverging } from "./colors.js";

/**
 * Fill an nx x ny cell grid. get(cx, cy) returns the value for display column cx, row cy.
 * NaN -> hatched grey; ±Inf -> clamped colour plus a corner flag.
 * @param {CanvasRenderingContext2D} ctx @param {(cx: number, cy: number) => number} get
 * @param {(v: number) => number[]} scale value -> rgb
 * @returns {{nan: number, inf: number}}
 */
export function heat(ctx, get, nx, ny, cs, scale, annotate = false, ox = 0, oy = 0, csy = cs) {
  let nan = 0, inf = 0;
  const fs = Math.min(cs * 0.3, csy * 0.45);
  const ann = annotate && cs >= 14 && csy >= 9;
  if (ann) { ctx.font = `${Math.max(7, Math.round(fs))}px sans-serif`; ctx.textAlign = "center"; ctx.textBaseline = "middle"; }
  const gap = cs >= 6 && csy >= 6 ? 0.5 : 0;
  for (let cx = 0; cx < nx; cx++) for (let cy = 0; cy < ny; cy++) {
    const v = get(cx, cy), X = ox + cx * cs, Y = oy + cy * csy;
    if (Number.isNaN(v)) { nan++; hatch(ctx, X, Y, cs, csy); continue; }
    const c = scale(v);
    ctx.fillStyle = css(c); ctx.fillRect(X, Y, cs - gap, csy - gap);
    if (!Number.isFinite(v)) { inf++; flag(ctx, X, Y, Math.min(cs, csy)); }
    if (ann) { ctx.fillStyle = ink(c); ctx.fillText(cellFmt(v, cs >= 30 ? 2 : 1), X + cs / 2, Y + csy / 2 + 0.5); }
  }
  return { nan, inf };
}

/** Footer text describing non-finite counts. */
export function nonFiniteNote(nan, inf) {
  const p = [];
  if (nan) p.push(`${nan} ${nan === 1 ? "cell has" : "cells have"} no value (NaN: not computed or undefined; hatched)`);
  if (inf) p.push(`${inf} ±Inf (clamped, flagged)`);
  return p.join(", ");
}

/**
 * vmax control: "vmax [input] auto=…" plus a colour bar. Empty input means auto (null).
 * @returns {{el: HTMLElement, update: (autoV: number) => number}} update returns the vmax in use
 */
export function vmaxControl(model, signed = true) {
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "number", step: "any", min: "0", placeholder: "auto", title: "colour scale limit (empty = auto)" }));
  const autoTxt = h("span");
  const bar = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-cbar" }));
  const lo = h("span"), hi = h("span");
  input.addEventListener("change", () => {
    const v = parseFloat(input.value);
    push(model, "vmax", input.value.trim() === "" || !(v > 0) ? null : v);
  });
  const el = h("div", { class: "dtw-controls" }, [h("span", { text: "vmax" }), input, autoTxt, lo, bar, hi]);
  return {
    el,
    update(autoV) {
      const user = model.get("vmax");
      const vmax = user > 0 ? user : autoV > 0 ? autoV : 1;
      if (document.activeElement !== input) input.value = user > 0 ? String(user) : "";
      autoTxt.textContent = user > 0 ? "" : `(auto ${fmt(vmax)})`;
      lo.textContent = signed ? fmt(-vmax) : "0"; hi.textContent = fmt(vmax);
      colorbar(bar, signed ? (v) => diverging(v, vmax) : (v) => v, signed ? -vmax : 0, vmax, 120);
      return vmax;
    },
  };
}
