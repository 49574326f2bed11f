// UpdateFeed: applies the updates of many widgets that the kernel sent as ONE custom message
// (dtwidgets/widgets/feed.py). Never displayed; it works from `initialize`.
// Trait: targets ["IPY_MODEL_<id>", ...], the models this feed may update (only ever grows; "" = a
// target closed in the kernel, kept so that indices do not move).
// Kernel message: {u: [[i, keys, state?], ...]} + buffers, one per entry of every `keys`, in order:
//   `keys` are the traits of target i whose values are the next buffers, `state` (optional) the JSON
//   part of its update.
// Each part is applied with the target model's set_state, as a kernel "update" comm message is
// (change events; nothing echoed back), queued behind that model's pending updates.
// Sends {ready: n} once the first n targets are resolved; the kernel feeds only those.

function apply(m, state) {
  const run = () => {
    try { m.set_state(state); } catch (e) { console.error("dtwidgets feed", e); }
  };
  if (m.state_change instanceof Promise) m.state_change = m.state_change.then(run);
  else run();
}

/** Say once per page that this front-end cannot resolve the feed's targets (updates go widget by widget). */
function fallback(e) {
  if (globalThis.__dtwFeedFallback) return;
  globalThis.__dtwFeedFallback = String((e && e.message) || e);
  console.warn("dtwidgets: this front-end cannot look up other widgets (widget_manager.get_model: "
    + globalThis.__dtwFeedFallback + "); each widget gets its own updates instead of one message per refresh");
}

export default {
  initialize({ model }) {
    let targets = [], generation = 0;
    const resolve = () => {
      const mine = ++generation;
      const refs = model.get("targets") || [];
      // "" marks a target closed in the kernel (never fed again); any other target must resolve
      const get = (r) => (r ? model.widget_manager.get_model(String(r).replace(/^IPY_MODEL_/, "")) : null);
      // a front-end without widget_manager.get_model, or whose get_model throws or rejects, never says
      // ready: the kernel then sends every update the ordinary way (said once per page, not an error)
      Promise.resolve().then(() => Promise.all(refs.map(get))).then((ms) => {
        if (mine !== generation || !ms.every((m, i) => (refs[i] ? m && typeof m.set_state === "function" : !m))) return;
        targets = ms;
        model.send({ ready: ms.length });
      }, (e) => fallback(e));
    };
    model.on("change:targets", resolve);
    model.on("msg:custom", (msg, buffers) => {
      if (!msg || !Array.isArray(msg.u)) return;
      let j = 0;
      for (const [i, keys, state] of msg.u) {
        const s = { ...(state || {}) };
        for (const k of keys) s[k] = buffers[j++];  // as an "update" message delivers them (the widgets decode any view)
        if (targets[i]) apply(targets[i], s);
        else console.error(`dtwidgets feed: no target ${i}`);
      }
    });
    resolve();
  },
  render() {},
};
