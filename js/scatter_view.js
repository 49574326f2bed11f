// ScatterView: N points in 2-D or 3-D (PCA coordinates...), coloured by a concept, with a scree plot.
// 3-D points are rotated by (yaw, pitch) and drawn in orthographic projection, far points first;
// dragging rotates (yaw / pitch are synced back). Hover shows the nearest point's label and values;
// click selects it (selected = index). Test hooks: the canvas' data-drawn (points drawn) and
// data-map = "cx,cy,scale,centre..." (screen = (cx + scale*u, cy - scale*v) of the projected point).
import { widget } from "./lib/widget.js";
import { decode, finiteRange } from "./lib/arrays.js";
import { h, nth, fmt, push, label } from "./lib/dom.js";
import { sized, pos, fitText } from "./lib/canvas.js";
import { sequential, css, pal } from "./lib/colors.js";

const W0 = 420, H0 = 380, PAD = 18, GREY = "#b0b0b0";

/** Rotate point (x, y, z) by yaw (around the vertical axis) then pitch; returns [u, v, depth]. */
function rotate(x, y, z, yaw, pitch) {
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
  return [x1, cp * y - sp * z1, sp * y + cp * z1];
}

export default widget("dtw-scatter", ({ model, body, tip, noData, avail }) => {
  const title = h("div", { class: "dtw-title" });
  const cv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-scatter-plot", style: { cursor: "crosshair", touchAction: "none" } }));
  const legend = h("div", { class: "dtw-legend" });
  const scv = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dtw-scree" }));
  const note = h("div", { class: "dtw-note" });
  body.append(title, cv, legend, scv, note);
  let P = null, N = 0, D = 0, colour = null, xy = new Float32Array(0), geo = { cx: 0, cy: 0, s: 1, w: W0 };
  let scree = null, sgeo = { x: 0, w: 0, n: 0 };
  const pl = (i) => nth(model.get("point_labels"), i, (k) => `point ${k}`);
  const al = (d) => nth(model.get("axis_labels"), d, (k) => `axis ${k + 1}`);

  function pointColour(i) {
    if (!colour || !colour.data.length) return pal(0);
    const v = colour.data[i];
    if (!Number.isFinite(v)) return GREY;
    const classes = model.get("colour_classes") || [];
    if (classes.length) return pal(Math.round(v));
    const [lo, hi] = colour.range;
    return css(sequential(0.15 + 0.85 * (hi > lo ? (v - lo) / (hi - lo) : 0.5)));
  }

  function drawLegend() {
    legend.replaceChildren();
    const classes = model.get("colour_classes") || [], name = model.get("colour_name") || "";
    if (!colour || !colour.data.length) return;
    if (name) legend.append(h("span", { text: name + ":" }));
    if (classes.length) {
      classes.forEach((c, k) => legend.append(h("span", {}, [h("span", { class: "dtw-sw", style: { background: pal(k) } }), label(c, 140)])));
    } else {
      const [lo, hi] = colour.range;
      legend.append(h("span", {}, [h("span", { class: "dtw-sw", style: { background: css(sequential(0.15)) } }), h("span", { text: fmt(lo) })]),
        h("span", {}, [h("span", { class: "dtw-sw", style: { background: css(sequential(1)) } }), h("span", { text: fmt(hi) })]));
    }
  }

  function project() {
    const yaw = D === 3 ? Number(model.get("yaw")) || 0 : 0, pitch = D === 3 ? Number(model.get("pitch")) || 0 : 0;
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) {
      const v = P.data[i * D + d];
      if (Number.isFinite(v)) { lo[d] = Math.min(lo[d], v); hi[d] = Math.max(hi[d], v); }
    }
    const mid = [0, 1, 2].map((d) => (d < D && hi[d] >= lo[d] ? (lo[d] + hi[d]) / 2 : 0));
    const half = Math.max(1e-12, ...[0, 1, 2].map((d) => (d < D && hi[d] >= lo[d] ? (hi[d] - lo[d]) / 2 : 0)));
    const uvd = new Float32Array(N * 3);
    for (let i = 0; i < N; i++) {
      const c = [0, 1, 2].map((d) => (d < D ? (P.data[i * D + d] - mid[d]) / half : 0));
      const r = D === 3 ? rotate(c[0], c[1], c[2], yaw, pitch) : [c[0], c[1], 0];
      uvd.set(r, i * 3);
    }
    return { uvd, mid, half };
  }

  function draw() {
    P = decode(model.get("points"));
    const t = model.get("title") || "";
    title.textContent = t; title.style.display = t ? "" : "none";
    if (P.size === 0) { P = null; return noData(); }
    if (P.shape.length !== 2 || (P.shape[1] !== 2 && P.shape[1] !== 3)) { P = null; return noData(`points must be [N, 2] or [N, 3], got [${P.shape.join(", ")}]`); }
    [N, D] = P.shape;
    const c = decode(model.get("colour"));
    colour = c.size ? { data: c.data, range: finiteRange(c.data) || [0, 1] } : null;
    drawLegend();
    const w = avail(W0), hh = Math.min(H0, w), size = model.get("point_size") | 0 || 4;
    const ctx = sized(cv, w, hh);
    const { uvd, mid, half } = project();
    const s = (Math.min(w, hh) / 2 - PAD) / (D === 3 ? Math.SQRT2 : 1);
    geo = { cx: w / 2, cy: hh / 2, s, w };
    ctx.strokeStyle = "#ddd"; ctx.strokeRect(0.5, 0.5, w - 1, hh - 1);
    drawAxes(ctx);
    const order = [...Array(N).keys()].sort((a, b) => uvd[a * 3 + 2] - uvd[b * 3 + 2]);
    xy = new Float32Array(N * 2).fill(NaN);
    const sel = model.get("selected") | 0;
    let drawn = 0;
    for (const i of order) {
      const x = geo.cx + s * uvd[i * 3], y = geo.cy - s * uvd[i * 3 + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xy[i * 2] = x; xy[i * 2 + 1] = y;
      ctx.beginPath(); ctx.arc(x, y, i === sel ? size + 2 : size, 0, 2 * Math.PI);
      ctx.fillStyle = pointColour(i); ctx.fill();
      ctx.lineWidth = i === sel ? 2.5 : 0.6; ctx.strokeStyle = i === sel ? "#111" : "rgba(0,0,0,0.45)"; ctx.stroke(); // a dark ring: no palette colour
      drawn++;
    }
    cv.dataset.drawn = String(drawn);
    cv.dataset.map = [geo.cx, geo.cy, s, ...mid, half].join(",");
    note.textContent = (drawn < N ? `${N - drawn} point(s) with non-finite coordinates not drawn. ` : "") +
      (D === 3 ? "drag to rotate" : "");
    drawScree();
  }

  function drawAxes(ctx) {
    ctx.save(); ctx.font = "11px sans-serif"; ctx.fillStyle = "#444"; ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    const yaw = D === 3 ? Number(model.get("yaw")) || 0 : 0, pitch = D === 3 ? Number(model.get("pitch")) || 0 : 0;
    for (let d = 0; d < D; d++) {
      const e = [0, 0, 0]; e[d] = 1;
      const [u, v] = D === 3 ? rotate(e[0], e[1], e[2], yaw, pitch) : [e[0], e[1]];
      const x = geo.cx + geo.s * u, y = geo.cy - geo.s * v;
      ctx.beginPath(); ctx.moveTo(geo.cx, geo.cy); ctx.lineTo(x, y); ctx.stroke();
      const text = fitText(ctx, al(d), 110), tw = ctx.measureText(text).width;
      ctx.textAlign = "left"; // kept inside the canvas: a label at the plot's edge is moved in, not cut
      const tx = u >= 0 ? Math.min(x + 3, geo.w - tw - 2) : Math.max(x - 3 - tw, 2);
      ctx.fillText(text, tx, y + (v >= 0 ? -4 : 10));
    }
    ctx.restore();
  }

  function drawScree() {
    const sc = decode(model.get("scree"));
    scree = sc.size ? sc.data : null;
    if (!scree) { scv.style.display = "none"; return; }
    scv.style.display = "";
    const n = Math.min(scree.length, 30), w = geo.w, hh = 90, x0 = 36, bw = (w - x0 - 6) / n;
    const ctx = sized(scv, w, hh);
    const top = Math.max(1e-12, ...Array.from(scree.slice(0, n)).filter(Number.isFinite));
    ctx.font = "10px sans-serif"; ctx.fillStyle = "#444"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ctx.fillText(fmt(top), x0 - 4, 10); ctx.fillText("0", x0 - 4, hh - 16);
    for (let k = 0; k < n; k++) {
      const v = Number.isFinite(scree[k]) ? scree[k] : 0, bh = (v / top) * (hh - 28);
      ctx.fillStyle = k < D ? pal(0) : "#9db4cf";
      ctx.fillRect(x0 + k * bw + 1, hh - 16 - bh, Math.max(1, bw - 2), bh);
    }
    ctx.fillStyle = "#444"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.fillText("scree: explained variance per component", x0 + (w - x0) / 2, hh - 12);
    sgeo = { x: x0, w: bw, n };
  }

  const nearest = (e) => {
    const [px, py] = pos(cv, e), r = ((model.get("point_size") | 0) || 4) + 4;
    let best = -1, bd = r * r;
    for (let i = 0; i < N; i++) {
      const dx = xy[i * 2] - px, dy = xy[i * 2 + 1] - py, d2 = dx * dx + dy * dy;
      if (d2 <= bd) { bd = d2; best = i; }
    }
    return best;
  };
  let drag = null, dragged = false;
  cv.addEventListener("pointerdown", (e) => { if (D === 3) drag = { x: e.clientX, y: e.clientY, yaw: +model.get("yaw"), pitch: +model.get("pitch"), moved: false }; });
  window.addEventListener("pointerup", () => {
    dragged = !!(drag && drag.moved);
    if (dragged) { model.set("yaw", Number(model.get("yaw"))); push(model, "pitch", Number(model.get("pitch"))); }
    drag = null;
  });
  cv.addEventListener("pointermove", (e) => {
    if (drag && (e.buttons & 1)) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      model.set("yaw", drag.yaw + dx * 0.01);
      model.set("pitch", Math.max(-1.55, Math.min(1.55, drag.pitch + dy * 0.01)));
      tip.hide();
      return draw();
    }
    const i = P ? nearest(e) : -1;
    if (i < 0) return tip.hide();
    const lines = [pl(i)];
    for (let d = 0; d < D; d++) lines.push(`${al(d)}: ${fmt(P.data[i * D + d], 4)}`);
    if (colour && colour.data.length) {
      const classes = model.get("colour_classes") || [], name = model.get("colour_name") || "colour";
      const v = colour.data[i];
      lines.push(`${name}: ${classes.length && Number.isFinite(v) ? nth(classes, Math.round(v), String) : fmt(v, 4)}`);
    }
    tip.show(e, lines);
  });
  cv.addEventListener("mouseleave", () => tip.hide());
  cv.addEventListener("click", (e) => { if (dragged) { dragged = false; return; } const i = P ? nearest(e) : -1; if (i >= 0) push(model, "selected", i); });
  scv.addEventListener("mousemove", (e) => {
    const [px] = pos(scv, e), k = Math.floor((px - sgeo.x) / (sgeo.w || 1));
    if (!scree || k < 0 || k >= sgeo.n) return tip.hide();
    tip.show(e, [`component ${k + 1}`, `explained: ${fmt(scree[k], 4)}`]);
  });
  scv.addEventListener("mouseleave", () => tip.hide());
  return { draw, traits: ["points", "point_labels", "colour", "colour_classes", "colour_name", "axis_labels", "scree", "title", "selected", "yaw", "pitch", "point_size"] };
});
