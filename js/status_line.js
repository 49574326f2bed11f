// StatusLine: the Explorer's one-line state summary, built from text nodes only (never HTML).
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
    const sr = pv && L.size ? scanRow(src, "scan_logits", L.size, pv.rtg) : null;
    const rtg = sr ? pv.rtg : model.get("rtg");
    if (Number.isFinite(rtg)) parts.push(h("span", { class: "dtw-status-rtg" }, [h("span", { text: "RTG " }), h("b", { text: (rtg >= 0 ? "+" : "") + rtg.toFixed(2) })]));
    if (L.size) {
      const P = softmax(sr ? Float32Array.from(sr.row) : L.data);
      let best = 0;
      for (let i = 1; i < P.length; i++) if (P[i] > P[best]) best = i;
      const name = nth(src.get("action_names"), best, (j) => `action ${j}`);
      parts.push(h("span", { class: "dtw-status-prefers" }, [h("span", { text: "model prefers " }), h("b", { text: name }),
        h("span", { text: ` (${Math.round(P[best] * 100)}%)` })]));
    }
    if (sr) parts.push(h("span", { text: `preview from the RTG scan${sr.exact ? "" : ", interpolated"}: confirmed on release`, style: { color: "#8a5a00" } }));
    for (const t of model.get("notes") || []) parts.push(h("span", { text: t, style: { color: "#b35900" } }));
    const kids = [];
    parts.forEach((p, i) => { if (i) kids.push(document.createTextNode(" · ")); kids.push(p); });
    line.replaceChildren(...kids);
    line.title = line.textContent;  // the whole line on hover, where it is cut with an ellipsis
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
