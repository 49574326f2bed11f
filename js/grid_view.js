// GridView: MiniGrid state from its integer encoding.
// Traits: grid uint8 [W, H, 3] (object, colour, state) indexed [x, y, :], agent_pos [x, y] | null,
// agent_dir 0..3 | null, view_size, mode "full"|"partial"|"channels", selected_cell [x, y] | null,
// editable, edit_tool, cell_size (CSS px, 0 = auto), image uint8 [H, W, 3] (pixels: drawn as an image
// instead of the grid when not empty, never as codes), bindings {key: action name} (shown as a legend).
// A full grid with agent_pos null draws the agent from its own cell (object agent, state = direction).
// Messages to Python (model.send): {event: "click", x, y, tool} after every cell click (also repeated
// clicks on the same cell; tool = the edit tool's name in edit mode, else null: an edit is an intent that
// Python applies, the grid is never edited here), {event: "key", key, shift, ctrl, alt} for KEYS / letters / digits pressed
// while the widget root has focus (tabindex=0; a click focuses it).
import { widget } from "./lib/widget.js";
import { decode } from "./lib/arrays.js";
import { eventTarget, h, label, push } from "./lib/dom.js";
import { sized, pos, outline } from "./lib/canvas.js";
import { MG_OBJECT_NAMES, MG_COLOR_NAMES, MG_STATE_NAMES, MG_COLORS, css, ink } from "./lib/colors.js";
import { tile, agent, viewTopLeft, BG_SEEN, BG_UNSEEN, LAVA } from "./lib/minigrid.js";

const NAMES = [MG_OBJECT_NAMES, MG_COLOR_NAMES, MG_STATE_NAMES];
const CH_TITLES = ["object", "colour", "state"];
const KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Enter", "Backspace"];
/** Name sent to Python for a handled key ("Space" for " "), else null. @param {KeyboardEvent} e */
const ARROWS = { ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→", Space: "space", Enter: "enter" };
const keyName = (e) => (e.key === " " ? "Space" : KEYS.includes(e.key) || /^[a-z0-9]$/i.test(e.key) ? e.key : null);

/** Pale background per channel value for the "channels" mode. */
function chColor(ch, v) {
  if (ch === 0) {
    const base = { 0: [0, 0, 0], 1: [40, 40, 40], 2: [100, 100, 100], 8: [0, 200, 0], 9: LAVA, 10: [255, 0, 0] }[v];
    if (base) return base;
    return [90 + ((v * 53) % 120), 90 + ((v * 97) % 120), 150];
  }
  if (ch === 1) return MG_COLORS[v] || [255, 0, 255];
  return [[235, 235, 235], [180, 180, 180], [110, 110, 110]][v] || [255, 0, 255];
}

export default widget("dtw-gridview", ({ model, root, body, tip, noData, redraw }) => {
  const caption = h("div", { class: "dtw-controls" });
  const main = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-grid" }));
  const chWrap = h("div", { class: "dtw-panels" });
  const chCanvases = CH_TITLES.map((t) => {
    const c = h("canvas", { class: "dtw-ch" });
    chWrap.appendChild(h("div", { class: "dtw-panel" }, [h("div", { class: "dtw-ptitle", text: t }), c]));
    return /** @type {HTMLCanvasElement} */ (c);
  });
  const legend = h("div", { class: "dtw-legend dtw-keys" });  // the key map (one class per rule: no sheet-order dependence)
  body.append(caption, main, chWrap, legend);
  let G = null, W = 0, H = 0, cs = 32, IMG = null;

  const cell = (x, y) => { const i = (x * H + y) * 3; return [G.data[i], G.data[i + 1], G.data[i + 2]]; };
  const agentInfo = () => {
    const p = model.get("agent_pos"), d = model.get("agent_dir");
    if (Array.isArray(p) && p.length === 2) return [p[0] | 0, p[1] | 0, d == null ? 0 : d | 0];
    if (model.get("mode") === "partial") return [Math.floor(W / 2), H - 1, d == null ? 3 : d | 0];
    return null;
  };
  const autoSize = (n, lo, hi, total) => Math.max(lo, Math.min(hi, Math.floor(total / n)));

  function drawMain() {
    const ctx = sized(main, W * cs, H * cs);
    main.dataset.cell = String(cs);
    const ag = agentInfo(), vs = Math.max(1, model.get("view_size") | 0);
    const inView = (x, y) => {
      if (!ag || model.get("mode") !== "full" || !Array.isArray(model.get("agent_pos"))) return false;
      const [tx, ty] = viewTopLeft(ag[0], ag[1], ag[2], vs);
      return x >= tx && x < tx + vs && y >= ty && y < ty + vs;
    };
    for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) {
      const [o, c, s] = cell(x, y), X = x * cs, Y = y * cs;
      ctx.fillStyle = o === 0 ? BG_UNSEEN : inView(x, y) ? "#4a4a4a" : BG_SEEN;
      ctx.fillRect(X, Y, cs, cs);
      tile(ctx, X, Y, cs, o, c, s);
      if (o !== 0) { ctx.strokeStyle = "rgba(110,110,110,0.9)"; ctx.lineWidth = 1; ctx.strokeRect(X + 0.5, Y + 0.5, cs - 1, cs - 1); }
    }
    if (ag && ag[0] >= 0 && ag[0] < W && ag[1] >= 0 && ag[1] < H) agent(ctx, ag[0] * cs, ag[1] * cs, cs, ag[2]);
    const sel = model.get("selected_cell");
    if (Array.isArray(sel) && sel.length === 2) outline(ctx, sel[0] * cs, sel[1] * cs, cs, cs, "#00e5ff", Math.max(2, cs / 12));
  }

  function drawChannels() {
    const c = autoSize(Math.max(W, H), 10, 26, 200);
    chCanvases.forEach((cv, ch) => {
      const ctx = sized(cv, W * c, H * c);
      cv.dataset.cell = String(c);
      ctx.font = `${Math.max(7, Math.round(c * 0.5))}px sans-serif`;
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) {
        const v = cell(x, y)[ch], bg = chColor(ch, v);
        ctx.fillStyle = css(bg); ctx.fillRect(x * c, y * c, c, c);
        ctx.strokeStyle = "rgba(128,128,128,0.6)"; ctx.strokeRect(x * c + 0.5, y * c + 0.5, c - 1, c - 1);
        ctx.fillStyle = ink(bg); ctx.fillText(String(v), x * c + c / 2, y * c + c / 2 + 0.5);
      }
    });
  }

  function drawLegend() {
    const b = model.get("bindings") || {};
    const parts = Object.entries(b).map(([k, a]) => `${ARROWS[k] ?? k} ${a}`);
    legend.style.display = parts.length ? "" : "none";
    legend.replaceChildren(h("span", { text: parts.length ? "keys: " + parts.join(" · ") : "" }));
  }

  /** Pixels [H, W, 3] drawn as an image (nearest-neighbour scaled). */
  function drawImage(P) {
    const [ih, iw] = P.shape, s = (model.get("cell_size") | 0) || Math.max(1, Math.floor(336 / Math.max(ih, iw)));
    const ctx = sized(main, iw * s, ih * s);
    main.dataset.cell = String(s);
    main.dataset.kind = "pixels";
    for (let y = 0; y < ih; y++) for (let x = 0; x < iw; x++) {
      const i = (y * iw + x) * 3;
      ctx.fillStyle = `rgb(${P.data[i]},${P.data[i + 1]},${P.data[i + 2]})`;
      ctx.fillRect(x * s, y * s, s, s);
    }
  }

  function draw() {
    drawLegend();
    const P = decode(model.get("image"));
    IMG = P.size > 0 && P.shape.length === 3 && P.shape[2] === 3 ? P : null;
    if (IMG) {
      G = null;
      main.style.display = ""; chWrap.style.display = "none"; caption.style.display = "none";
      return drawImage(IMG);
    }
    main.dataset.kind = "grid";
    const A = decode(model.get("grid"));
    G = null;
    if (A.size === 0) return noData("no data");
    if (A.shape.length !== 3 || A.shape[2] !== 3) return noData(`grid must have shape [W, H, 3], got [${A.shape.join(", ")}]`);
    G = A; [W, H] = A.shape;
    const mode = model.get("mode");
    cs = (model.get("cell_size") | 0) || autoSize(Math.max(W, H), 12, 48, 336);
    main.style.display = mode === "channels" ? "none" : "";
    chWrap.style.display = mode === "channels" ? "" : "none";
    // a full grid always keeps the edit caption's line (hidden when not editing): entering edit mode
    // never moves the grid under the pointer; the agent's view and channel maps are never edited
    const ed = model.get("editable");
    caption.style.display = ed || mode === "full" ? "" : "none";
    caption.style.visibility = ed ? "" : "hidden";
    caption.replaceChildren(h("span", { text: "edit tool:" }), label(String(model.get("edit_tool")), 120),
      h("span", { text: "(click a cell to place / clear)" }));
    mode === "channels" ? drawChannels() : drawMain();
  }

  /** Cell under the mouse for a canvas (cell size from data-cell). */
  const hit = (cv, e) => {
    const c = Number(cv.dataset.cell) || cs, [px, py] = pos(cv, e);
    const x = Math.floor(px / c), y = Math.floor(py / c);
    return G && x >= 0 && y >= 0 && x < W && y < H ? [x, y] : null;
  };
  /** Hover lines of a cell: an unseen / empty cell (object 0 / 1) has no colour or state, so only its object. */
  const describe = (x, y) => {
    const v = cell(x, y), lines = v.map((n, i) => `${CH_TITLES[i]}: ${n} ${NAMES[i][n] ?? "?"}`);
    return [`(x=${x}, y=${y})`, ...(v[0] <= 1 ? lines.slice(0, 1) : lines)];
  };
  const pixelAt = (e) => {
    const s = Number(main.dataset.cell) || 1, [px, py] = pos(main, e), x = Math.floor(px / s), y = Math.floor(py / s);
    const [ih, iw] = IMG.shape;
    if (x < 0 || y < 0 || x >= iw || y >= ih) return null;
    const i = (y * iw + x) * 3;
    return [`pixel (x=${x}, y=${y})`, `rgb ${IMG.data[i]}, ${IMG.data[i + 1]}, ${IMG.data[i + 2]}`];
  };
  const onMove = (cv) => (e) => {
    if (IMG) { const t = pixelAt(e); return t ? tip.show(e, t) : tip.hide(); }
    const p = hit(cv, e); p ? tip.show(e, describe(...p)) : tip.hide();
  };
  const onClick = (cv) => (e) => {
    if (IMG) return;
    const p = hit(cv, e);
    if (!p) return;
    const [x, y] = p, tool = model.get("editable") ? String(model.get("edit_tool")) : null;
    push(model, "selected_cell", [x, y]);
    model.send({ event: "click", x, y, tool });  // an edit is an intent: Python applies it and redraws
    root.focus({ preventScroll: true });
    tip.hide();  // the focusing click starts play: a card left there would cover the agent
  };
  for (const cv of [main, ...chCanvases]) {
    cv.addEventListener("mousemove", onMove(cv));
    cv.addEventListener("mouseleave", () => tip.hide());
    cv.addEventListener("click", onClick(cv));
  }
  // Keyboard. Listen on the window in the capture phase so that a handled key reaches us before
  // Jupyter's document-level shortcut handler (capture phase in Notebook 7), then stop it there:
  // otherwise "a", "d d", "0 0", arrows... would act on the notebook. Ctrl/Alt/Meta combinations
  // are reported but not stopped (Ctrl+S etc. keep working); Tab and Escape leave the widget.
  root.tabIndex = 0;
  const win = root.ownerDocument.defaultView || window;
  const onKey = (e) => {
    const key = eventTarget(e) === root ? keyName(e) : null;  // composedPath: also in a shadow root
    if (!key) return;
    tip.hide();  // playing: the card would cover the agent until the pointer moves again
    if (!(e.ctrlKey || e.altKey || e.metaKey)) {
      e.stopPropagation();
      if (key.startsWith("Arrow") || key === "Space") e.preventDefault();
    }
    model.send({ event: "key", key, shift: e.shiftKey, ctrl: e.ctrlKey, alt: e.altKey });
  };
  win.addEventListener("keydown", onKey, true);
  const dispose = () => win.removeEventListener("keydown", onKey, true);
  return { draw, dispose, traits: ["grid", "agent_pos", "agent_dir", "view_size", "mode", "selected_cell", "editable", "edit_tool", "cell_size", "image", "bindings"] };
});
