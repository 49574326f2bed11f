// Runtime of the self-contained static HTML export (dtwidgets.widgets.export.to_html).
// Reads each <script data-dtw-page type="application/json">{modules, models, tree | trees}</script>,
// imports each widget ESM from a Blob URL, builds a tiny Backbone-like model per widget and
// calls the anywidget render({model, el}). No network; a minimal widget manager resolves a widget
// reference ("IPY_MODEL_<id>", e.g. StatusLine.preferences) to another model of the page.

/** Decode base64 into a DataView. */
function b64(s) {
  const bin = atob(s), u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  return new DataView(u.buffer);
}

/** Minimal anywidget model: get/set/on/off/save_changes/send. Saved changes are logged.
 * `models` (id -> model) backs widget_manager.get_model. */
function makeModel(id, state, models) {
  const attrs = { ...state }, ev = new Map();
  const emit = (name, ...a) => (ev.get(name) || []).slice().forEach((cb) => { try { cb(...a); } catch (e) { console.error(e); } });
  const log = (window.__dtw_saved = window.__dtw_saved || []);
  const model = {
    get: (k) => attrs[k],
    set(k, v) {
      const old = attrs[k];
      attrs[k] = v;
      if (old !== v) { emit("change:" + k, model, v); emit("change", model); }
    },
    on(name, cb) { for (const n of name.split(/\s+/)) { if (!ev.has(n)) ev.set(n, []); ev.get(n).push(cb); } },
    off(name, cb) {
      for (const n of name ? name.split(/\s+/) : [...ev.keys()]) {
        if (!cb) ev.delete(n); else ev.set(n, (ev.get(n) || []).filter((f) => f !== cb));
      }
    },
    save_changes() { log.push({ id, state: { ...attrs } }); },
    send(content) { log.push({ id, msg: content }); },
    widget_manager: {
      noKernel: true,  // a static page: nothing answers save_changes (RTGSlider returns on release)
      async get_model(ref) {
        if (!Object.prototype.hasOwnProperty.call(models, ref)) throw new Error(`no widget ${String(ref)} in this page`);
        return models[ref];
      },
    },
  };
  return model;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// Tags an exported ipywidgets.HTML value may contain (sanitised in Python, see _safe_html.py).
const SAFE_TAGS = new Set(["b", "i", "em", "strong", "u", "code", "pre", "br", "span", "small",
  "sub", "sup", "div", "p", "h3", "h4", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"]);

/** Build sanitised HTML nodes (strings = text, [tag, children] = element) as DOM: text nodes and
 * attribute-free elements only, never innerHTML. A tag outside SAFE_TAGS is shown as text. */
function appendSafe(parent, nodes) {
  for (const n of nodes) {
    if (typeof n === "string") parent.appendChild(document.createTextNode(n));
    else if (Array.isArray(n) && SAFE_TAGS.has(n[0])) {
      const e = document.createElement(n[0]);
      appendSafe(e, Array.isArray(n[1]) ? n[1] : []);
      parent.appendChild(e);
    } else parent.appendChild(document.createTextNode(String(n)));
  }
}

async function buildPage(script) {
  const data = JSON.parse(script.textContent);
  const mods = {};
  for (const [name, src] of Object.entries(data.modules)) {
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    mods[name] = import(url);
  }
  const models = {};
  window.__dtw_models = models;  // the last page built (tests and debugging)
  for (const [id, m] of Object.entries(data.models)) {  // every model first: a widget may reference another
    const state = m.state;
    m.buffer_paths.forEach((p, i) => {
      let o = state;
      for (let j = 0; j < p.length - 1; j++) o = o[p[j]];
      o[p[p.length - 1]] = b64(m.buffers[i]);
    });
    models[id] = makeModel(id, state, models);
  }
  async function build(node, parent) {
    if (node.type === "box") {
      const d = el("div", "dtw-x-box dtw-x-" + node.dir);
      parent.appendChild(d);
      for (const c of node.children) await build(c, d);
    } else if (node.type === "tabs") {
      const d = el("div", "dtw-x-tabs");
      parent.appendChild(d);
      for (let i = 0; i < node.children.length; i++) {
        const sec = el("section", "dtw-x-tab");
        sec.appendChild(el("h3", "dtw-x-tabtitle", node.titles[i] || `Tab ${i + 1}`));
        d.appendChild(sec);
        await build(node.children[i], sec);
      }
    } else if (node.type === "widget") {
      const model = models[node.id];
      const host = el("div", "dtw-x-widget");
      host.dataset.widget = node.module;
      host.dataset.modelId = node.id;
      parent.appendChild(host);
      try {
        const mod = await mods[node.module];
        const def = mod.default || mod;
        if (def.initialize) await def.initialize({ model });
        await def.render({ model, el: host });
      } catch (e) {
        console.error(e);
        host.appendChild(el("pre", "dtw-x-error", `failed to render ${node.module}: ${e}`));
      }
    } else if (node.type === "html") {
      const d = el("div", "dtw-x-html");
      appendSafe(d, node.nodes || []);
      parent.appendChild(d);
    } else {
      parent.appendChild(el("div", "dtw-x-text", node.text));
    }
  }
  const roots = rootsOf(script, data);
  for (let i = 0; i < roots.length; i++) {
    await build(data.trees ? data.trees[i] : data.tree, roots[i]);
    roots[i].dataset.dtwReady = "1";
  }
  script.dataset.dtwReady = "1";
}

/** A page's root is the element just before its data (found without ids: one page pasted twice works).
 * A page with `trees` (a notebook page: one tree per widget output) has one root per tree, the
 * elements `.dtw-x-root[data-dtw-of=<its page id>]` in document order. */
function rootsOf(script, data) {
  if (data.trees) {
    const page = script.dataset.dtwPage;
    const roots = [...document.querySelectorAll(".dtw-x-root")].filter((r) => r.dataset.dtwOf === page);
    if (roots.length !== data.trees.length) throw new Error(`dtwidgets page: ${data.trees.length} widget outputs but ${roots.length} roots`);
    return roots;
  }
  const r = script.previousElementSibling;
  if (!r || !r.classList.contains("dtw-x-root")) throw new Error("dtwidgets page: its root element is missing");
  return [r];
}

// Every page on this document (two pasted pages each carry their own data and root, and each its
// own copy of this runtime): each is built once, by whichever runtime finds it first.
async function main() {
  const pages = [...document.querySelectorAll("script[data-dtw-page]")].filter((s) => !s.dataset.dtwTaken);
  pages.forEach((s) => { s.dataset.dtwTaken = "1"; });
  for (const s of pages) await buildPage(s);
  const all = [...document.querySelectorAll("script[data-dtw-page]")];
  if (all.every((s) => s.dataset.dtwReady)) document.body.dataset.dtwReady = "1";  // the last runtime to finish says so
}

main().catch((e) => {
  console.error(e);
  document.body.appendChild(el("pre", "dtw-x-error", String(e)));
  document.body.dataset.dtwReady = "error";
});
