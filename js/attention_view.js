// AttentionView: attention patterns [N_heads, Q, K] (rows = query, columns = key).
// selected_head = -1 shows all heads as small multiples (click one to zoom); otherwise one
// large heatmap with token labels. Values in [0, 1] use a white->purple scale; any negative
// value switches to the diverging scale with symmetric auto limit.
import { widget } from "./lib/widget.js";
import { decode, finiteRange } from "./lib/arrays.js";
import { h, nth, fmt, push, select, setOptions } from "./lib/dom.js";
import { sized, pos, fitText, outline } from "./lib/canvas.js";
import { sequential, diverging } from "./lib/colors.js";
import { heat, nonFiniteNote } from "./lib/heat.js";
import { stepFiller } from "./lib/steps.js";

const LW = 64, TH = 56;

export default widget("dtw-attention", ({ model, body, tip, noData }) => {
  const sel = select([], -1, (v) => push(model, "selected_head", v));
  const panels = h("div", { class: "dtw-panels" });
  const big = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-attn-big" }));
  const note = h("div", { class: "dtw-note" });
  const axes = h("div", { class: "dtw-note dtw-attn-axes" });  // all heads: what the small grids' rows and columns are
  body.append(h("div", { class: "dtw-controls" }, [h("span", { text: "head" }), sel]), axes, panels, big, note);
  const pool = [];
  let A = null, N = 0, Q = 0, K = 0, scale = (v) => sequential(v), geo = { cs: 8, ox: 0, oy: 0 };

  const v = (n, q, k) => A.data[(n * Q + q) * K + k];
  const head = (n) => nth(model.get("head_labels"), n, (i) => `head ${i}`);
  let fill = stepFiller(model);
  const tok = (i) => fill(nth(model.get("token_labels"), i, (j) => String(j)));
  const lines = (n, q, k) => [head(n), `query: ${tok(q)} (${q})`, `key: ${tok(k)} (${k})`, `value: ${fmt(v(n, q, k), 4)}`];
  const cellAt = (cv, e, g) => {
    const [px, py] = pos(cv, e), k = Math.floor((px - g.ox) / g.cs), q = Math.floor((py - g.oy) / g.cs);
    return A && q >= 0 && k >= 0 && q < Q && k < K ? [q, k] : null;
  };

  function small(n, cs) {
    if (!pool[n]) {
      const t = h("div", { class: "dtw-ptitle" });
      const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-attn", "data-head": n, style: { cursor: "pointer" } }));
      const g = { cs: 8, ox: 1, oy: 1 };
      cv.addEventListener("mousemove", (e) => { const c = cellAt(cv, e, g); c ? tip.show(e, lines(n, ...c)) : tip.hide(); });
      cv.addEventListener("mouseleave", () => tip.hide());
      cv.addEventListener("click", () => push(model, "selected_head", n));
      pool[n] = { el: h("div", { class: "dtw-panel" }, [t, cv]), t, cv, g };
    }
    const p = pool[n];
    p.g.cs = cs;
    p.t.textContent = head(n); p.t.title = head(n); p.t.style.maxWidth = Math.max(40, K * cs) + "px";
    return p;
  }

  function draw() {
    fill = stepFiller(model);
    A = decode(model.get("patterns"));
    if (A.size === 0) { A = null; return noData(); }
    if (A.shape.length !== 3) { A = null; return noData(`patterns must be [heads, Q, K], got [${A.shape.join(", ")}]`); }
    [N, Q, K] = A.shape;
    const r = finiteRange(A.data) || [0, 1];
    if (r[0] < 0) { const m = Math.max(-r[0], r[1]) || 1; scale = (x) => diverging(x, m); }
    else { const m = r[1] > 1 ? r[1] : 1; scale = (x) => sequential(x / m); }
    let hsel = model.get("selected_head");
    if (!(Number.isInteger(hsel) && hsel >= -1 && hsel < N)) hsel = -1;
    setOptions(sel, [[-1, "all heads"], ...Array.from({ length: N }, (_, i) => [i, head(i)])], hsel);
    let nan = 0, inf = 0;
    if (hsel < 0) {
      big.style.display = "none"; panels.style.display = "";
      const cs = Math.max(2, Math.min(36, Math.floor(120 / Math.max(Q, K))));  // short contexts: cells big enough to read
      const kids = [];
      for (let n = 0; n < N; n++) {
        const p = small(n, cs);
        const c2 = sized(p.cv, K * cs + 2, Q * cs + 2);
        const res = heat(c2, (k, q) => v(n, q, k), K, Q, cs, scale, cs >= 22, 1, 1);
        outline(c2, 0, 0, K * cs + 2, Q * cs + 2, n === hsel ? "#ff9800" : "#bbb", 1);
        nan += res.nan; inf += res.inf; kids.push(p.el);
      }
      if (panels.children.length !== N || kids.some((k, i) => panels.children[i] !== k)) panels.replaceChildren(...kids);
      const toks = Array.from({ length: Math.min(K, 24) }, (_, k) => tok(k)).join(" ") + (K > 24 ? " …" : "");
      axes.textContent = `each grid: rows = query, columns = key (tokens left to right / top to bottom: ${toks}); click one to zoom`;
      axes.style.display = "";
    } else {
      big.style.display = ""; panels.style.display = "none"; axes.style.display = "none";
      const cs = Math.max(4, Math.min(36, Math.floor(360 / Math.max(Q, K))));
      const labels = cs >= 9;
      geo = { cs, ox: labels ? LW : 0, oy: labels ? TH : 0 };
      const ctx = sized(big, geo.ox + K * cs + 2, geo.oy + Q * cs + 2);
      Object.assign(big.dataset, { cell: cs, ox: geo.ox, oy: geo.oy });
      const res = heat(ctx, (k, q) => v(hsel, q, k), K, Q, cs, scale, cs >= 22, geo.ox, geo.oy);
      nan += res.nan; inf += res.inf;
      outline(ctx, geo.ox, geo.oy, K * cs, Q * cs, "#888", 1);
      if (labels) {
        ctx.fillStyle = "#333"; ctx.font = `${Math.min(11, cs - 1)}px sans-serif`; ctx.textBaseline = "middle";
        ctx.textAlign = "right";
        for (let q = 0; q < Q; q++) ctx.fillText(fitText(ctx, tok(q), LW - 6), LW - 4, geo.oy + q * cs + cs / 2);
        ctx.textAlign = "left";
        for (let k = 0; k < K; k++) {
          ctx.save(); ctx.translate(geo.ox + k * cs + cs / 2, TH - 4); ctx.rotate(-Math.PI / 2);
          ctx.fillText(fitText(ctx, tok(k), TH - 8), 0, 0); ctx.restore();
        }
      }
    }
    note.textContent = nonFiniteNote(nan, inf);
  }

  big.addEventListener("mousemove", (e) => {
    const hsel = model.get("selected_head"), c = cellAt(big, e, geo);
    if (c && hsel >= 0 && hsel < N) return tip.show(e, lines(hsel, ...c));
    const [px, py] = pos(big, e);
    if (A && px < geo.ox && py >= geo.oy && py < geo.oy + Q * geo.cs) return tip.show(e, `query: ${tok(Math.floor((py - geo.oy) / geo.cs))}`);
    if (A && py < geo.oy && px >= geo.ox && px < geo.ox + K * geo.cs) return tip.show(e, `key: ${tok(Math.floor((px - geo.ox) / geo.cs))}`);
    tip.hide();
  });
  big.addEventListener("mouseleave", () => tip.hide());
  return { draw, traits: ["patterns", "head_labels", "token_labels", "steps", "selected_head"] };
});
