// DOM helpers. All text goes through textContent (never innerHTML).
import STYLE from "./style.css";

/**
 * Create an element. `text` is set via textContent; `title` gives hover text.
 * @param {string} tag @param {Record<string, any>} [props] @param {(Node|null)[]} [kids]
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, kids = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k === "style") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of kids) if (c) e.appendChild(c);
  return e;
}

/** A single-line label truncated with an ellipsis; full text on hover. */
export function label(text, maxWidth, cls = "dtw-label") {
  const t = String(text ?? "");
  return h("span", { class: cls, text: t, title: t, style: maxWidth ? { maxWidth: maxWidth + "px" } : {} });
}

/** Format a number compactly for readouts. @param {number} v */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "—";
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toFixed(digits)));
}

/** Format a value written inside a heatmap cell: fixed decimals, never exponent form
 * (tiny values read "0", large ones "12k"); hover shows the exact value. @param {number} v */
export function cellFmt(v, digits = 1) {
  if (!Number.isFinite(v)) return fmt(v);
  const a = Math.abs(v);
  if (a < 0.5 * 10 ** -digits) return "0";
  if (a >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toFixed(digits)));
}

/** Label i of a list, falling back to `fallback(i)`. */
export function nth(list, i, fallback) {
  const v = Array.isArray(list) ? list[i] : undefined;
  return v === undefined || v === null || v === "" ? fallback(i) : String(v);
}

/**
 * Inject this bundle's stylesheet once per styling scope: the rules of lib/style.css that this widget
 * module uses (build.mjs picks them), as one <style> per widget class `cls`. The scope is the
 * document, or the shadow root the widget is drawn in (marimo, Panel: document styles do not reach
 * into a shadow root), found from the element `at`.
 */
export function injectStyle(cls, at) {
  const id = "dtwidgets-style-" + cls;
  if (!STYLE) return;
  const scope = at && at.getRootNode ? at.getRootNode() : document;
  const isShadow = typeof ShadowRoot !== "undefined" && scope instanceof ShadowRoot;
  const doc = isShadow ? scope.ownerDocument : (scope.nodeType === 9 ? scope : document);
  const parent = isShadow ? scope : (doc.head || doc.documentElement);
  if ((isShadow ? scope.querySelector("#" + id) : doc.getElementById(id))) return;
  const s = doc.createElement("style");
  s.id = id;
  s.textContent = STYLE;
  parent.appendChild(s);
}

/** The element an event really happened on, also across shadow-root boundaries (where `e.target` is the host). */
export function eventTarget(e) {
  const path = e.composedPath ? e.composedPath() : [];
  return path.length ? path[0] : e.target;
}

/** Debounce `fn` by `ms` milliseconds. */
export function debounce(fn, ms) {
  let t = 0;
  const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(t);
  return d;
}

/** Set a synced trait from JS and push it to Python. */
export function push(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

/** Build a <select> whose options are label strings; returns the element. */
export function select(labels, value, onChange) {
  const s = /** @type {HTMLSelectElement} */ (h("select", { class: "dtw-select" }));
  setOptions(s, labels, value);
  s.addEventListener("change", () => onChange(Number(s.value)));
  return s;
}

/** Replace options of a select ([value, text] pairs or plain strings indexed from 0). */
export function setOptions(s, labels, value) {
  s.replaceChildren(...labels.map((l, i) => {
    const [v, t] = Array.isArray(l) ? l : [i, l];
    const o = h("option", { value: v, text: t, title: t });
    return o;
  }));
  s.value = String(value);
}
