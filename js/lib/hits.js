// Rectangle hit-testing for canvases with irregular layouts (bars, labels).
import { pos } from "./canvas.js";

/** Keeps a list of hover targets; attach() wires mousemove/leave/click on a canvas. */
export function hits(canvas, tip, onClick) {
  /** @type {{x: number, y: number, w: number, h: number, lines: () => string[], data?: any}[]} */
  let list = [];
  const find = (e) => {
    const [px, py] = pos(canvas, e);
    for (let i = list.length - 1; i >= 0; i--) {
      const r = list[i];
      if (px >= r.x && px < r.x + r.w && py >= r.y && py < r.y + r.h) return r;
    }
    return null;
  };
  canvas.addEventListener("mousemove", (e) => { const r = find(e); r ? tip.show(e, r.lines()) : tip.hide(); });
  canvas.addEventListener("mouseleave", () => tip.hide());
  if (onClick) canvas.addEventListener("click", (e) => { const r = find(e); if (r) onClick(r, e); });
  return {
    reset() { list = []; },
    add(x, y, w, h, lines, data) { list.push({ x, y, w, h, lines, data }); },
  };
}
