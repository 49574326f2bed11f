// StatusLine: the Explorer's state summary, built from text nodes only (never HTML). The whole text is
// shown (it wraps). Where an RTG drag can preview (a scan is known), the line keeps the height of the
// widest text a drag can show (the preview note, the widest RTG, each action at 100%), measured in an
// invisible copy, so the line never grows or shrinks while the slider moves and nothing below it jumps.
// Traits: headline (emphasised, e.g. "episode over (collision): reset or step back"), lead [str]
// (e.g. "step 3", "t = 3"), rtg + logits [A] + action_names [A] ("RTG +0.90 · model prefers forward
// (80%)"; omitted when logits is empty), notes [str] (warnings, e.g. an edit outside the view).
// RTG following (lib/follow.js): follow_group, scan_rtgs [R], scan_logits [R, A].
// preferences: a reference ("IPY_MODEL_<id>") to an ActionPreferences model; when set, logits,
// scan_rtgs, scan_logits and action_names are read from that model (sent once per state for both).
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { h, nth } from "./lib/dom.js";
import { follower, scanRow } from "./lib/follow.js";
import { softmax } from "./lib/softmax.js";

const SHARED = ["logits", "action_names", "scan_logits", "scan_rtgs"];

const PREVIEW = (exact) => `preview from the RTG scan${exact ? "" : ", interpolated"}: confirmed on release`;
const signed = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);  // the line's RTG format: "+0.90", "-1.00"

export default widget("dtw-status", ({ model, body, redraw }) => {
  const line = h("div", { class: "dtw-status-line" });
  const probe = h("div", { class: "dtw-status-probe", "aria-hidden": "true" });  // measures; empty between draws
  body.append(line, probe);
  const reserve = reserver(line, probe);
  const follow = follower(model, redraw, ["logits"]);
  const source = linked(model, () => { follow.preview = null; redraw(); }, redraw);
  function draw() {
    const src = source.model || model;
    const L = source.pending ? decode(null) : decode(src.get("logits")), pv = follow.preview;
    const sr = pv && L.size ? scanRow(src, "scan_logits", L.size, pv.rtg) : null;
    const rtg = sr ? pv.rtg : model.get("rtg");
    let prefers = null, names = [];
    if (L.size) {
      const P = softmax(sr ? Float32Array.from(sr.row) : L.data);
      let best = 0;
      for (let i = 1; i < P.length; i++) if (P[i] > P[best]) best = i;
      names = Array.from(P, (_, j) => nth(src.get("action_names"), j, (k) => `action ${k}`));
      prefers = [names[best], Math.round(P[best] * 100)];
    }
    line.replaceChildren(...compose(model, Number.isFinite(rtg) ? signed(rtg) : null, prefers, sr ? PREVIEW(sr.exact) : ""));
    line.title = line.textContent;
    const scan = decode(src.get("scan_rtgs"));
    if (prefers && scan.size) {  // a drag can preview here: keep the height of the widest line it may show
      let big = Number.isFinite(rtg) ? Math.abs(rtg) : 0;
      for (const r of scan.data) big = Math.max(big, Math.abs(r));
      line.style.minHeight = reserve(model, `+${"0".repeat(String(Math.floor(big)).length)}.00`, names) + "px";
    } else line.style.minHeight = "";
  }
  return { draw, traits: ["headline", "lead", "rtg", "logits", "action_names", "notes", "scan_logits", "scan_rtgs", "preferences"],
    dispose: () => { follow.dispose(); source.dispose(); } };
});

/**
 * The line's nodes: headline, lead, RTG (`rtg`: its text, e.g. "+0.90", or null), the preferred action
 * (`prefers`: [name, percent] or null), the preview note (`preview`: its text or ""), the notes; " · " between.
 * @returns {Node[]}
 */
function compose(model, rtg, prefers, preview) {
  const parts = [];
  const headline = model.get("headline");
  if (headline) parts.push(h("b", { class: "dtw-status-headline", text: headline, style: { color: "#b00020" } }));
  for (const t of model.get("lead") || []) parts.push(h("span", { text: t }));
  if (rtg !== null) parts.push(h("span", { class: "dtw-status-rtg" }, [h("span", { text: "RTG " }), h("b", { text: rtg })]));
  if (prefers) parts.push(h("span", { class: "dtw-status-prefers" }, [h("span", { text: "model prefers " }), h("b", { text: prefers[0] }),
    h("span", { text: ` (${prefers[1]}%)` })]));
  if (preview) parts.push(h("span", { text: preview, style: { color: "#8a5a00" } }));
  for (const t of model.get("notes") || []) parts.push(h("span", { text: t, style: { color: "#b35900" } }));
  const kids = [];
  parts.forEach((p, i) => { if (i) kids.push(document.createTextNode(" · ")); kids.push(p); });
  return kids;
}

/**
 * `reserve(model, rtgWidest, names)`: the height (CSS px) the line needs, at its current width, for the
 * widest text an RTG drag can show with the model's headline, lead and notes: RTG `rtgWidest`, each of
 * `names` at 100 %, the preview note. Measured in `probe` (an invisible copy beside the line, emptied after);
 * cached per width and texts; 0 while the line is not laid out (the widget redraws when it gets a width).
 */
function reserver(line, probe) {
  let key = "", height = 0;
  return (model, rtgWidest, names) => {
    const w = line.clientWidth;
    if (!w) return 0;
    const k = JSON.stringify([w, model.get("headline"), model.get("lead"), model.get("notes"), rtgWidest, names]);
    if (k === key) return height;
    probe.style.width = w + "px";
    height = 0;
    for (const n of names) {
      probe.replaceChildren(...compose(model, rtgWidest, [n, 100], PREVIEW(false)));
      height = Math.max(height, probe.getBoundingClientRect().height);
    }
    probe.replaceChildren();
    key = k;
    return height;
  };
}

/**
 * The model referenced by trait `preferences` (resolved through the widget manager), kept current:
 * `confirm()` when its logits arrive (kernel data), `redraw()` on its other shared traits.
 * @returns {{model: any, pending: boolean, dispose: () => void}}
 */
function linked(model, confirm, redraw) {
  const state = { model: null, pending: false, dispose: () => {} };
  let id = null;
  const off = () => {
    if (state.model) { state.model.off("change:logits", confirm); for (const t of SHARED.slice(1)) state.model.off("change:" + t, redraw); }
    state.model = null;
  };
  const bind = () => {
    const ref = model.get("preferences");
    const next = typeof ref === "string" && ref.startsWith("IPY_MODEL_") ? ref.slice(10) : null;
    if (next === id) return;
    off();
    id = next;
    state.pending = !!next;
    if (!next) return;
    const wm = model.widget_manager;
    if (!wm || typeof wm.get_model !== "function") {  // a front-end that cannot look up other models
      state.pending = false;
      if (!globalThis.__dtwStatusNoRefs) {
        globalThis.__dtwStatusNoRefs = true;
        console.warn("dtwidgets status line: this front-end has no widget_manager.get_model; it shows its own values, not the referenced preferences");
      }
      return;
    }
    Promise.resolve().then(() => wm.get_model(next)).then((m) => {
      if (id !== next || !m) return;
      state.model = m; state.pending = false;
      m.on("change:logits", confirm);
      for (const t of SHARED.slice(1)) m.on("change:" + t, redraw);
      redraw();
    }, (e) => { if (id === next) { state.pending = false; console.error("dtwidgets status line: preferences", e); redraw(); } });
  };
  model.on("change:preferences", bind);
  bind();
  state.dispose = () => { off(); model.off("change:preferences", bind); id = null; };
  return state;
}
