"""Structured ids of components and tokens: made next to the data, never parsed back from labels.

A :class:`ComponentId` names one additive term of the residual stream (an embedding term of a
token, a head, an attention bias, an MLP, a neuron, a readout constant). Results carry ids beside
their display labels (``LogitAttribution.ids``, ``RTGScan.ids``, ``AblationResult.ids``); views
build their labels from ids, so a token is called by its episode step (``state embed (s₉)``) with no
string search. User-facing strings (``"L0H1"``, ``"L1MLP"``, ``"L0N12"``) are read by
:func:`~dtwidgets.analysis._common.parse_component`.

Labels are formatted once in Python (:meth:`ComponentId.label`; the views' steps templates in
:func:`dtwidgets.compositions.token_names.component_templates`) and once in the browser
(``js/lib/steps.js`` fills the templates with episode steps).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..adapters.protocol import ModelAdapter
from . import _common as C

COMPONENT_KINDS = ("embed", "head", "attn_bias", "mlp", "neuron", "bias")
"""Kinds of :class:`ComponentId` (``kind``)."""


@dataclass(frozen=True)
class ComponentId:
    """One component of the residual stream.

    Attributes:
        kind: one of :data:`COMPONENT_KINDS`.
        name: its name without the token (``"state embed"``, ``"L0H1"``, ``"L0 b_O"``, ``"L1MLP"``,
            ``"action bias"``).
        layer, index: layer and head / neuron index where they apply (else None).
        token: the window position of the token an embedding term belongs to (else None).
    """

    kind: str
    name: str
    layer: int | None = None
    index: int | None = None
    token: int | None = None

    def label(self, token_labels: Sequence[str]) -> str:
        """The display label with the token named by ``token_labels[token]`` (``state embed (s₁)``)."""
        return self.name if self.token is None else f"{self.name} ({token_labels[self.token]})"


def head_id(layer: int, head: int) -> ComponentId:
    return ComponentId("head", f"L{layer}H{head}", layer, head)


def mlp_id(layer: int) -> ComponentId:
    return ComponentId("mlp", f"L{layer}MLP", layer)


def neuron_id(layer: int, neuron: int) -> ComponentId:
    return ComponentId("neuron", f"L{layer}N{neuron}", layer, neuron)


def stack_ids(adapter: ModelAdapter, pos: int) -> list[ComponentId]:
    """Ids of :func:`~dtwidgets.analysis.component_stack`'s rows at token ``pos``: its token's
    embedding, time and positional terms, every head (layer-major), each layer's ``b_O``, each MLP."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    pos = pos % adapter.layout.n_tokens  # -1 (the last position) and P - 1 are one token
    kind = adapter.layout.kinds[pos]
    ids = [ComponentId("embed", f"{kind} embed", token=pos), ComponentId("embed", "time embed", token=pos),
           ComponentId("embed", "pos embed", token=pos)]
    ids += [head_id(l, h) for l in range(L) for h in range(H)]
    ids += [ComponentId("attn_bias", f"L{l} b_O", l) for l in range(L)]
    return ids + [mlp_id(l) for l in range(L if C.has_mlp(adapter) else 0)]


def readout_ids(adapter: ModelAdapter, pos: int) -> list[ComponentId]:
    """Ids of :func:`~dtwidgets.analysis.direct_contributions`' rows: :func:`stack_ids`, then the
    readout constants (``ln_final.b`` with LayerNorm, the action bias)."""
    consts = (["ln_final.b"] if C.normalization(adapter) == "LN" else []) + ["action bias"]
    return stack_ids(adapter, pos) + [ComponentId("bias", n) for n in consts]


def labels_of(ids: Sequence[ComponentId], token_labels: Sequence[str]) -> list[str]:
    """Display labels of ``ids`` with tokens named by ``token_labels``."""
    return [c.label(token_labels) for c in ids]
