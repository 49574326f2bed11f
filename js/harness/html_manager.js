// Test harness (never shipped): renders saved widget state with @jupyter-widgets/html-manager and
// anywidget's own front-end, the widget manager of nbconvert / Sphinx pages (a stand-in for the other
// managers dtwidgets meets: VS Code's and Colab's are not installable here). Built by build_harness.mjs.
import "./define_shim.js";
import "anywidget";
import * as base from "@jupyter-widgets/base";
import { HTMLManager } from "@jupyter-widgets/html-manager";

const anywidget = globalThis.__anywidgetFactory(base);
delete globalThis.define;
window.dtwBase = base;  // tests spy on WidgetModel.prototype.send (html-manager has no kernel to send to)

/** Render `views` ([[model_id, element], ...]) of `state` (a widget-state+json object); resolves to the manager. */
window.dtwRender = async (state, views) => {
  const manager = new HTMLManager({
    loader: async (name) => {
      if (name === "anywidget") return anywidget;
      throw new Error(`harness: no module ${name}`);
    },
  });
  const models = await manager.set_state(state);
  for (const [id, el] of views) {
    const model = models.find((m) => m.model_id === id);
    if (!model) throw new Error(`harness: no model ${id}`);
    await manager.display_view(await manager.create_view(model), el);
  }
  window.dtwManager = manager;
  return models.length;
};
