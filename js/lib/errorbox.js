// Visible red error box: shows the Python-side `error` trait and JS errors.
import { h, push } from "./dom.js";

/** @param {HTMLElement} root @param {any} model */
export function errorBox(root, model) {
  const text = h("span");
  const close = h("button", { title: "dismiss", text: "×" });
  const box = h("div", { class: "dtw-error", role: "alert" }, [text, close]);
  root.appendChild(box);
  let jsErr = "";
  const update = () => {
    const py = String(model.get("error") || "");
    const msg = [py, jsErr].filter(Boolean).join("\n");
    text.textContent = msg;
    box.style.display = msg ? "block" : "none";
  };
  close.addEventListener("click", () => {
    jsErr = "";
    if (model.get("error")) push(model, "error", "");
    update();
  });
  model.on("change:error", update);
  update();
  return {
    /** Report (or clear, with null) a JS-side error. */
    js(e) {
      const m = e ? "JS error: " + (e && e.message ? e.message : String(e)) : "";
      if (e) console.error("[dtwidgets]", e);
      if (m !== jsErr) { jsErr = m; update(); }
    },
    dispose() { model.off("change:error", update); },
  };
}
