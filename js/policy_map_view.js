// PolicyMapView: the model's action distribution with the agent placed on every free cell, drawn on
// the MiniGrid grid. Each cell is split into four triangles (one per facing direction); in each, one
// arrow per action (forward = the facing direction, left/right = turned, other actions a dot),
// opacity = probability. Modes: "single", "side_by_side" (probs | probs_b), "difference"
// (probs - probs_b; red = more likely, blue = less). A slider scrubs the K frames (e.g. steering
// coefficients) client-side; `index` syncs back debounced.
// Traits: grid uint8 [W, H, 3], agent_pos, agent_dir, cells int32 [N, 2], facings int32 [N],
// probs float32 [K, N, A], probs_b float32 [K, N, A] or empty, action_names [A], action_kinds [A] or [] (turns
// and forward relative to the facing, move_* absolute arrows from the cell centre, others dots), map_labels [2],
// frame_values float32 [K], frame_name, index, mode, cell_size, title, selected [x, y, dir] | null.
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { h, fmt, push, debounce, nth } from "./lib/dom.js";
import { sized, pos, outline } from "./lib/canvas.js";
import { pal } from "./lib/colors.js";
import { tile, agent, BG_SEEN } from "./lib/minigrid.js";

const DIRS = [[1, 0], [0, 1], [-1, 0], [0, -1]];
const DIR_NAMES = ["right", "down", "left", "up"];
// MiniGrid action names -> turn relative to the facing direction (null: drawn as a dot)
const TURN = { forward: 0, left: -1, right: 1 };
// action kinds (dtwidgets.adapters.actions) -> relative turn, or absolute direction
const KIND_TURN = { forward: 0, turn_left: -1, turn_right: 1 };
const KIND_DIR = { move_right: 0, move_down: 1, move_left: 2, move_up: 3 };

function arrow(ctx, x, y, dx, dy, len, colour, alpha, w) {
  if (alpha <= 0.01) return;
  const ex = x + dx * len, ey = y + dy * len, hl = Math.max(3, len * 0.45);
  ctx.globalAlpha = Math.min(1, alpha);
  ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = w;
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(ex - dx * hl * 0.6, ey - dy * hl * 0.6); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(ex, ey);
  ctx.lineTo(ex - dx * hl - dy * hl * 0.5, ey - dy * hl + dx * hl * 0.5);
  ctx.lineTo(ex - dx * hl + dy * hl * 0.5, ey - dy * hl - dx * hl * 0.5);
  ctx.closePath(); ctx.fill();
  ctx.globalAlpha = 1;
}

export default widget("dtw-policymap", ({ model, root, body, tip, noData }) => {
  const title = h("div", { class: "dtw-title" });
  const slider = /** @type {HTMLInputElement} */ (h("input", { type: "range", min: "0", max: "0", step: "1", value: "0", class: "dtw-slider" }));
  const readout = h("span", { class: "dtw-readout" });
  const controls = h("div", { class: "dtw-controls" }, [h("span", { class: "dtw-fname" }), slider, readout]);
  const panels = h("div", { class: "dtw-panels" });
  const legend = h("div", { class: "dtw-legend" });
  body.append(title, controls, panels, legend);
  let st = null, idx = 0;
  const sync = debounce((i) => { if (model.get("index") !== i) push(model, "index", i); }, 150);

  function read() {
    const G = decode(model.get("grid")), C = decode(model.get("cells")), D = decode(model.get("facings"));
    const P = decode(model.get("probs")), Pb = decode(model.get("probs_b"));
    if (!G.size || G.shape.length !== 3) return null;
    const N = D.size, A = P.shape.length === 3 ? P.shape[2] : 0, K = P.shape.length === 3 ? P.shape[0] : 0;
    if (!N || !A || P.shape[1] !== N) throw new Error(`probs must be [K, N=${N}, A], got [${P.shape.join(", ")}]`);
    const hasB = Pb.size > 0;
    if (hasB && (Pb.shape[0] !== K || Pb.shape[1] !== N || Pb.shape[2] !== A)) throw new Error(`probs_b must match probs [${P.shape.join(", ")}], got [${Pb.shape.join(", ")}]`);
    const mode = hasB ? model.get("mode") : "single";
    const names = Array.from({ length: A }, (_, a) => nth(model.get("action_names"), a, (i) => `action ${i}`));
    return { G, C, D, P, Pb, N, A, K, W: G.shape[0], H: G.shape[1], mode, names, F: decode(model.get("frame_values")) };
  }

  /** probability (or difference) of placement n, action a in frame k for panel p (0: a, 1: b, 2: diff) */
  const val = (p, k, n, a) => {
    const i = (k * st.N + n) * st.A + a;
    return p === 0 ? st.P.data[i] : p === 1 ? st.Pb.data[i] : st.P.data[i] - st.Pb.data[i];
  };

  function drawPanel(canvas, p, cs) {
    const { G, C, D, N, A, W, H, names } = st;
    const ctx = sized(canvas, W * cs, H * cs);
    ctx.fillStyle = BG_SEEN; ctx.fillRect(0, 0, W * cs, H * cs);
    for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) {
      const i = (x * H + y) * 3, o = G.data[i];
      if (o !== 10) tile(ctx, x * cs, y * cs, cs, o, G.data[i + 1], G.data[i + 2]);
      ctx.strokeStyle = "#333"; ctx.lineWidth = 1; ctx.strokeRect(x * cs + 0.5, y * cs + 0.5, cs - 1, cs - 1);
    }
    const ap = model.get("agent_pos");
    if (Array.isArray(ap) && ap.length === 2) {
      ctx.globalAlpha = 0.25; agent(ctx, ap[0] * cs, ap[1] * cs, cs, model.get("agent_dir") | 0); ctx.globalAlpha = 1;
    }
    const kinds = model.get("action_kinds") || [];
    const absolute = kinds.length === A && kinds.some((k) => k in KIND_DIR);
    /** direction index of action a's arrow at facing d, or null for a dot */
    const arrowDir = (a, d) => {
      if (kinds.length === A) {
        const k = kinds[a];
        return k in KIND_TURN ? (d + KIND_TURN[k] + 4) & 3 : k in KIND_DIR ? KIND_DIR[k] : null;
      }
      const t = TURN[names[a]];
      return t === undefined ? null : (d + t + 4) & 3;
    };
    // glyphs scale with the cell (a 70 px cell: 14 px arrows), at least 7 px where the cell's triangle has room
    const len = absolute ? Math.max(7, cs * 0.3) : Math.max(Math.min(7, cs * 0.23), cs * 0.2), w = Math.max(1.5, cs / 26);
    for (let n = 0; n < N; n++) {
      const x = C.data[2 * n], y = C.data[2 * n + 1], d = D.data[n] & 3;
      const [fx, fy] = absolute ? [0, 1] : DIRS[d];
      const off = absolute ? 0 : 0.27;  // no facing: arrows from the cell centre
      const ox = (x + 0.5 + fx * off) * cs, oy = (y + 0.5 + fy * off) * cs;  // triangle of direction d
      for (let a = 0; a < A; a++) {
        const v = val(p, idx, n, a);
        if (!Number.isFinite(v)) continue;
        const colour = p === 2 ? (v > 0 ? "#e03131" : "#1c7ed6") : pal(a);
        const ad = arrowDir(a, d);
        if (ad === null) {
          ctx.globalAlpha = Math.min(1, Math.abs(v)); ctx.fillStyle = colour;
          ctx.beginPath(); ctx.arc(ox + (a - 4) * cs * 0.05 * -fy, oy + (a - 4) * cs * 0.05 * fx, Math.max(2, cs * 0.04), 0, 7); ctx.fill();
          ctx.globalAlpha = 1;
          continue;
        }
        const [dx, dy] = DIRS[ad];
        arrow(ctx, ox, oy, dx, dy, len, colour, Math.abs(v), w);
      }
    }
    const sel = model.get("selected");
    if (Array.isArray(sel) && sel.length >= 2) outline(ctx, sel[0] * cs + 1, sel[1] * cs + 1, cs - 2, cs - 2, "#ffd43b", 2);
  }

  /** Hover card of panel p: probabilities, or in the difference panel signed changes (probs − probs_b). */
  function hover(p) {
    return (e) => {
      const [px, py] = pos(/** @type {HTMLCanvasElement} */ (e.currentTarget), e);
      const x = Math.floor(px / cs), y = Math.floor(py / cs);
      const lines = [];
      for (let n = 0; n < st.N; n++) {
        if (st.C.data[2 * n] !== x || st.C.data[2 * n + 1] !== y) continue;
        const parts = st.names.map((nm, a) => { const v = val(p, idx, n, a); return `${nm} ${p === 2 && v >= 0 ? "+" : ""}${fmt(v, 2)}`; });
        lines.push(`facing ${DIR_NAMES[st.D.data[n] & 3]}: ${parts.join("  ")}`);
      }
      if (!lines.length) return tip.hide();
      const what = p === 2 ? `change in probability: ${diffTitle()}` : `probability: ${panelTitle(p)}`;
      tip.show(e, [`cell (${x}, ${y})${st.K > 1 ? `, ${model.get("frame_name") || "frame"} ${fmt(st.F.data[idx], 3)}` : ""}`, what, ...lines]);
    };
  }

  const panelTitle = (p) => nth(model.get("map_labels") || [], p, (i) => (i ? "B" : "A"));
  /** "A − B", or "(steered: forward − right) minus clean" when a label has a minus of its own */
  function diffTitle() {
    const [a, b] = [panelTitle(0), panelTitle(1)], minus = /\s[−-]\s/;
    if (!minus.test(a) && !minus.test(b)) return `${a} − ${b}`;
    const par = (t) => (minus.test(t) ? `(${t})` : t);
    return `${par(a)} minus ${par(b)}`;
  }

  function setLocal(i) {
    if (!st) return;
    idx = Math.max(0, Math.min(st.K - 1, i | 0));
    if (Number(slider.value) !== idx) slider.value = String(idx);
    readout.textContent = st.F.size === st.K ? `= ${fmt(st.F.data[idx], 3)}` : `${idx + 1} / ${st.K}`;
    paint();
  }

  let canvases = [], cs = 32;
  /** @type {number | null} the model's index at the last draw */
  let modelIdx = null;
  function paint() {
    canvases.forEach(([c, p]) => drawPanel(c, p, cs));
  }

  function draw() {
    title.textContent = model.get("title") || ""; title.style.display = title.textContent ? "" : "none";
    st = read();
    if (!st) { canvases = []; panels.replaceChildren(); return noData(); }
    controls.style.display = st.K > 1 ? "" : "none";
    controls.firstChild.textContent = model.get("frame_name") || "frame";
    slider.max = String(st.K - 1);
    const which = st.mode === "side_by_side" ? [0, 1] : st.mode === "difference" ? [2] : [0];
    // cell size: the trait, else 560 px a map (440 each side by side, less in a narrow window), 32..80 px a cell
    const room = Math.min(which.length > 1 ? 440 : 560, (root.ownerDocument.documentElement.clientWidth || 1000) - 40);
    cs = Math.max(24, model.get("cell_size") | 0 || Math.max(32, Math.min(80, Math.floor(room / Math.max(st.W, st.H)))));
    canvases = which.map((p) => {
      const c = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-pmap", "data-panel": String(p) }));
      c.addEventListener("mousemove", hover(p));
      c.addEventListener("mouseleave", () => tip.hide());
      c.addEventListener("click", (e) => {
        const [px, py] = pos(c, e);
        push(model, "selected", [Math.floor(px / cs), Math.floor(py / cs)]);
      });
      return [c, p];
    });
    panels.replaceChildren(...canvases.map(([c, p]) => {
      const t = p === 2 ? diffTitle() : panelTitle(p);
      return h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: t, title: t }), c]);
    }));
    legend.replaceChildren(...(st.mode === "difference"
      ? [h("span", { text: "red: more likely, blue: less likely; opacity = |change|" })]
      : st.names.map((n, a) => h("span", {}, [h("span", { class: "dtw-sw", style: { background: pal(a) } }), h("span", { text: ` ${n}  ` })]))));
    // a redraw (new data, or the column resized) keeps the frame being scrubbed unless Python moved it
    const mi = Number.isInteger(model.get("index")) ? model.get("index") : 0;
    setLocal(mi !== modelIdx ? mi : idx);
    modelIdx = mi;
  }

  slider.addEventListener("input", () => { setLocal(Number(slider.value)); sync(idx); });
  const onIndex = () => { const i = model.get("index"); if (Number.isInteger(i) && i !== idx) setLocal(i); };
  const onSel = () => { if (st) paint(); };
  model.on("change:index", onIndex);
  model.on("change:selected", onSel);
  return {
    draw,
    traits: ["grid", "agent_pos", "agent_dir", "cells", "facings", "probs", "probs_b", "action_names", "action_kinds",
      "map_labels", "frame_values", "frame_name", "mode", "cell_size", "title"],
    dispose() { model.off("change:index", onIndex); model.off("change:selected", onSel); sync.cancel(); },
  };
});
