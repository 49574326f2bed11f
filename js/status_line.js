// StatusLine: the Explorer's state summary, built from text nodes only (never HTML). The whole text is
// shown (it wraps); the items an RTG drag changes (RTG, preference, preview note) each keep the size of
// the widest text they can show, so the line never reflows while the slider moves.
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
const SEP = " · ";
const LEAD_SEP = "\u00a0· ";  // a separator at the start of a box (a plain leading space would collapse)
const PREVIEW = (exact) => `preview from the RTG scan${exact ? "" : ", interpolated"}: confirmed on release`;

/**
 * `kids` in a box as large as the text `widest` (drawn invisibly under them by CSS, ::before: not part
 * of textContent): the box does not change size while its text changes within that bound.
 */
function steady(widest, kids, props = {}) {
  return h("span", { ...props, class: "dtw-steady " + (props.class || ""), "data-widest": widest }, [h("span", {}, kids)]);
}

/** "+0.90" / "-1.00" (the status line's RTG format). */
const signed = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);

export default widget("dtw-status", ({ model, body, redraw }) => {
  const line = h("div", { class: "dtw-status-line" });
  body.append(line);
  const follow = follower(model, redraw, ["logits"]);
  const source = linked(model, () => { follow.preview = null; redraw(); }, redraw);
  function draw() {
    const src = source.model || model;
    const parts = [];
    const headline = model.get("headline");
    if (headline) parts.push(h("b", { class: "dtw-status-headline", text: headline, style: { color: "#b00020" } }));
    for (const t of model.get("lead") || []) parts.push(h("span", { text: t }));
    const L = source.pending ? decode(null) : decode(src.get("logits")), pv = follow.preview;
    const scan = decode(src.get("scan_rtgs")), canPreview = L.size > 0 && scan.size > 0;
    const sr = pv && L.size ? scanRow(src, "scan_logits", L.size, pv.rtg) : null;
    const rtg = sr ? pv.rtg : model.get("rtg");
    if (Number.isFinite(rtg)) {
      let big = Math.abs(rtg);  // the widest RTG a drag can show: as many integer digits as the largest |RTG| known
      for (const r of scan.data) big = Math.max(big, Math.abs(r));
      const widest = `RTG +${"0".repeat(String(Math.floor(big)).length)}.00`;
      parts.push(steady(widest, [h("span", { text: "RTG " }), h("b", { text: signed(rtg) })], { class: "dtw-status-rtg" }));
    }
    if (L.size) {
      const P = softmax(sr ? Float32Array.from(sr.row) : L.data);
      let best = 0;
      for (let i = 1; i < P.length; i++) if (P[i] > P[best]) best = i;
      const names = Array.from({ length: P.length }, (_, j) => nth(src.get("action_names"), j, (k) => `action ${k}`));
      const widest = `model prefers ${names.reduce((a, b) => (b.length > a.length ? b : a), "")} (100%)`;
      parts.push(steady(widest, [h("span", { text: "model prefers " }), h("b", { text: names[best] }),
        h("span", { text: ` (${Math.round(P[best] * 100)}%)` })], { class: "dtw-status-prefers" }));
    }
    for (const t of model.get("notes") || []) parts.push(h("span", { text: t, style: { color: "#b35900" } }));
    const kids = [];
    parts.forEach((p, i) => { if (i) kids.push(document.createTextNode(SEP)); kids.push(p); });
    // the preview note, last: its place is kept (empty) whenever a drag could show it
    if (canPreview) {
      const lead = parts.length ? LEAD_SEP : "", text = sr ? lead + PREVIEW(sr.exact) : "";
      kids.push(steady(lead + PREVIEW(false), [document.createTextNode(text)],
        { class: "dtw-status-preview", style: { color: "#8a5a00" } }));
    }
    line.replaceChildren(...kids);
    line.title = line.textContent;  // the same text on hover (the placeholders are CSS, not text)
  }
  return { draw, traits: ["headline", "lead", "rtg", "logits", "action_names", "notes", "scan_logits", "scan_rtgs", "preferences"],
    dispose: () => { follow.dispose(); source.dispose(); } };
});

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
