// ActionPreferences: softmax probabilities as bars + pairwise logit difference.
// Traits: logits float32 [A], action_names [A], pair [a, b] (action indices).
// RTG following (see lib/follow.js): follow_group, rtg (RTG of `logits`), scan_rtgs [R], scan_logits [R, A]:
// while the group's RTG slider moves, the bars show the scan's logits at the slider's RTG (interpolated).
import { widget } from "./lib/widget.js";
import { decode, finiteRange } from "./lib/arrays.js";
import { h, nth, fmt, push, select, setOptions } from "./lib/dom.js";
import { sized, pos, fitText } from "./lib/canvas.js";
import { diverging, css } from "./lib/colors.js";
import { follower, scanRow } from "./lib/follow.js";
import { softmax } from "./lib/softmax.js";

const NAME_MAX = 96, BAR_MAX = 200, ROW = 20, VAL_W = 46;

export default widget("dtw-actionprefs", ({ model, body, tip, noData, redraw, avail }) => {
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-probs" }));
  const selA = select([], 0, (v) => setPair(0, v)), selB = select([], 1, (v) => setPair(1, v));
  const diffCv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-diff" }));
  const diffTxt = h("div", { class: "dtw-readout", style: { whiteSpace: "normal", overflowWrap: "anywhere" } });
  const head = h("div", { class: "dtw-title", text: "action probabilities" });
  const follow = follower(model, redraw, ["logits"]);
  let NAME_W = NAME_MAX, BAR_W = BAR_MAX;
  body.append(head, cv,
    h("div", { class: "dtw-controls" }, [h("span", { text: "preference" }), selA, h("span", { text: "vs" }), selB]), diffCv, diffTxt);
  let L = null, P = null, names = [];

  function setPair(k, v) {
    const p = (model.get("pair") || [0, 1]).slice();
    p[k] = v;
    push(model, "pair", p);
  }

  function draw() {
    const A = decode(model.get("logits"));
    if (A.size === 0 || A.shape.length !== 1) { L = null; return noData(A.size ? "logits must be 1-d [A]" : "no data"); }
    L = A.data;
    const n = L.length, pv = follow.preview, sr = pv ? scanRow(model, "scan_logits", n, pv.rtg) : null;
    if (sr) L = Float32Array.from(sr.row);
    P = softmax(L);
    head.textContent = sr ? `action probabilities · RTG ${pv.rtg.toFixed(2)} preview${sr.exact ? "" : " (interpolated)"}` : "action probabilities";
    head.title = sr ? "from the RTG scan shipped with this state (every step at this RTG); the kernel confirms on release" : "";
    head.style.color = sr ? "#8a5a00" : "";
    const W = avail(NAME_MAX + BAR_MAX + VAL_W);
    NAME_W = Math.min(NAME_MAX, Math.max(56, Math.round(W * 0.3)));
    BAR_W = Math.max(40, W - NAME_W - VAL_W);
    names = Array.from({ length: n }, (_, i) => nth(model.get("action_names"), i, (j) => `action ${j}`));
    let best = -1;
    for (let i = 0; i < n; i++) if (P[i] === P[i] && (best < 0 || P[i] > P[best])) best = i;
    const ctx = sized(cv, NAME_W + BAR_W + VAL_W, n * ROW + 2);
    ctx.font = "11px sans-serif"; ctx.textBaseline = "middle";
    for (let i = 0; i < n; i++) {
      const y = i * ROW + 1, p = P[i];
      ctx.fillStyle = "#222"; ctx.textAlign = "right";
      ctx.font = i === best ? "bold 11px sans-serif" : "11px sans-serif";
      ctx.fillText(fitText(ctx, names[i], NAME_W - 8), NAME_W - 6, y + ROW / 2);
      ctx.fillStyle = "#eee"; ctx.fillRect(NAME_W, y + 3, BAR_W, ROW - 6);
      if (p === p) { ctx.fillStyle = i === best ? "#2b6cb0" : "#8fb3d9"; ctx.fillRect(NAME_W, y + 3, BAR_W * p, ROW - 6); }
      else { ctx.fillStyle = "#999"; ctx.textAlign = "left"; ctx.fillText("NaN", NAME_W + 4, y + ROW / 2); }
      ctx.fillStyle = "#222"; ctx.textAlign = "left";
      ctx.fillText(p === p ? p.toFixed(3) : "NaN", NAME_W + BAR_W + 6, y + ROW / 2);
    }
    const pair = model.get("pair") || [0, 1];
    const opts = names.map((t, i) => [i, t]);
    const ok = (i) => Number.isInteger(i) && i >= 0 && i < n;
    setOptions(selA, ok(pair[0]) ? opts : [[pair[0], `? (${pair[0]})`], ...opts], pair[0]);
    setOptions(selB, ok(pair[1]) ? opts : [[pair[1], `? (${pair[1]})`], ...opts], pair[1]);
    const dctx = sized(diffCv, NAME_W + BAR_W + VAL_W, 22);
    const mid = NAME_W + BAR_W / 2;
    dctx.fillStyle = "#eee"; dctx.fillRect(NAME_W, 3, BAR_W, 16);
    dctx.fillStyle = "#555"; dctx.fillRect(mid - 0.5, 0, 1, 22);
    if (!ok(pair[0]) || !ok(pair[1])) { diffTxt.textContent = "pair out of range"; return; }
    const d = L[pair[0]] - L[pair[1]];
    const r = finiteRange(L), span = r ? Math.max(r[1] - r[0], 1e-9) : 1;
    const w = Number.isNaN(d) ? 0 : Math.max(-1, Math.min(1, d / span)) * (BAR_W / 2);
    dctx.fillStyle = css(diverging(d >= 0 ? 1 : -1, 1));
    dctx.fillRect(Math.min(mid, mid + w), 4, Math.abs(w), 14);
    dctx.font = "11px sans-serif"; dctx.textBaseline = "middle"; dctx.textAlign = "right"; dctx.fillStyle = "#222";
    dctx.fillText("logit diff", NAME_W - 6, 11);
    dctx.textAlign = "left"; dctx.fillText(fmt(d), NAME_W + BAR_W + 6, 11);
    diffTxt.textContent = `logit[${names[pair[0]]}] − logit[${names[pair[1]]}] = ${fmt(d, 4)}`;
    diffTxt.title = diffTxt.textContent;
  }

  const rowAt = (e) => { const [, py] = pos(cv, e), i = Math.floor((py - 1) / ROW); return L && i >= 0 && i < L.length ? i : -1; };
  cv.addEventListener("mousemove", (e) => {
    const i = rowAt(e);
    i < 0 ? tip.hide() : tip.show(e, [names[i], `probability: ${fmt(P[i], 4)}`, `logit: ${fmt(L[i], 4)}`]);
  });
  cv.addEventListener("mouseleave", () => tip.hide());
  return { draw, traits: ["logits", "action_names", "pair", "scan_logits", "scan_rtgs"], dispose: () => follow.dispose() };
});
