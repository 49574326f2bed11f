"""The Explorer's "Attention" tab: every head's pattern, tokens named by episode step."""
from __future__ import annotations

from ...widgets import AttentionView
from ..token_names import token_names
from ..updates import assign
from .base import Panel, note


class AttentionPanel(Panel):
    key, title = "attention", "Attention"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = AttentionView()
        self.widget.children = [note("rows: the query token, columns: the key token it attends to; tokens are labelled by episode step "
                                      "(s₉ = the state after 9 steps). Pick a head for its labelled pattern."), self.view]

    def update(self, data):
        at = data.state.attention
        labels, steps = token_names(data, at.token_labels, self.ctx.adapter)
        assign(self.view, patterns=at.values, head_labels=at.head_labels, token_labels=labels, steps=steps)
