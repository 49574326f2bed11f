// CalibrationCurve: target return vs achieved return (mean line, [lo, hi] quantile band,
// ideal diagonal) above stacked outcome-fraction bars per target.
// Traits: targets [R], mean [R], lo [R], hi [R], outcome_counts [R, K], outcome_names [K], title,
// x_label, y_label.
import { widget } from "./lib/widget.js";
import { decode, finiteRange } from "./lib/arrays.js";
import { h, nth, fmt, label } from "./lib/dom.js";
import { sized, pos } from "./lib/canvas.js";
import { padRange, frame, line } from "./lib/plot.js";
import { hits } from "./lib/hits.js";

const ML = 52, PW = 400, MR = 12, MT = 8, PH = 240, BH = 80, GAP = 40, MB = 20;
const OUT_COLORS = ["#59a14f", "#e15759", "#9d9d9d", "#4e79a7", "#f28e2b", "#b07aa1", "#edc948", "#76b7b2"];

export default widget("dtw-calibration", ({ model, body, tip, noData }) => {
  const title = h("div", { class: "dtw-title" });
  const legend = h("div", { class: "dtw-legend" });
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-calib" }));
  body.append(title, legend, cv);
  const hit = hits(cv, tip);

  function draw() {
    title.textContent = model.get("title") || ""; title.title = title.textContent;
    title.style.display = title.textContent ? "" : "none";
    const T = decode(model.get("targets")), M = decode(model.get("mean"));
    const LO = decode(model.get("lo")), HI = decode(model.get("hi"));
    let OC = decode(model.get("outcome_counts"));
    const R = T.size;
    if (!R) return noData();
    const get = (A, i) => (A.size === R ? A.data[i] : NaN);
    const K = OC.shape.length === 2 && OC.shape[0] === R ? OC.shape[1] : 0;
    const names = Array.from({ length: K }, (_, k) => nth(model.get("outcome_names"), k, (j) => `outcome ${j}`));
    const oc = (k) => OUT_COLORS[k % OUT_COLORS.length];
    legend.replaceChildren(
      h("span", {}, [h("span", { class: "dtw-sw", style: { background: "#2b6cb0" } }), h("span", { text: "mean achieved" })]),
      h("span", {}, [h("span", { class: "dtw-sw", style: { background: "rgba(43,108,176,0.25)" } }), h("span", { text: "quantile band" })]),
      h("span", {}, [h("span", { class: "dtw-sw", style: { background: "#888", height: "2px" } }), h("span", { text: "ideal (y = x)" })]),
      ...names.map((n, k) => h("span", {}, [h("span", { class: "dtw-sw", style: { background: oc(k) } }), label(n, 140)])));
    const allY = [...Array.from(M.data), ...Array.from(LO.data), ...Array.from(HI.data), ...Array.from(T.data)];
    const xr = padRange(finiteRange(T.data), 0.04), yr = padRange(finiteRange(allY));
    const H = MT + PH + GAP + (K ? BH + MB : 0);
    const ctx = sized(cv, ML + PW + MR, H);
    hit.reset();
    const { sx, sy } = frame(ctx, { x: ML, y: MT, w: PW, h: PH }, xr, yr);
    ctx.save(); ctx.beginPath(); ctx.rect(ML, MT, PW, PH); ctx.clip();
    // band: polygon per run of finite lo/hi
    ctx.fillStyle = "rgba(43,108,176,0.22)";
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        ctx.beginPath();
        run.forEach((i, j) => (j ? ctx.lineTo(sx(T.data[i]), sy(get(HI, i))) : ctx.moveTo(sx(T.data[i]), sy(get(HI, i)))));
        for (let j = run.length - 1; j >= 0; j--) ctx.lineTo(sx(T.data[run[j]]), sy(get(LO, run[j])));
        ctx.fill();
      }
      run = [];
    };
    for (let i = 0; i < R; i++) (Number.isFinite(get(LO, i)) && Number.isFinite(get(HI, i)) && Number.isFinite(T.data[i]) ? run.push(i) : flush());
    flush();
    ctx.setLineDash([5, 4]); line(ctx, [xr[0], xr[1]], (i) => xr[i], sx, sy, yr, "#888", 1.2); ctx.setLineDash([]);
    line(ctx, T.data, (i) => get(M, i), sx, sy, yr, "#2b6cb0", 2);
    ctx.fillStyle = "#2b6cb0";
    for (let i = 0; i < R; i++) if (Number.isFinite(get(M, i)) && Number.isFinite(T.data[i])) { ctx.beginPath(); ctx.arc(sx(T.data[i]), sy(get(M, i)), 2.5, 0, 7); ctx.fill(); }
    ctx.restore();
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.fillText(model.get("x_label") || "target return", ML + PW / 2, MT + PH + 15);
    ctx.save(); ctx.translate(11, MT + PH / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle";
    ctx.fillText(model.get("y_label") || "achieved return", 0, 0); ctx.restore();
    // hover columns for the line plot
    const xs = Array.from(T.data, (t) => sx(t));
    const order = [...Array(R).keys()].filter((i) => Number.isFinite(xs[i])).sort((a, b) => xs[a] - xs[b]);
    let minGap = PW;
    for (let j = 1; j < order.length; j++) minGap = Math.min(minGap, xs[order[j]] - xs[order[j - 1]] || minGap);
    order.forEach((i, j) => {
      const left = j ? (xs[order[j - 1]] + xs[i]) / 2 : ML, right = j < order.length - 1 ? (xs[i] + xs[order[j + 1]]) / 2 : ML + PW;
      const counts = () => (K ? names.map((n, k) => `${n}: ${fmt(OC.data[i * K + k], 3)}`) : []);
      const lines = () => [`target: ${fmt(T.data[i], 4)}`, `mean: ${fmt(get(M, i), 4)}`, `band: [${fmt(get(LO, i), 4)}, ${fmt(get(HI, i), 4)}]`, ...counts()];
      hit.add(left, MT, right - left, PH, lines);
      if (!K) return;
      // stacked outcome fractions
      const by = MT + PH + GAP, bw = Math.max(2, Math.min(40, minGap * 0.8));
      let tot = 0;
      for (let k = 0; k < K; k++) { const c = OC.data[i * K + k]; if (Number.isFinite(c) && c > 0) tot += c; }
      let acc = 0;
      for (let k = 0; k < K && tot > 0; k++) {
        const c = OC.data[i * K + k];
        if (!(Number.isFinite(c) && c > 0)) continue;
        const hh = (c / tot) * BH;
        ctx.fillStyle = oc(k); ctx.fillRect(xs[i] - bw / 2, by + BH - acc - hh, bw, hh);
        acc += hh;
      }
      if (tot === 0) { ctx.fillStyle = "#bbb"; ctx.fillRect(xs[i] - bw / 2, by + BH - 1, bw, 1); }
      hit.add(left, by, right - left, BH, lines);
    });
    if (K) {
      const by = MT + PH + GAP;
      ctx.strokeStyle = "#999"; ctx.strokeRect(ML + 0.5, by + 0.5, PW - 1, BH - 1);
      ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText("100%", ML - 4, by + 4); ctx.fillText("0%", ML - 4, by + BH - 4);
      ctx.textAlign = "left"; ctx.fillText("outcomes", ML + 3, by - 8);
    }
  }
  cv.addEventListener("mouseleave", () => tip.hide());
  return { draw, traits: ["targets", "mean", "lo", "hi", "outcome_counts", "outcome_names", "title", "x_label", "y_label"] };
});
