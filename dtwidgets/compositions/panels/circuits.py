"""The Explorer's "QK / OV circuits" tab: one head's QK and OV maps at the state shown and the state
embedding's projection along the pair (the :class:`HeadCircuits` and :class:`StateEmbedding` extras);
channels the model never reads are greyed."""
from __future__ import annotations

import ipywidgets as W

from ...analysis import _common as C
from ...analysis.ids import head_id
from ...analysis.extras import HeadCircuits, StateEmbedding
from ...widgets import ChannelHeatmap
from ..channel_use import ChannelUse
from ..updates import assign
from .base import Panel, esc


class CircuitsPanel(Panel):
    key, title = "circuits", "QK / OV circuits"

    def __init__(self, ctx):
        super().__init__(ctx)
        L, H = C.n_layers(ctx.adapter), C.n_heads(ctx.adapter)
        self.head = W.Dropdown(options=[(head_id(l, h).name, (l, h)) for l in range(L) for h in range(H)], description="head")
        self.head.observe(self._on_head, names="value")
        agent = ctx.adapter.schema.agent_cell
        self.qk = ChannelHeatmap(agent_cell=agent)
        self.ov = ChannelHeatmap(agent_cell=agent)
        self.emb = ChannelHeatmap(agent_cell=agent)
        self.qk_note, self.ov_note, self.emb_note = W.HTML(), W.HTML(), W.HTML()
        self.widget.children = [self.head, self.qk_note, self.qk, self.ov_note, self.ov, self.emb_note, self.emb]
        self._data = None
        self._emb_pair = None
        self._emb_exact = True
        self._unused: set[int] = set()
        self._use = ChannelUse(ctx.adapter)

    def wanted(self) -> list:
        l, h = self.head.value
        return [HeadCircuits(l, h)] + ([StateEmbedding()] if self._emb_stale() else [])

    def _emb_stale(self) -> bool:
        """The pair changed, or the map is a nonlinear state encoder's Jacobian (it follows the state shown)."""
        return self._emb_pair != self.ctx.pair or not self._emb_exact

    def _embedding(self, data):
        """State-embedding projection along the current pair (weights only; redrawn when the pair changes)."""
        if not self._emb_stale():
            return
        self._emb_pair = self.ctx.pair
        self._proj = e = data.result(StateEmbedding())
        self._emb_exact = e.exact
        assign(self.emb, values=e.values, titles=self._titles(e.channel_names))
        self._emb_text = (f"<b>state embedding · ({esc(e.pair_label)})</b> — how much one unit of each input "
                          "feature pushes the preference " + ("(weights only)" if e.exact else f"({esc(e.note)})"))
        self.emb_note.value = self._emb_text + self._unused_note(e.channel_names)

    def _note_inputs(self, window) -> None:
        """Flag channels the model never uses (see :class:`~.channel_use.ChannelUse`): greyed maps, titles, a note."""
        unused = set(self._use.update(window))
        if unused != self._unused:
            self._unused = unused
            e = self._proj
            assign(self.emb, titles=self._titles(e.channel_names), unused=sorted(unused))
            self.emb_note.value = self._emb_text + self._unused_note(e.channel_names)

    def _titles(self, names) -> list[str]:
        return [f"{n} (unused)" if c in self._unused else str(n) for c, n in enumerate(names)]

    def _unused_note(self, names) -> str:
        if not self._unused:
            return ""
        used = ", ".join(esc(names[c]) for c in sorted(self._unused))
        return (f"<br><span style='color:#8a5a00'>unused: {used} — the input was 0 in every observation seen so far "
                "(or its embedding weights are ≈ 0), so the model never reads it here and its maps carry no "
                "meaning</span>")

    def update(self, data):
        self._data = data
        self._embedding(data)
        self._note_inputs(data.window)
        self._draw()

    def _on_head(self, _change):
        self._draw()

    def _draw(self):
        if self._data is None:
            return
        l, h = self.head.value
        maps = self._data.result(HeadCircuits(l, h))
        q, o = maps.qk, maps.ov
        assign(self.qk, values=q.values, titles=self._titles(q.channel_names), unused=sorted(self._unused))
        assign(self.ov, values=o.values, titles=self._titles(o.channel_names), unused=sorted(self._unused))
        att = "" if q.attention is None else f" (attention now {q.attention:.2f})"
        key = self._data.token_labels[q.key_token] if q.key_token is not None else q.key  # named by episode step
        self.qk_note.value = (f"<b>QK L{l}H{h}</b>: <span title='{esc(q.terms)}'>how strongly the state at each cell "
                              f"makes this head attend to {esc(key)}{att} <u>formula</u></span>")
        self.ov_note.value = (f"<b>OV L{l}H{h}</b>: <span title='{esc(o.terms)}'>if this head copies the state at a cell, "
                              f"how much that pushes {esc(o.pair_label)} <u>formula</u></span>")
