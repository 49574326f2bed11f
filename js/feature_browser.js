// FeatureBrowser: an SAE's features as a sortable, filterable list with activation sparklines, and a
// feature card (activation histogram, decoder direction read by the action head as action bars,
// top-activating and quantile example states drawn as MiniGrid views, encoder direction pulled back
// onto the observation as channel heatmaps). All data is in the widget, so clicking works offline too.
// Traits (F features, A actions, E example slots, B histogram bins, C channels):
//   feature_ids int32 [F]; frequency, max_act, mean_act, rtg_corr, time_corr float32 [F];
//   hist float32 [F, B] (bins over [0, max_act]); action_bars float32 [F, A]; action_names [A];
//   pair [a, b] (effect column = bar[a] - bar[b]); examples_obs uint8 [F, E, W, H, 3];
//   examples_meta float32 [F, E, 5] (activation, rtg, step, action, episode; activation < 0 = empty slot);
//   example_labels [E]; write_maps float32 [F, C, W, H] (may be empty); channel_names [C];
//   selected int (-1 = none, index into the F rows), sort_by, sort_desc, min_frequency, query, title.
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { h, fmt, push, select, setOptions, debounce } from "./lib/dom.js";
import { sized } from "./lib/canvas.js";
import { diverging } from "./lib/colors.js";
import { tile, agent, BG_SEEN, BG_UNSEEN } from "./lib/minigrid.js";
import { heat } from "./lib/heat.js";

const COLS = [["index", "feature"], ["frequency", "freq"], ["max_act", "max"], ["effect", "effect"],
  ["rtg_corr", "RTG r"], ["time_corr", "time r"]];
const MAX_ROWS = 300;

export default widget("dtw-featurebrowser", ({ model, root, body, tip, noData }) => {
  const title = h("div", { class: "dtw-ptitle" });
  const sortSel = select(COLS.map((c) => c[1]), 1, (i) => push(model, "sort_by", COLS[i][0]));
  const desc = h("input", { type: "checkbox", title: "descending" });
  desc.addEventListener("change", () => push(model, "sort_desc", desc.checked));
  const minF = h("input", { type: "number", step: "any", min: "0", max: "1", style: { width: "64px" }, title: "minimum firing frequency" });
  minF.addEventListener("change", () => push(model, "min_frequency", Math.max(0, parseFloat(minF.value) || 0)));
  const query = h("input", { type: "text", placeholder: "feature ids, e.g. 3 17", style: { width: "120px" } });
  // the filter applies while typing (debounced), on Enter and on blur
  const typed = debounce(() => push(model, "query", query.value), 150);
  const applyQuery = () => { typed.cancel(); if (query.value !== String(model.get("query") || "")) push(model, "query", query.value); };
  query.addEventListener("input", typed);
  query.addEventListener("change", applyQuery);
  query.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.stopPropagation(); applyQuery(); } });
  const pairA = select([], 0, (v) => push(model, "pair", [v, model.get("pair")[1]]));
  const pairB = select([], 1, (v) => push(model, "pair", [model.get("pair")[0], v]));
  const controls = h("div", { class: "dtw-controls" }, [h("span", { text: "sort" }), sortSel, desc, h("span", { text: "desc" }),
    h("span", { text: "min freq" }), minF, query, h("span", { text: "effect on" }), pairA, h("span", { text: "−" }), pairB]);
  const count = h("div", { class: "dtw-note" });
  const header = h("div", { class: "dtw-fb-row dtw-fb-head", style: rowStyle(true) },
    COLS.map((c) => h("span", { text: c[1], style: cellStyle(c[0]) })).concat([h("span", { text: "activations", style: { width: "80px" } })]));
  const list = h("div", { class: "dtw-fb-list", style: { maxHeight: "420px", overflowY: "auto", border: "1px solid #ddd" } });
  // the card takes the width the list leaves (it wraps below the list when less than 360 px is left)
  const card = h("div", { class: "dtw-fb-card", style: { flex: "1 1 360px", minWidth: "360px" } });
  const left = h("div", { style: { flex: "0 0 auto" } }, [controls, count, header, list]);
  body.style.width = "100%";
  root.style.display = "block";
  body.append(title, h("div", { style: { display: "flex", gap: "12px", alignItems: "flex-start", flexWrap: "wrap" } }, [left, card]));
  /** Row elements of the drawn list by row index, the inputs they were drawn from, and the rows shown. */
  let rowEls = new Map(), listKey = "", shown = [], dataVersion = 0;
  const DATA = ["feature_ids", "frequency", "max_act", "mean_act", "rtg_corr", "time_corr", "hist", "action_bars"];
  for (const t of DATA) model.on("change:" + t, () => { dataVersion++; });

  let D = null;
  const read = () => {
    const g = (n) => decode(model.get(n));
    const ids = g("feature_ids");
    const F = ids.size;
    D = { F, ids: ids.data, freq: g("frequency").data, max: g("max_act").data, mean: g("mean_act").data,
      rtg: g("rtg_corr").data, time: g("time_corr").data, hist: g("hist"), bars: g("action_bars"),
      obs: g("examples_obs"), meta: g("examples_meta"), maps: g("write_maps") };
    D.A = D.bars.shape[1] || 0; D.B = D.hist.shape[1] || 0;
  };
  const effect = (i) => {
    const [a, b] = model.get("pair") || [0, 1];
    if (!(a >= 0 && b >= 0 && a < D.A && b < D.A)) return NaN;
    return D.bars.data[i * D.A + a] - D.bars.data[i * D.A + b];
  };
  const key = (i, k) => ({ index: D.ids[i], frequency: D.freq[i], max_act: D.max[i], effect: effect(i),
    rtg_corr: D.rtg[i], time_corr: D.time[i] })[k];

  function order() {
    const k = model.get("sort_by") || "frequency", d = model.get("sort_desc") ? -1 : 1;
    const minFreq = model.get("min_frequency") || 0;
    const want = String(model.get("query") || "").split(/[\s,]+/).filter((s) => s !== "").map(Number).filter(Number.isFinite);
    const rows = [];
    for (let i = 0; i < D.F; i++) {
      if (D.freq[i] < minFreq) continue;
      if (want.length && !want.includes(D.ids[i])) continue;
      rows.push(i);
    }
    const v = (i) => { const x = key(i, k); return k.endsWith("corr") || k === "effect" ? Math.abs(x) : x; };
    rows.sort((p, q) => (v(p) - v(q)) * d || p - q);
    return rows;
  }

  function sparkline(i) {
    const cv = h("canvas", { class: "dtw-fb-spark" });
    const ctx = sized(cv, 80, 16), B = D.B;
    let m = 0;
    for (let j = 0; j < B; j++) m = Math.max(m, Math.log1p(D.hist.data[i * B + j]));
    ctx.fillStyle = "#4e79a7";
    for (let j = 0; j < B && m > 0; j++) {
      const hh = (Math.log1p(D.hist.data[i * B + j]) / m) * 15;
      ctx.fillRect((j * 80) / B, 16 - hh, Math.max(1, 80 / B - 0.5), hh);
    }
    return cv;
  }

  /** Rebuild the rows only when what they show changed; a selection change only moves the highlight. */
  function drawList() {
    const sel = model.get("selected");
    const k = JSON.stringify([dataVersion, model.get("sort_by"), model.get("sort_desc"), model.get("min_frequency"),
      model.get("query"), model.get("pair")]);
    if (k !== listKey) {
      listKey = k;
      shown = order();
      count.textContent = `${shown.length} of ${D.F} features` + (shown.length > MAX_ROWS ? ` (first ${MAX_ROWS} shown)` : "");
      rowEls = new Map(shown.slice(0, MAX_ROWS).map((i) => [i, row(i)]));
      list.replaceChildren(...rowEls.values());
    }
    for (const [i, r] of rowEls) {
      r.classList.toggle("dtw-fb-sel", i === sel);
      r.style.background = i === sel ? SEL_BG : "";
    }
  }

  function row(i) {
    const vals = [String(D.ids[i]), pct(D.freq[i]), fmt(D.max[i], 2), signed(effect(i)), signed(D.rtg[i]), signed(D.time[i])];
    const r = h("div", { class: "dtw-fb-row", "data-feature": D.ids[i], "data-row": i, style: rowStyle(false),
      onclick: () => push(model, "selected", i) }, COLS.map((c, j) => h("span", { text: vals[j], style: cellStyle(c[0]) })));
    r.appendChild(sparkline(i));
    return r;
  }

  function drawCard() {
    const i = model.get("selected");
    if (!shown.length || (i >= 0 && i < D.F && !shown.includes(i))) {  // no card for a feature the filter hides
      card.replaceChildren(h("div", { class: "dtw-note", text: "no feature matches the filter" }));
      card.removeAttribute("data-feature");
      return;
    }
    if (!(i >= 0 && i < D.F)) {
      card.replaceChildren(h("div", { class: "dtw-note", text: "click a feature to open its card" }));
      card.removeAttribute("data-feature");
      return;
    }
    card.setAttribute("data-feature", String(D.ids[i]));
    const names = model.get("action_names") || [];
    const head = h("div", { class: "dtw-ptitle", text: `feature ${D.ids[i]}` });
    const stats = h("div", { class: "dtw-note", text: `fires on ${pct(D.freq[i])} of states · max ${fmt(D.max[i], 3)} · mean when active ${fmt(D.mean[i], 3)} · corr. with RTG ${signed(D.rtg[i])} · with time ${signed(D.time[i])}` });
    card.replaceChildren(head, stats, section("activation histogram (non-zero activations)", histogram(i)),
      section("decoder direction read by the action head (logit per unit activation)", bars(i, names)),
      section("example states: top activations, then activation quantiles", examples(i, names)));
    if (D.maps.size && D.maps.shape[0] === D.F) card.appendChild(section("what writes it: encoder direction through the state embedding (per unit input)", maps(i)));
  }

  function histogram(i) {
    const cv = h("canvas", { class: "dtw-fb-hist" }), W = 320, H = 90, B = D.B;
    const ctx = sized(cv, W, H);
    let m = 0;
    for (let j = 0; j < B; j++) m = Math.max(m, D.hist.data[i * B + j]);
    ctx.fillStyle = "#4e79a7";
    for (let j = 0; j < B && m > 0; j++) {
      const hh = (D.hist.data[i * B + j] / m) * (H - 16);
      ctx.fillRect(4 + (j * (W - 8)) / B, H - 14 - hh, Math.max(1, (W - 8) / B - 1), hh);
    }
    ctx.fillStyle = "#333"; ctx.font = "10px sans-serif"; ctx.textBaseline = "bottom";
    ctx.textAlign = "left"; ctx.fillText("0", 4, H); ctx.textAlign = "right"; ctx.fillText(fmt(D.max[i], 3), W - 4, H);
    cv.addEventListener("mousemove", (e) => {
      const r = cv.getBoundingClientRect(), j = Math.floor(((e.clientX - r.left - 4) / (r.width - 8)) * B);
      if (j < 0 || j >= B) return tip.hide();
      tip.show(e, [`activation ${fmt((j * D.max[i]) / B, 3)} – ${fmt(((j + 1) * D.max[i]) / B, 3)}`, `${D.hist.data[i * B + j]} states`]);
    });
    cv.addEventListener("mouseleave", () => tip.hide());
    return cv;
  }

  function bars(i, names) {
    const A = D.A, rowH = 16, W = 320, cv = h("canvas", { class: "dtw-fb-bars" });
    const ctx = sized(cv, W, A * rowH + 4);
    let m = 0;
    for (let a = 0; a < A; a++) m = Math.max(m, Math.abs(D.bars.data[i * A + a]));
    const x0 = 90, half = (W - x0 - 50) / 2, mid = x0 + half;
    ctx.font = "11px sans-serif"; ctx.textBaseline = "middle";
    for (let a = 0; a < A; a++) {
      const v = D.bars.data[i * A + a], y = 2 + a * rowH, w = m > 0 ? (v / m) * half : 0;
      ctx.fillStyle = "#333"; ctx.textAlign = "right"; ctx.fillText(String(names[a] ?? a), x0 - 6, y + rowH / 2);
      ctx.fillStyle = v >= 0 ? "#b2182b" : "#2166ac";
      ctx.fillRect(Math.min(mid, mid + w), y + 2, Math.abs(w), rowH - 4);
      ctx.fillStyle = "#333"; ctx.textAlign = "left"; ctx.fillText(fmt(v, 3), W - 46, y + rowH / 2);
    }
    ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(mid + 0.5, 0); ctx.lineTo(mid + 0.5, A * rowH + 4); ctx.stroke();
    return cv;
  }

  function examples(i, names) {
    const E = D.meta.shape[1] || 0, labels = model.get("example_labels") || [];
    // thumbnails fill the card's width (at least 80 px each), drawn at 16 px a cell and scaled by CSS
    const wrap = h("div", { class: "dtw-fb-examples", style: { display: "grid", gap: "6px",
      gridTemplateColumns: "repeat(auto-fit, minmax(80px, 1fr))", maxWidth: `${E * 176}px` } });
    const [, , GW, GH] = D.obs.shape, view = model.get("examples_view") || "egocentric";
    const picture = view !== "none" && GW > 0 && GH > 0;
    for (let e = 0; e < E; e++) {
      const m = (j) => D.meta.data[(i * E + e) * 5 + j];
      if (!(m(0) >= 0)) continue;
      const cv = h("canvas", { class: "dtw-fb-thumb", "data-slot": e, "data-view": view });
      const off = (i * E + e) * GW * GH * 3;
      if (view === "pixels") drawPixels(cv, D.obs.data, off, GW, GH);
      else if (picture) drawObs(cv, D.obs.data, off, GW, GH, 16, view === "egocentric");
      // pixels are [rows, columns]: the aspect ratio is columns / rows
      const ratio = view === "pixels" ? `${GH} / ${GW}` : `${GW} / ${GH}`;
      if (picture) Object.assign(cv.style, { width: "100%", height: "auto", aspectRatio: ratio });
      else cv.style.display = "none";
      const act = names[m(3)] ?? String(m(3));
      const cap = h("div", { class: "dtw-note", style: { fontSize: "10px", lineHeight: "12px" } }, [
        h("div", { text: `${labels[e] ?? ""} · a=${fmt(m(0), 3)}` }), h("div", { text: `RTG ${fmt(m(1), 2)} · t ${m(2)}` }),
        h("div", { text: `ep ${m(4)} · ${act}` })]);
      wrap.appendChild(h("div", { class: "dtw-fb-example", style: { minWidth: "0" } }, [cv, cap]));
    }
    if (!wrap.childNodes.length) wrap.appendChild(h("div", { class: "dtw-note", text: "this feature never fires on the stored states" }));
    return wrap;
  }

  function maps(i) {
    const [, C, W, H] = D.maps.shape, cs = 9, names = model.get("channel_names") || [];
    const wrap = h("div", { style: { display: "flex", flexWrap: "wrap", gap: "6px" } });
    const off = i * C * W * H;
    let vmax = 0;
    for (let j = 0; j < C * W * H; j++) vmax = Math.max(vmax, Math.abs(D.maps.data[off + j]));
    for (let c = 0; c < C; c++) {
      const cv = h("canvas", { class: "dtw-fb-map", "data-channel": c });
      const ctx = sized(cv, W * cs, H * cs);
      heat(ctx, (x, y) => D.maps.data[off + (c * W + x) * H + y], W, H, cs, (v) => diverging(v, vmax || 1));
      cv.addEventListener("mousemove", (e) => {
        const r = cv.getBoundingClientRect(), x = Math.floor(((e.clientX - r.left) / r.width) * W), y = Math.floor(((e.clientY - r.top) / r.height) * H);
        if (x < 0 || y < 0 || x >= W || y >= H) return tip.hide();
        tip.show(e, [String(names[c] ?? c), `x=${x}, y=${y}`, `value ${fmt(D.maps.data[off + (c * W + x) * H + y], 4)}`]);
      });
      cv.addEventListener("mouseleave", () => tip.hide());
      wrap.appendChild(h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: String(names[c] ?? c), style: { fontSize: "10px" } }), cv]));
    }
    return wrap;
  }

  function draw() {
    read();
    if (!D.F) return noData("no features");
    title.textContent = model.get("title") || "";
    const k = model.get("sort_by") || "frequency";
    sortSel.value = String(Math.max(0, COLS.findIndex((c) => c[0] === k)));
    desc.checked = !!model.get("sort_desc");
    if (document.activeElement !== minF) minF.value = String(model.get("min_frequency") || 0);
    if (document.activeElement !== query) query.value = String(model.get("query") || "");
    const names = (model.get("action_names") || []).map(String), [a, b] = model.get("pair") || [0, 1];
    setOptions(pairA, names, a); setOptions(pairB, names, b);
    drawList();
    const sel = model.get("selected");
    // a filter that removes the open feature opens the first remaining one (the list and Python agree)
    if (sel >= 0 && sel < D.F && shown.length && !shown.includes(sel)) return push(model, "selected", shown[0]);
    drawCard();
  }
  return { draw, traits: ["feature_ids", "frequency", "max_act", "mean_act", "rtg_corr", "time_corr", "hist", "action_bars",
    "action_names", "pair", "examples_obs", "examples_view", "examples_meta", "example_labels", "write_maps", "channel_names", "selected",
    "sort_by", "sort_desc", "min_frequency", "query", "title"] };
});

/** Draw a grid observation [W, H, 3] of MiniGrid codes; an egocentric view gets its agent at the
 * bottom centre, facing up (a full grid holds its agent as a cell). */
function drawObs(cv, data, off, W, H, cs, egocentric) {
  const ctx = sized(cv, W * cs, H * cs);
  for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) {
    const j = off + (x * H + y) * 3, o = data[j];
    ctx.fillStyle = o === 0 ? BG_UNSEEN : BG_SEEN;
    ctx.fillRect(x * cs, y * cs, cs, cs);
    tile(ctx, x * cs, y * cs, cs, o, data[j + 1], data[j + 2]);
  }
  if (egocentric) agent(ctx, Math.floor(W / 2) * cs, (H - 1) * cs, cs, 3);
  ctx.strokeStyle = "#555"; ctx.lineWidth = 0.5;
  for (let k = 0; k <= W; k++) { ctx.beginPath(); ctx.moveTo(k * cs, 0); ctx.lineTo(k * cs, H * cs); ctx.stroke(); }
  for (let k = 0; k <= H; k++) { ctx.beginPath(); ctx.moveTo(0, k * cs); ctx.lineTo(W * cs, k * cs); ctx.stroke(); }
}

/** Draw an RGB image [rows, columns, 3] at its own resolution (CSS scales it). */
function drawPixels(cv, data, off, rows, cols) {
  cv.width = cols; cv.height = rows;  // putImageData ignores the device-pixel transform: one canvas pixel per image pixel
  const ctx = /** @type {CanvasRenderingContext2D} */ (cv.getContext("2d")), img = ctx.createImageData(cols, rows);
  for (let k = 0; k < rows * cols; k++) {
    img.data[4 * k] = data[off + 3 * k]; img.data[4 * k + 1] = data[off + 3 * k + 1];
    img.data[4 * k + 2] = data[off + 3 * k + 2]; img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  cv.style.imageRendering = "pixelated";
}

const SEL_BG = "#ffe9a8";
const pct = (v) => (v >= 0.001 || v === 0 ? `${(v * 100).toFixed(1)}%` : `${(v * 100).toExponential(0)}%`);
const signed = (v) => (Number.isFinite(v) ? (v >= 0 ? "+" : "") + v.toFixed(2) : "—");
function rowStyle(head, sel = false) {
  return { display: "flex", alignItems: "center", gap: "4px", padding: "1px 4px", cursor: head ? "default" : "pointer",
    fontSize: "11px", fontWeight: head ? "bold" : "normal", background: sel ? SEL_BG : "", borderBottom: "1px solid #eee" };
}
function cellStyle(k) { return { width: k === "index" ? "52px" : "48px", textAlign: "right", fontVariantNumeric: "tabular-nums" }; }
function section(text, el) { return h("div", { style: { marginTop: "6px" } }, [h("div", { class: "dtw-ptitle", text }), el]); }
