"""The reference post's headline numbers, computed from a Dynamic-Obstacles DT (nothing is typed in).

The target is the reference checkpoint ``ReproduceOriginalPostShort.pt`` (1 layer, 2 heads,
tokens ``[R, s]``, raw 7×7×3 observations, actions left/right/forward). It works with any model
that has a ``forward`` and a ``right`` action and a 7×7 view.

The scenario observations (an obstacle in front, the goal in front, the seed-0 reset view) are
built with MiniGrid by :func:`dtwidgets.data.scenarios.reference_observations` (the default), or
passed in. ``"obstacle"`` is evaluated at RTG 0.9, ``"goal"`` at RTG −1, both at t = 0. In the
agent's egocentric view the cell in front is ``(x, y) = (3, 5)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from . import _common as C
from .ids import head_id
from .ablation import single_component_ablations
from .embeddings import rtg_embedding_projection, state_embedding_projection
from ..adapters import hooks as hk

FRONT = (3, 5)  # the cell in front of the agent in its 7×7 egocentric view


@dataclass
class ScenarioNumbers:
    """One scenario: the observation, the RTG used, P(action) clean and with each component ablated.

    Attributes:
        observation: ``[7, 7, 3]``; front_cell: the raw codes of the cell in front of the agent.
        rtg: the RTG used; probs: ``[A]`` clean action probabilities.
        ablation_labels: ``K`` components (every head, then every MLP), zero-ablated one at a time.
        ablated_probs: ``[K, A]``; p_forward: clean P(forward); p_forward_ablated: ``{label: P(forward)}``.
    """

    observation: np.ndarray
    front_cell: tuple[int, int, int]
    rtg: float
    probs: np.ndarray
    ablation_labels: list[str]
    ablated_probs: np.ndarray
    p_forward: float
    p_forward_ablated: dict[str, float]


@dataclass
class ReferenceNumbers:
    """The numbers the reference post discusses, computed for ``adapter``.

    Attributes:
        rtg_embedding_dot: ``{"forward − right": w_rtg · (W_forward − W_right), ...}`` per unit RTG,
            for the three action pairs of a 3-action model.
        front_cell_state_embedding: ``{channel: value}`` of ``(W_forward − W_right) · W_state[:, (c, 3, 5)]``
            per unit of the raw code in the cell in front of the agent.
        front_cell_state_embedding_all: ``{pair: {channel: value}}`` for every action pair.
        scenarios: ``{"obstacle": ScenarioNumbers at RTG 0.9, "goal": ScenarioNumbers at RTG -1}``.
        attention_s_to_r: ``{head label: attention from s to R}`` for the seed-0 reset observation at RTG 1.
    """

    rtg_embedding_dot: dict[str, float]
    front_cell_state_embedding: dict[str, float]
    front_cell_state_embedding_all: dict[str, dict[str, float]]
    scenarios: dict[str, ScenarioNumbers]
    attention_s_to_r: dict[str, float]

    def summary(self) -> str:
        """A short human-readable report."""
        lines = ["RTG embedding · direction (per unit RTG):"]
        lines += [f"  {k}: {v:+.4f}" for k, v in self.rtg_embedding_dot.items()]
        lines.append("state embedding of the cell in front (x=3, y=5) · (forward − right): "
                     + ", ".join(f"{k} {v:+.4f}" for k, v in self.front_cell_state_embedding.items()))
        for name, s in self.scenarios.items():
            abl = ", ".join(f"{k} {v:.3f}" for k, v in s.p_forward_ablated.items())
            lines.append(f"{name} (front cell {s.front_cell}, RTG {s.rtg:+.1f}): P(forward) {s.p_forward:.3f}; "
                         f"zero-ablated: {abl}")
        lines.append("attention s→R (reset obs, RTG 1): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in self.attention_s_to_r.items()))
        return "\n".join(lines)


def _pairs(adapter: ModelAdapter):
    names = adapter.action_names
    return [(names[i], names[j]) for i, j in [(2, 1), (2, 0), (0, 1)] if max(i, j) < len(names)]


@torch.inference_mode()
def reference_numbers(adapter: ModelAdapter, observations: Mapping[str, np.ndarray] | None = None) -> ReferenceNumbers:
    """Compute the reference post's numbers (see the module docstring for the scenarios).

    Args:
        observations: ``{"obstacle", "goal", "reset": [7, 7, 3]}`` partial observations (default:
            :func:`dtwidgets.data.scenarios.reference_observations`, built with MiniGrid).
    """
    if observations is None:
        from ..data.scenarios import reference_observations

        observations = reference_observations()
    missing = [k for k in ("obstacle", "goal", "reset") if k not in observations]
    if missing:
        raise ValueError(f"expected observations for 'obstacle', 'goal' and 'reset', missing {missing}")
    if "forward" not in adapter.action_names or "right" not in adapter.action_names:
        raise ValueError(f"expected a model with 'forward' and 'right' actions, got {adapter.action_names}")
    if tuple(adapter.schema.grid_shape) != (7, 7):
        raise ValueError(f"expected a 7×7 view, got {adapter.schema.grid_shape}")
    rtg_dot = {f"{a} − {b}": rtg_embedding_projection(adapter, a, b, [1.0]).slope for a, b in _pairs(adapter)}
    front_all = {}
    for a, b in _pairs(adapter):
        proj = state_embedding_projection(adapter, a, b)
        front_all[f"{a} − {b}"] = proj.at(*FRONT)
    scen = {}
    fwd = C.action_index(adapter, "forward")
    for kind, rtg in (("obstacle", 0.9), ("goal", -1.0)):
        obs = np.asarray(observations[kind])
        w = adapter.make_window(obs, rtg, [0])
        abl = single_component_ablations(adapter, w)
        scen[kind] = ScenarioNumbers(
            observation=obs, front_cell=(int(obs[FRONT][0]), int(obs[FRONT][1]), int(obs[FRONT][2])), rtg=rtg, probs=abl.baseline_probs,
            ablation_labels=abl.labels, ablated_probs=abl.probs, p_forward=float(abl.baseline_probs[fwd]),
            p_forward_ablated={k: float(abl.probs[i, fwd]) for i, k in enumerate(abl.labels)})
    w = adapter.make_window(np.asarray(observations["reset"]), 1.0, [0])
    _, cache = adapter.run_with_cache(w, names_filter=lambda n: n.endswith("hook_pattern"))
    s_pos = adapter.layout.prediction_position
    r_pos = s_pos - 1
    att = {}
    for l in range(C.n_layers(adapter)):
        for h in range(C.n_heads(adapter)):
            att[head_id(l, h).name] = float(cache[hk.pattern(l)][0, h, s_pos, r_pos])
    return ReferenceNumbers(rtg_embedding_dot=rtg_dot, front_cell_state_embedding=front_all["forward − right"],
                            front_cell_state_embedding_all=front_all, scenarios=scen, attention_s_to_r=att)
