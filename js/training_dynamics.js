// TrainingDynamics: every checkpoint's data shipped once; a step slider scrubs client-side (no kernel
// message) across small line charts of every metric (jumps marked in red) and redraws the selected
// checkpoint's calibration curve, attribution bars and probe matrix.
// Traits: steps [K], metrics [M, K], metric_names [M], metric_groups [M], jumps [J, 2] (metric, index),
// calib_rtgs [R], calib_mean / calib_lo / calib_hi [K, R], attribution [K, N], attribution_labels [N],
// attribution_title, probe_selectivity [K, C, S], probe_metrics [K, P, C, S], probe_metric_names [P],
// concepts [C], sites [S], index (initial checkpoint; Python may move it), title.
import { widget } from "./lib/widget.js";
import { decode, finiteRange, absMax } from "./lib/arrays.js";
import { h, nth, fmt, label } from "./lib/dom.js";
import { sized, pos, fitText } from "./lib/canvas.js";
import { pal, diverging, css } from "./lib/colors.js";
import { padRange, frame, line } from "./lib/plot.js";
import { hits } from "./lib/hits.js";
import { drawProbeGrid, metricLines } from "./probe_grid.js";

const PW = 200, PH = 64, ML = 40, MT = 4, MB = 14, MR = 6;

export default widget("dtw-dynamics", ({ model, body, tip, noData }) => {
  const title = h("div", { class: "dtw-title" });
  const slider = /** @type {HTMLInputElement} */ (h("input", { type: "range", min: "0", max: "0", step: "1", value: "0", class: "dtw-slider" }));
  const readout = h("span", { class: "dtw-readout dtw-step" });
  const jumpNote = h("div", { class: "dtw-note" });
  const charts = h("div", { class: "dtw-panels" });
  // each detail canvas carries its selected checkpoint's values as text (role img + aria-label) for screen readers
  const calCv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-calib", role: "img" }));
  const attCv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-bars", role: "img" }));
  const prbCv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-heat", role: "img" }));
  const describe = (cv, head, items) => cv.setAttribute("aria-label", `${head} at step ${fmt(stepAt(idx))}: ${items.join("; ")}`);
  const attTitle = h("div", { class: "dtw-ptitle" });
  const detail = h("div", { class: "dtw-panels" }, [
    h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: "calibration (RTG asked vs return)" }), calCv]),
    h("div", { class: "dtw-panel" }, [attTitle, attCv]),
    h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: "probe selectivity (concept x site)" }), prbCv])]);
  body.append(title, h("div", { class: "dtw-controls" }, [h("span", { text: "checkpoint" }), slider, readout]), jumpNote, charts, detail);
  const calHit = hits(calCv, tip), attHit = hits(attCv, tip);
  let D = null, idx = 0, views = [], pg = { cs: 10, ox: 0, oy: 0 };

  const arr = (n) => decode(model.get(n));
  function load() {
    const steps = arr("steps"), K = steps.size;
    if (!K) return null;
    const M = arr("metrics"), J = arr("jumps"), CR = arr("calib_rtgs"), A = arr("attribution"), PS = arr("probe_selectivity");
    return { steps, K, M, nM: M.size ? M.shape[0] : 0, J, CR, CM: arr("calib_mean"), CL: arr("calib_lo"), CH: arr("calib_hi"),
      A, nA: A.size ? A.shape[1] : 0, PS, PM: arr("probe_metrics"), nC: PS.size ? PS.shape[1] : 0, nS: PS.size ? PS.shape[2] : 0 };
  }
  const mv = (m, k) => D.M.data[m * D.K + k];
  const stepAt = (k) => D.steps.data[k];
  /** x of checkpoint k on the charts: its training step (steps increasing), else its index */
  const xOf = (k) => (D.bySteps ? stepAt(k) : k);
  /** checkpoint whose x is nearest the pointer at CSS x `px` (-1 outside the plot) */
  const nearest = (px, sx) => {
    let best = -1, d = Infinity;
    for (let k = 0; k < D.K; k++) { const e = Math.abs(sx(xOf(k)) - px); if (e < d) { d = e; best = k; } }
    return px >= ML - 4 && px <= ML + PW + 4 ? best : -1;
  };

  function draw() {
    title.textContent = model.get("title") || ""; title.style.display = title.textContent ? "" : "none";
    D = load();
    if (!D) return noData();
    slider.max = String(D.K - 1);
    D.bySteps = D.K > 1 && Array.from(D.steps.data).every((v, k) => Number.isFinite(v) && (k === 0 || v > D.steps.data[k - 1]));
    const xr = D.bySteps ? [stepAt(0), stepAt(D.K - 1)] : [0, Math.max(1, D.K - 1)];
    const names = model.get("metric_names") || [], groups = model.get("metric_groups") || [];
    const jumps = new Map();
    for (let j = 0; j + 1 < D.J.size; j += 2) {
      const m = D.J.data[j], k = D.J.data[j + 1];
      if (!jumps.has(m)) jumps.set(m, []);
      jumps.get(m).push(k);
    }
    views = [];
    const kids = [];
    for (let m = 0; m < D.nM; m++) {
      // a heading per run of metrics from one analysis part (was "held-out accuracy (loss)": read as a unit)
      const group = nth(groups, m, () => "");
      if (group && group !== nth(groups, m - 1, () => "")) {
        kids.push(h("div", { class: "dtw-ptitle dtw-dyn-group", text: `${group} (analysis part)`, title: `metrics computed by the ${group} part`,
          style: { flex: "1 0 100%", textAlign: "left", fontWeight: "600" } }));
      }
      const base = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-line" }));
      const over = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-marker", style: { position: "absolute", left: "0", top: "0" } }));
      const ctx = sized(base, ML + PW + MR, MT + PH + MB);
      const vals = Array.from({ length: D.K }, (_, k) => mv(m, k));
      const yr = padRange(finiteRange(vals));
      const { sx, sy } = frame(ctx, { x: ML, y: MT, w: PW, h: PH }, xr, yr, { xticks: false, ny: 3 });
      ctx.font = "9px sans-serif"; ctx.fillStyle = "#666"; ctx.textBaseline = "top";
      ctx.textAlign = "left"; ctx.fillText(`step ${fmt(stepAt(0))}`, ML, MT + PH + 2);
      ctx.textAlign = "right"; ctx.fillText(`${fmt(stepAt(D.K - 1))}`, ML + PW, MT + PH + 2);
      for (const k of jumps.get(m) || []) {
        ctx.strokeStyle = "#d32f2f"; ctx.setLineDash([3, 2]); ctx.beginPath();
        ctx.moveTo(Math.round(sx(xOf(k))) + 0.5, MT); ctx.lineTo(Math.round(sx(xOf(k))) + 0.5, MT + PH); ctx.stroke(); ctx.setLineDash([]);
      }
      line(ctx, Array.from({ length: D.K }, (_, k) => xOf(k)), (k) => vals[k], sx, sy, yr, pal(m));
      const wrap = h("div", { style: { position: "relative" } }, [base, over]);
      const val = h("span", { class: "dtw-readout" });
      const name = nth(names, m, (i) => `metric ${i}`);
      over.addEventListener("mousemove", (e) => {
        const k = nearest(pos(over, e)[0], sx);
        if (k < 0) return tip.hide();
        tip.show(e, [name, `step ${fmt(stepAt(k))} (checkpoint ${k})`, `value: ${fmt(vals[k], 4)}`, ...((jumps.get(m) || []).includes(k) ? ["jump (phase transition)"] : [])]);
      });
      over.addEventListener("mouseleave", () => tip.hide());
      over.addEventListener("click", (e) => { const k = nearest(pos(over, e)[0], sx); if (k >= 0) setLocal(k); });
      kids.push(h("div", { class: "dtw-panel", "data-metric": name }, [h("div", { class: "dtw-ptitle", style: { textAlign: "left" } }, [label(name, PW + ML)]), wrap, val]));
      views.push({ over, sx, sy, yr, vals, val, m, jumps: jumps.get(m) || [] });
    }
    charts.replaceChildren(...kids);
    const i = model.get("index");
    setLocal(Number.isInteger(i) ? i : 0);
  }

  function setLocal(i) {
    if (!D) return;
    idx = Math.max(0, Math.min(D.K - 1, i | 0));
    if (Number(slider.value) !== idx) slider.value = String(idx);
    readout.textContent = `step ${fmt(stepAt(idx))}   (checkpoint ${idx} of ${D.K - 1})`;
    const names = model.get("metric_names") || [];
    const here = views.filter((v) => v.jumps.includes(idx)).map((v) => nth(names, v.m, (j) => `metric ${j}`));
    jumpNote.textContent = here.length ? `jumps at this checkpoint: ${here.join(", ")}` : "";
    for (const v of views) {
      const ctx = sized(v.over, ML + PW + MR, MT + PH + MB), x = v.sx(xOf(idx));
      ctx.fillStyle = "rgba(0,0,0,0.55)"; ctx.fillRect(Math.round(x) - 0.5, MT, 1, PH);
      const y = v.vals[idx];
      v.val.textContent = fmt(y, 4);
      if (Number.isFinite(y)) { ctx.fillStyle = pal(v.m); ctx.beginPath(); ctx.arc(x, v.sy(Math.max(v.yr[0], Math.min(v.yr[1], y))), 3, 0, 7); ctx.fill(); }
    }
    drawCalibration(); drawAttribution(); drawProbes();
  }

  function drawCalibration() {
    const R = D.CR.size;
    calHit.reset();
    if (!R || D.CM.size !== D.K * R) { sized(calCv, 1, 1); calCv.removeAttribute("aria-label"); return; }
    const W = 260, H = 170, L = 40, T = 6, B = 18;
    const ctx = sized(calCv, W, H);
    const xs = Array.from(D.CR.data), at = (A, r) => A.size === D.K * R ? A.data[idx * R + r] : NaN;
    describe(calCv, "calibration", xs.map((x, r) => `mean return at RTG ${fmt(x, 4)}: ${fmt(at(D.CM, r), 4)}`));
    const all = [...xs, ...Array.from(D.CM.data), ...Array.from(D.CL.data), ...Array.from(D.CH.data)];
    const xr = padRange(finiteRange(xs), 0.05), yr = padRange(finiteRange(all));
    const { sx, sy } = frame(ctx, { x: L, y: T, w: W - L - 6, h: H - T - B }, xr, yr, { nx: 4, ny: 4 });
    ctx.strokeStyle = "#888"; ctx.setLineDash([4, 3]); ctx.beginPath();
    ctx.moveTo(sx(xr[0]), sy(xr[0])); ctx.lineTo(sx(xr[1]), sy(xr[1])); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = "rgba(43,108,176,0.2)"; ctx.beginPath();
    for (let r = 0; r < R; r++) ctx.lineTo(sx(xs[r]), sy(Number.isFinite(at(D.CH, r)) ? at(D.CH, r) : at(D.CM, r)));
    for (let r = R - 1; r >= 0; r--) ctx.lineTo(sx(xs[r]), sy(Number.isFinite(at(D.CL, r)) ? at(D.CL, r) : at(D.CM, r)));
    ctx.fill();
    line(ctx, xs, (r) => at(D.CM, r), sx, sy, yr, "#2b6cb0", 2);
    for (let r = 0; r < R; r++) {
      const v = at(D.CM, r);
      if (!Number.isFinite(v)) continue;
      ctx.fillStyle = "#2b6cb0"; ctx.beginPath(); ctx.arc(sx(xs[r]), sy(v), 3, 0, 7); ctx.fill();
      calHit.add(sx(xs[r]) - 6, sy(v) - 6, 12, 12, () => [`RTG asked ${fmt(xs[r], 3)}`, `mean return ${fmt(v, 4)}`, `band ${fmt(at(D.CL, r), 3)} … ${fmt(at(D.CH, r), 3)}`]);
    }
  }

  function drawAttribution() {
    const N = D.nA, labs = model.get("attribution_labels") || [];
    attTitle.textContent = model.get("attribution_title") || "direct logit attribution";
    attHit.reset();
    if (!N || D.A.size !== D.K * N) { sized(attCv, 1, 1); attCv.removeAttribute("aria-label"); return; }
    describe(attCv, "attribution", Array.from({ length: N }, (_, n) => `${nth(labs, n, (i) => `#${i}`)}: ${fmt(D.A.data[idx * N + n], 4)}`));
    const LW = 120, BW = 200, RH = 13, top = 4;
    const ctx = sized(attCv, LW + BW + 50, top + N * RH + 4);
    const m = absMax(D.A.data) || 1, mid = LW + BW / 2;
    ctx.font = "10px sans-serif"; ctx.textBaseline = "middle";
    for (let n = 0; n < N; n++) {
      const v = D.A.data[idx * N + n], y = top + n * RH, lab = nth(labs, n, (i) => `#${i}`);
      ctx.fillStyle = "#222"; ctx.textAlign = "right"; ctx.fillText(fitText(ctx, lab, LW - 6), LW - 4, y + RH / 2);
      if (Number.isFinite(v)) {
        const w = (v / m) * (BW / 2 - 2);
        ctx.fillStyle = css(diverging(v >= 0 ? 0.85 : -0.85, 1)); ctx.fillRect(Math.min(mid, mid + w), y + 1, Math.max(1, Math.abs(w)), RH - 2);
      }
      ctx.fillStyle = "#444"; ctx.textAlign = "left"; ctx.fillText(fmt(v, 3), LW + BW + 4, y + RH / 2);
      attHit.add(0, y, LW + BW + 50, RH, () => [lab, `value: ${fmt(v, 4)}`, `step ${fmt(stepAt(idx))}`]);
    }
    ctx.fillStyle = "#555"; ctx.fillRect(mid - 0.5, top, 1, N * RH);
  }

  function drawProbes() {
    const C = D.nC, S = D.nS;
    if (!C || !S) { sized(prbCv, 1, 1); prbCv.removeAttribute("aria-label"); return; }
    const off = idx * C * S, cn = model.get("concepts"), sn = model.get("sites");
    describe(prbCv, "probe selectivity", Array.from({ length: C * S }, (_, j) =>
      `${nth(cn, Math.floor(j / S), (i) => `concept ${i}`)} @ ${nth(sn, j % S, (i) => `site ${i}`)}: ${fmt(D.PS.data[off + j], 4)}`));
    pg = drawProbeGrid(prbCv, { R: C, C: S, sel: (r, c) => D.PS.data[off + r * S + c],
      rowLabel: (r) => nth(model.get("concepts"), r, (i) => `concept ${i}`), colLabel: (c) => nth(model.get("sites"), c, (i) => `site ${i}`),
      vmax: Math.max(1e-6, absMax(D.PS.data)) });
  }
  prbCv.addEventListener("mousemove", (e) => {
    if (!D || !D.nC) return;
    const [px, py] = pos(prbCv, e), c = Math.floor((px - pg.ox) / pg.cs), r = Math.floor((py - pg.oy) / pg.cs);
    if (r < 0 || c < 0 || r >= D.nC || c >= D.nS) return tip.hide();
    const P = (model.get("probe_metric_names") || []).map(String), C = D.nC, S = D.nS;
    const get = (m) => (D.PM.size === D.K * P.length * C * S ? D.PM.data[((idx * P.length + m) * C + r) * S + c] : NaN);
    tip.show(e, metricLines(nth(model.get("concepts"), r, String), nth(model.get("sites"), c, String), P, get));
  });
  prbCv.addEventListener("mouseleave", () => tip.hide());
  slider.addEventListener("input", () => setLocal(Number(slider.value)));
  const onIndex = () => { const i = model.get("index"); if (Number.isInteger(i) && i !== idx) setLocal(i); };
  model.on("change:index", onIndex);
  return {
    draw, dispose() { model.off("change:index", onIndex); },
    traits: ["steps", "metrics", "metric_names", "metric_groups", "jumps", "calib_rtgs", "calib_mean", "calib_lo", "calib_hi",
      "attribution", "attribution_labels", "attribution_title", "probe_selectivity", "probe_metrics", "probe_metric_names",
      "concepts", "sites", "title"],
  };
});
