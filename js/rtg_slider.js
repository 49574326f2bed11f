// RTGSlider: a return-to-go slider that answers while it moves. Dragging announces the position to
// the widgets of its `follow_group` on the page (lib/follow.js) — no kernel message; releasing sends
// `value` to the kernel once. Traits: value, min, max, step, description, follow_group.
import { widget } from "./lib/widget.js";
import { h, push } from "./lib/dom.js";
import { publish } from "./lib/follow.js";

const show = (v) => (v >= 0 ? "+" : "") + Number(v).toFixed(2);

export default widget("dtw-rtgslider", ({ model, body }) => {
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "range", class: "dtw-rtg-input", "aria-label": "return-to-go" }));
  const name = h("span", { class: "dtw-rtg-name" });
  const out = h("span", { class: "dtw-readout dtw-rtg-value" });
  body.append(h("div", { class: "dtw-controls dtw-rtg-row" }, [name, input, out]));
  let dragging = false;
  input.addEventListener("input", () => {
    dragging = true;
    const v = Number(input.value);
    out.textContent = show(v);
    publish(model.get("follow_group"), v, false);
  });
  input.addEventListener("change", () => {
    dragging = false;
    const v = Number(input.value);
    if (model.widget_manager && model.widget_manager.noKernel) {
      // a static page: no kernel can confirm v, so the preview ends and every follower shows the
      // exported state again (the page never shows a state it cannot confirm)
      const v0 = Number(model.get("value"));
      input.value = String(v0);
      out.textContent = show(v0);
      input.title = "no kernel on this page: dragging previews, releasing returns to the exported RTG";
      publish(model.get("follow_group"), v0, true);
      return;
    }
    out.textContent = show(v);
    publish(model.get("follow_group"), v, true);
    if (v !== model.get("value")) push(model, "value", v);
  });
  function draw() {
    name.textContent = model.get("description") || "RTG";
    input.min = String(model.get("min")); input.max = String(model.get("max")); input.step = String(model.get("step"));
    if (!dragging) { input.value = String(model.get("value")); out.textContent = show(model.get("value")); }
  }
  return { draw, traits: ["value", "min", "max", "step", "description"] };
});
