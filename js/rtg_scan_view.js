// RTGScanView: quantities as a function of the return-to-go, one panel per series group,
// with a slider that scrubs client-side (marker + readout update without the kernel);
// `index` is pushed to Python debounced by 150 ms.
// Traits: rtgs float32 [R], series float32 [S, R], series_names [S], series_groups [S], index, title,
// steps [T] (optional: series names are templates whose "{k}" shows the episode step of token k, lib/steps.js).
import { widget } from "./lib/widget.js";
import { decode, finiteRange } from "./lib/arrays.js";
import { h, nth, fmt, push, debounce, label } from "./lib/dom.js";
import { sized, pos } from "./lib/canvas.js";
import { pal, PALETTE } from "./lib/colors.js";
import { padRange, frame, line } from "./lib/plot.js";
import { subscribe } from "./lib/follow.js";
import { stepFiller } from "./lib/steps.js";

const ML = 48, PW_MAX = 440, MR = 10, MT = 6, PH = 110, MB = 18;
// series k of a panel: palette colour k % 10, solid for the first ten, then dashed, then dotted
const DASHES = [[], [6, 3], [1.5, 2.5]];
const look = (k) => ({ colour: pal(k), dash: DASHES[Math.floor(k / PALETTE.length) % DASHES.length] });
/** Legend swatch of series k: its colour, striped like its dash. */
const swatch = (k) => {
  const { colour, dash } = look(k);
  const bg = dash.length ? `repeating-linear-gradient(90deg, ${colour} 0 ${dash[0]}px, transparent ${dash[0]}px ${dash[0] + dash[1]}px)` : colour;
  return h("span", { class: "dtw-sw", "data-dash": dash.join(","), style: { background: bg } });
};

export default widget("dtw-rtgscan", ({ model, body, tip, noData, avail }) => {
  const title = h("div", { class: "dtw-title" });
  const slider = /** @type {HTMLInputElement} */ (h("input", { type: "range", min: "0", max: "0", step: "1", value: "0", class: "dtw-slider" }));
  const readout = h("span", { class: "dtw-readout" });
  const panels = h("div", { class: "dtw-panels" });  // plots flow side by side when the column is wide
  body.append(title, h("div", { class: "dtw-controls" }, [h("span", { text: "RTG" }), slider, readout]), panels);
  let X = null, Y = null, S = 0, R = 0, idx = 0, PW = PW_MAX;
  /** @type {{over: HTMLCanvasElement, sx: any, sy: any, yr: number[], members: number[], vals: HTMLElement[]}[]} */
  let views = [];
  const sync = debounce((i) => { if (model.get("index") !== i) push(model, "index", i); }, 150);
  const y = (s, i) => Y.data[s * R + i];

  function setLocal(i) {
    if (!X) return;
    idx = Math.max(0, Math.min(R - 1, i | 0));
    if (Number(slider.value) !== idx) slider.value = String(idx);
    readout.textContent = `= ${fmt(X.data[idx], 4)}   (index ${idx} of ${R - 1})`;
    for (const v of views) {
      const ctx = sized(v.over, ML + PW + MR, MT + PH + MB), x = v.sx(X.data[idx]);
      if (!Number.isFinite(x)) continue;
      ctx.fillStyle = "rgba(0,0,0,0.55)"; ctx.fillRect(Math.round(x) - 0.5, MT, 1, PH);
      v.members.forEach((s, k) => {
        const val = y(s, idx);
        v.vals[k].textContent = fmt(val, 4);
        if (!Number.isFinite(val)) return;
        ctx.fillStyle = look(k).colour; ctx.beginPath(); ctx.arc(x, v.sy(Math.max(v.yr[0], Math.min(v.yr[1], val))), 3.5, 0, 7); ctx.fill();
      });
    }
  }

  function draw() {
    const fill = stepFiller(model), name = (s) => fill(nth(model.get("series_names"), s, (i) => `series ${i}`));
    title.textContent = model.get("title") || ""; title.title = title.textContent;
    title.style.display = title.textContent ? "" : "none";
    X = decode(model.get("rtgs")); Y = decode(model.get("series"));
    if (X.size === 0) { X = null; return noData(); }
    R = X.size;
    if (Y.size && Y.shape.length === 1) Y = { ...Y, shape: [1, Y.shape[0]] };
    S = Y.size && Y.shape.length === 2 && Y.shape[1] === R ? Y.shape[0] : 0;
    if (Y.size && !S) { X = null; return noData(`series must be [S, ${R}], got [${Y.shape.join(", ")}]`); }
    slider.max = String(Math.max(0, R - 1));
    PW = Math.max(120, avail(ML + PW_MAX + MR) - ML - MR - 4);
    const xr = padRange(finiteRange(X.data), 0.02);
    const groups = new Map();
    for (let s = 0; s < S; s++) {
      const g = nth(model.get("series_groups"), s, () => "series");
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(s);
    }
    if (!S) groups.set("(no series)", []);
    views = [];
    const kids = [];
    for (const [g, members] of groups) {
      const base = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-line" }));
      const over = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-marker", style: { position: "absolute", left: "0", top: "0" } }));
      const ctx = sized(base, ML + PW + MR, MT + PH + MB);
      let lo = Infinity, hi = -Infinity;
      for (const s of members) for (let i = 0; i < R; i++) { const v = y(s, i); if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
      // probabilities / attention weights: a fixed [0, 1] axis; signed quantities: a symmetric one
      const m = Math.max(Math.abs(lo), Math.abs(hi));
      const yr = lo >= 0 && hi <= 1 && /prob|attention/i.test(g) ? [0, 1] : lo <= hi ? padRange([-m, m], 0.04) : padRange(null);
      const { sx, sy } = frame(ctx, { x: ML, y: MT, w: PW, h: PH }, xr, yr);
      members.forEach((s, k) => { ctx.setLineDash(look(k).dash); line(ctx, X.data, (i) => y(s, i), sx, sy, yr, look(k).colour); });
      ctx.setLineDash([]);
      const vals = members.map(() => h("span", { class: "dtw-readout" }));
      const legend = h("div", { class: "dtw-legend" }, members.map((s, k) =>
        h("span", {}, [swatch(k), label(name(s), 180), h("span", { text: " " }), vals[k]])));
      const wrap = h("div", { style: { position: "relative" } }, [base, over]);
      const onMove = (e) => {
        const [px] = pos(over, e), i = nearest(sx, px);
        if (i < 0) return tip.hide();
        tip.show(e, [`RTG ${fmt(X.data[i], 4)} (index ${i})`, ...members.map((s) => `${name(s)}: ${fmt(y(s, i), 4)}`)]);
      };
      over.addEventListener("mousemove", onMove);
      over.addEventListener("mouseleave", () => tip.hide());
      over.addEventListener("click", (e) => { const i = nearest(sx, pos(over, e)[0]); if (i >= 0) { setLocal(i); sync(i); } });
      kids.push(h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: g, title: g, style: { textAlign: "left" } }), wrap, legend]));
      views.push({ over, sx, sy, yr, members, vals });
    }
    panels.replaceChildren(...kids);
    setLocal(Number.isInteger(model.get("index")) ? model.get("index") : 0);
  }

  const nearest = (sx, px) => {
    let best = -1, bd = Infinity;
    for (let i = 0; i < R; i++) { const d = Math.abs(sx(X.data[i]) - px); if (d < bd) { bd = d; best = i; } }
    return px >= ML - 4 && px <= ML + PW + 4 ? best : -1;
  };
  slider.addEventListener("input", () => { setLocal(Number(slider.value)); sync(idx); });
  const onIndex = () => { const i = model.get("index"); if (Number.isInteger(i) && i !== idx) setLocal(i); };
  model.on("change:index", onIndex);
  // follow the Explorer's RTG slider on the page (no kernel message): the marker moves to the nearest RTG
  let unsub = null;
  const nearestRTG = (v) => { let b = 0; for (let i = 1; i < R; i++) if (Math.abs(X.data[i] - v) < Math.abs(X.data[b] - v)) b = i; return b; };
  const resub = () => { unsub && unsub(); const g = model.get("follow_group"); unsub = g ? subscribe(g, (d) => X && setLocal(nearestRTG(d.rtg))) : null; };
  model.on("change:follow_group", resub);
  resub();
  return {
    draw, traits: ["rtgs", "series", "series_names", "series_groups", "title", "steps"],
    dispose() { model.off("change:index", onIndex); model.off("change:follow_group", resub); unsub && unsub(); sync.cancel(); },
  };
});
