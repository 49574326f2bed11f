// ContributionBars: horizontal grouped bars of signed values [S, N] (S series, N components),
// e.g. direct logit attribution, or clean vs ablated. Optional groups [N] put components under
// group headers (in order of first appearance). Click a row to set `selected` (component index).
// `scale`: "symmetric" (signed values, axis [-m, m]) or "unit" (probabilities, axis [0, 1]); every
// row shows its value(s) in a value column. RTG following (lib/follow.js): follow_group, rtg,
// scan_rtgs [R], scan_values [R, N] previews series 0 at the group's slider RTG. show_sum appends
// " = <sum of series 0>" to the title (computed from the values drawn, previews included).
// rows [N] (optional, unsigned ints): row n shows labels[rows[n]] and groups[rows[n]], so a long label
// list is sent once and an update sends only which rows to show (e.g. a sorted top 30 of neurons).
// separate_axes: each series in its own column with its own axis (series in different units, e.g. a
// neuron's share and its activation), sharing the label column. steps [T] (optional): labels and title
// are templates whose "{k}" shows the episode step of token k (lib/steps.js).
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { h, nth, fmt, push, label } from "./lib/dom.js";
import { sized, fitText, ticks, flag } from "./lib/canvas.js";
import { pal, diverging, css } from "./lib/colors.js";
import { hits } from "./lib/hits.js";
import { follower, scanRow } from "./lib/follow.js";
import { stepFiller } from "./lib/steps.js";

const LW_MAX = 150, PW_MAX = 320, AX = 18, GH = 18;

export default widget("dtw-contrib", ({ model, body, tip, noData, redraw, avail }) => {
  const title = h("div", { class: "dtw-title", style: { whiteSpace: "normal" } });
  const legend = h("div", { class: "dtw-legend" });
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-bars" }));
  body.append(title, legend, cv);
  const follow = follower(model, redraw, ["values"]);
  const hit = hits(cv, tip, (r) => push(model, "selected", model.get("selected") === r.data ? -1 : r.data));

  function draw() {
    let A = decode(model.get("values"));
    if (A.size && A.shape.length === 1) A = { ...A, shape: [1, A.shape[0]] };
    if (A.size === 0) return noData();
    if (A.shape.length !== 2) return noData(`values must be [S, N], got [${A.shape.join(", ")}]`);
    const [S, N] = A.shape, pv = follow.preview, sr = pv ? scanRow(model, "scan_values", N, pv.rtg) : null;
    const sep = !!model.get("separate_axes") && S > 1;
    const val = (s, n) => (sr && s === 0 ? sr.row[n] : A.data[s * N + n]);
    const unit = model.get("scale") === "unit";
    // value column: as wide as its longest number, so adjacent series' values never overlap
    const mctx = cv.getContext("2d");
    let vw = 0;
    if (mctx) { mctx.font = "10px sans-serif"; for (let s = 0; s < S; s++) for (let n = 0; n < N; n++) vw = Math.max(vw, mctx.measureText(fmt(val(s, n), 3)).width); }
    const CW = Math.max(S === 1 ? 44 : 40, Math.ceil(vw) + 6), VW = CW * S + 4, total = avail(LW_MAX + PW_MAX * (sep ? 1.5 : 1) + VW);
    cv.dataset.vcol = String(CW);
    const LW = Math.min(LW_MAX, Math.max(60, Math.round((total - VW) * 0.32))), PW = Math.max(60, total - VW - LW);
    let sum = 0;
    if (model.get("show_sum")) for (let n = 0; n < N; n++) sum += val(0, n);
    const fill = stepFiller(model);
    title.textContent = fill(model.get("title") || "") + (model.get("show_sum") ? ` = ${sum >= 0 ? "+" : ""}${fmt(sum, 4)}` : "")
      + (sr ? ` · RTG ${pv.rtg.toFixed(2)} preview${sr.exact ? "" : " (interpolated)"}` : "");
    title.title = title.textContent; title.style.color = sr ? "#8a5a00" : "";
    title.style.display = title.textContent ? "" : "none";
    const sname = (s) => nth(model.get("series_names"), s, (i) => `series ${i}`);
    const R = decode(model.get("rows")), row = (n) => (R.size ? (n < R.size ? R.data[n] : -1) : n);
    const lab = (n) => fill(nth(model.get("labels"), row(n), (i) => `#${i}`));
    const color = (s, v) => (S === 1 ? css(diverging(v >= 0 ? 0.85 : -0.85, 1)) : pal(s));
    legend.replaceChildren(...(S === 1 ? [] : Array.from({ length: S }, (_, s) =>
      h("span", {}, [h("span", { class: "dtw-sw", style: { background: pal(s) } }), label(sname(s), 160)]))));
    // order components by group
    const gl = model.get("groups"), hasG = Array.isArray(gl) && gl.length > 0;
    const order = [], groupsSeen = new Map();
    for (let n = 0; n < N; n++) {
      const g = hasG ? nth(gl, row(n), () => "(none)") : "";
      if (!groupsSeen.has(g)) groupsSeen.set(g, []);
      groupsSeen.get(g).push(n);
    }
    const bh = S === 1 || sep ? 14 : Math.max(5, Math.min(12, Math.floor(36 / S))), rowH = (sep ? 1 : S) * bh + 6;
    let y = AX;
    const layout = [];
    for (const [g, ns] of groupsSeen) {
      if (hasG) { layout.push({ g, y }); y += GH; }
      for (const n of ns) { layout.push({ n, y }); order.push(n); y += rowH; }
    }
    // one axis for all series, or (separate_axes) one per series, each in its own column of the plot area
    const axes = Array.from({ length: sep ? S : 1 }, (_, j) => {
      const cw = PW / (sep ? S : 1), x0 = LW + j * cw;
      let m = 0;
      for (let s = sep ? j : 0; s < (sep ? j + 1 : S); s++) for (let n = 0; n < N; n++) { const v = Math.abs(val(s, n)); if (Number.isFinite(v) && v > m) m = v; }
      m = unit ? 1 : m || 1;
      const half = unit ? cw - 8 : cw / 2 - 4;
      return { m, half, mid: unit ? x0 + 2 : x0 + cw / 2, sx: half / m, nt: unit ? 3 : 4 };
    });
    const axis = (s) => axes[sep ? s : 0];
    const ctx = sized(cv, LW + PW + VW, y + 4);
    hit.reset();
    ctx.font = "10px sans-serif"; ctx.fillStyle = "#777"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const { m, mid, sx, nt } of axes) {
      for (const t of ticks(unit ? 0 : -m, m, sep ? nt : unit ? 5 : 4)) {
        const x = mid + t * sx;
        ctx.fillText(fmt(t, 2), x, 2); ctx.fillStyle = "#eee"; ctx.fillRect(x, AX - 4, 1, y - AX + 4); ctx.fillStyle = "#777";
      }
    }
    const sel = model.get("selected");
    ctx.textBaseline = "middle";
    for (const it of layout) {
      if (it.n === undefined) {
        ctx.font = "bold 11px sans-serif"; ctx.textAlign = "left"; ctx.fillStyle = "#333";
        const t = fitText(ctx, it.g, LW + PW);
        ctx.fillText(t, 2, it.y + GH / 2 + 1);
        hit.add(0, it.y, LW, GH, () => [`group: ${it.g}`]);
        continue;
      }
      const n = it.n;
      if (n === sel) { ctx.fillStyle = "#fff4d6"; ctx.fillRect(0, it.y, LW + PW + VW, rowH); }
      ctx.font = "11px sans-serif"; ctx.textAlign = "right"; ctx.fillStyle = "#222";
      ctx.fillText(fitText(ctx, lab(n), LW - 10), LW - 6, it.y + rowH / 2);
      const rowLines = () => [lab(n), ...(hasG ? [`group: ${nth(gl, row(n), () => "(none)")}`] : []),
        ...Array.from({ length: S }, (_, s) => `${sname(s)}: ${fmt(val(s, n), 4)}`)];
      hit.add(0, it.y, LW + PW + VW, rowH, rowLines, n);
      for (let s = 0; s < S; s++) {
        const v = val(s, n), by = it.y + 3 + (sep ? 0 : s * bh), { m, half, mid } = axis(s);
        if (Number.isNaN(v)) { ctx.fillStyle = "#999"; ctx.textAlign = "left"; ctx.font = "9px sans-serif"; ctx.fillText("NaN", mid + 3, by + bh / 2); continue; }
        const w = Math.max(unit ? 0 : -1, Math.min(1, v / m)) * half;
        ctx.fillStyle = color(s, v);
        ctx.fillRect(Math.min(mid, mid + w), by, Math.max(1, Math.abs(w)), bh - 1);
        if (!Number.isFinite(v)) flag(ctx, v > 0 ? mid + w - 5 : mid + w, by, bh);
        hit.add(Math.min(mid, mid + w) - 1, by, Math.abs(w) + 2, bh, () => [lab(n), `${sname(s)}: ${fmt(v, 4)}`], n);
      }
      ctx.font = "10px sans-serif"; ctx.textAlign = "left";
      for (let s = 0; s < S; s++) {  // value column: one value per series, so no value is ever hidden
        ctx.fillStyle = S === 1 ? "#444" : pal(s);
        ctx.fillText(fmt(val(s, n), 3), LW + PW + 4 + s * CW, it.y + rowH / 2);
      }
    }
    ctx.fillStyle = "#555";
    for (const { mid } of axes) ctx.fillRect(mid - 0.5, AX - 4, 1, y - AX + 4);
  }
  return { draw, traits: ["values", "series_names", "labels", "groups", "title", "selected", "scale", "scan_values", "scan_rtgs", "show_sum", "rows", "separate_axes", "steps"],
    dispose: () => follow.dispose() };
});
