// CircuitDiagram: the strongest paths of a circuit as a layered node-link diagram. Nodes sit in
// columns by layer; an edge's width is |value| / max |value|, red for positive, blue for negative,
// labelled at its midpoint (e.g. "q", "k", "v"); hovering near an edge midpoint shows its value.
// An edge that skips a column runs in a lane above the nodes (one lane each, shortest innermost),
// leaving its source to the right and entering its target from the left, never through a node.
// Nodes are circles filled by kind (node_kinds: "input" green, "head" grey, "mlp" orange, "output"
// blue; other / missing: grey); a label wider than the circle gets a pill of its width instead.
// Traits: node_labels [n], node_layers int32 [n] (column), node_kinds [n], edges float32 [E, 3]
// (source node, target node, value), edge_labels [E], title, unit.
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { h, fmt, nth } from "./lib/dom.js";
import { sized, pos, fitText } from "./lib/canvas.js";

const COLW = 150, ROWH = 46, PAD = 40, R = 16, LANE = 16, LANE0 = 14, SIDE = 52;
const FILL = { input: "#d3f9d8", head: "#f1f3f5", mlp: "#ffe8cc", output: "#d0ebff" };

export default widget("dtw-circuit", ({ model, body, tip, noData }) => {
  const title = h("div", { class: "dtw-title" });
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-circuit" }));
  body.append(title, canvas);
  let mids = [];

  function draw() {
    title.textContent = model.get("title") || ""; title.style.display = title.textContent ? "" : "none";
    const L = decode(model.get("node_layers")), E = decode(model.get("edges"));
    const n = L.size;
    if (!n) return noData();
    if (E.size && (E.shape.length !== 2 || E.shape[1] !== 3)) throw new Error(`edges must be [E, 3], got [${E.shape.join(", ")}]`);
    const cols = new Map();
    const xy = [];
    for (let i = 0; i < n; i++) {
      const c = L.data[i], k = cols.get(c) || 0;
      cols.set(c, k + 1);
      xy.push([c, k]);
    }
    const nCols = Math.max(...cols.keys()) + 1, nRows = Math.max(...cols.values());
    const nE = E.size ? E.shape[0] : 0;
    // edges that skip a column run in lanes above the nodes (shortest span innermost), not through them
    const span = (e) => Math.abs(L.data[E.data[3 * e + 1] | 0] - L.data[E.data[3 * e] | 0]);
    const skips = [];
    for (let e = 0; e < nE; e++) if (span(e) > 1) skips.push(e);
    skips.sort((a, b) => span(a) - span(b) || a - b);
    const lane = new Map(skips.map((e, j) => [e, j]));
    const top = PAD + (skips.length ? LANE0 + LANE * skips.length : 0);
    const W = PAD * 2 + Math.max(1, nCols - 1) * COLW, Ht = top + PAD + Math.max(1, nRows - 1) * ROWH;
    const P = xy.map(([c, k]) => [PAD + c * COLW, top + (k + (nRows - cols.get(c)) / 2) * ROWH]);
    const ctx = sized(canvas, W, Ht);
    let vmax = 0;
    for (let e = 0; e < nE; e++) vmax = Math.max(vmax, Math.abs(E.data[3 * e + 2]) || 0);
    mids = [];
    ctx.font = "11px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (let e = 0; e < nE; e++) {
      const s = E.data[3 * e] | 0, t = E.data[3 * e + 1] | 0, v = E.data[3 * e + 2];
      if (!(s >= 0 && s < n && t >= 0 && t < n) || !Number.isFinite(v)) continue;
      const [x0, y0] = P[s], [x1, y1] = P[t];
      ctx.strokeStyle = v >= 0 ? "#e03131" : "#1c7ed6";
      ctx.globalAlpha = 0.85;
      ctx.lineWidth = 1 + 7 * (vmax ? Math.abs(v) / vmax : 0);
      let mx = (x0 + x1) / 2, my = (y0 + y1) / 2;
      ctx.beginPath();
      if (lane.has(e)) {
        my = top - R - LANE0 + 4 - LANE * lane.get(e);
        // out of the source's right side, up to the lane, across, down beside the target, into its left side
        const xa = x0 + SIDE, xb = x1 - SIDE;
        ctx.moveTo(x0 + R, y0); ctx.arcTo(xa, y0, xa, my, 8); ctx.arcTo(xa, my, xb, my, 8);
        ctx.arcTo(xb, my, xb, y1, 8); ctx.arcTo(xb, y1, x1 - R, y1, 8); ctx.lineTo(x1 - R, y1);
      } else {
        const cx = (x0 + x1) / 2;
        ctx.moveTo(x0 + R, y0); ctx.bezierCurveTo(cx, y0, cx, y1, x1 - R, y1);
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
      const lab = fitText(ctx, nth(model.get("edge_labels"), e, () => ""), 60);
      if (lab) {
        const lw = ctx.measureText(lab).width + 6;
        ctx.fillStyle = "#fff"; ctx.fillRect(mx - lw / 2, my - 7, lw, 14);
        ctx.fillStyle = "#222"; ctx.fillText(lab, mx, my);
      }
      mids.push([mx, my, e, v, lab]);
    }
    for (let i = 0; i < n; i++) {
      const [x, y] = P[i];
      const label = fitText(ctx, nth(model.get("node_labels"), i, (j) => `n${j}`), COLW - 30);
      const half = Math.max(R, ctx.measureText(label).width / 2 + 7);
      ctx.fillStyle = FILL[nth(model.get("node_kinds"), i, () => "")] || FILL.head;
      ctx.strokeStyle = "#495057"; ctx.lineWidth = 1.5;
      ctx.beginPath();
      if (half > R) { // a pill as wide as the label
        ctx.moveTo(x - half + R, y - R); ctx.lineTo(x + half - R, y - R); ctx.arc(x + half - R, y, R, -Math.PI / 2, Math.PI / 2);
        ctx.lineTo(x - half + R, y + R); ctx.arc(x - half + R, y, R, Math.PI / 2, 3 * Math.PI / 2);
      } else ctx.arc(x, y, R, 0, 7);
      ctx.fill(); ctx.stroke();
      ctx.fillStyle = "#111"; ctx.fillText(label, x, y);
    }
  }

  canvas.addEventListener("mousemove", (e) => {
    const [px, py] = pos(canvas, e);
    let best = null, bd = 14 * 14;
    for (const m of mids) { const d = (m[0] - px) ** 2 + (m[1] - py) ** 2; if (d < bd) { bd = d; best = m; } }
    if (!best) return tip.hide();
    const labels = model.get("node_labels") || [], E = decode(model.get("edges")), ei = best[2];
    const s = nth(labels, E.data[3 * ei] | 0, (j) => `n${j}`), t = nth(labels, E.data[3 * ei + 1] | 0, (j) => `n${j}`);
    tip.show(e, [`${s} → ${t}${best[4] ? " (" + best[4] + ")" : ""}`, `${fmt(best[3], 4)} ${model.get("unit") || ""}`]);
  });
  canvas.addEventListener("mouseleave", () => tip.hide());
  return { draw, traits: ["node_labels", "node_layers", "node_kinds", "edges", "edge_labels", "title", "unit"] };
});
