"""Behaviour under intervention: run a model with components ablated, patched or steered for whole
rollouts, and compare what the agent does with the clean model.

* :class:`Intervened` wraps any :class:`~dtwidgets.adapters.ModelAdapter` so that its forward always
  runs with some hooks attached (the same hooks the analyses use: :func:`~dtwidgets.analysis.ablation.
  component_ablation_hooks`, steering hooks, ...). It is a ModelAdapter itself, so ``calibrate``,
  ``model_rollouts`` and the Explorer run on it unchanged.
* :func:`behaviour_under_intervention` plays episodes per intervention and RTG and summarises outcome
  fractions, returns, lengths, where the agent went (a visit map over the full grid) and from which
  side it entered the goal.
* :func:`post_claims` turns the reference post's three behavioural claims into that table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..adapters import hooks as hk
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from .ablation import component_ablation_hooks


class Intervened:
    """``adapter`` with ``fwd_hooks`` attached to every forward; every other member is the adapter's.

    Args:
        adapter: any :class:`~dtwidgets.adapters.ModelAdapter`.
        fwd_hooks: ``[(accepted hook name, fn), ...]`` (see :mod:`dtwidgets.adapters.hooks`).
        label: a short name for tables and plots (e.g. ``"L0H0 ablated"``).
    """

    def __init__(self, adapter: ModelAdapter, fwd_hooks: Sequence, label: str = "intervened"):
        self._adapter = adapter
        self.fwd_hooks = list(fwd_hooks)
        self.label = str(label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_adapter":
            raise AttributeError(name)
        return getattr(self._adapter, name)

    def __repr__(self) -> str:
        return f"Intervened({self.label!r}, {len(self.fwd_hooks)} hook(s), {self._adapter!r})"

    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        return self._adapter.run_with_hooks(window, self.fwd_hooks)

    __call__ = forward

    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks=()) -> torch.Tensor:
        """The caller's hooks run after the intervention's (they see the intervened activations)."""
        return self._adapter.run_with_hooks(window, [*self.fwd_hooks, *fwd_hooks])

    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        """``(logits, ActivationCache)`` of the intervened run: activations read after the
        intervention's hooks, for the accepted names ``names_filter`` selects."""
        from transformer_lens import ActivationCache

        bb = self._adapter.backbone
        accepted = (*hk.accepted_names(bb), *hk.DT_EMBED_HOOKS)
        names = hk.cache_request(names_filter, accepted, bb.cfg.n_layers)
        store: dict[str, torch.Tensor] = {}

        def saver(name: str):
            def save(t, hook):
                store[name] = t.detach().clone()
            return save

        logits = self._adapter.run_with_hooks(window, [*self.fwd_hooks, *[(n, saver(n)) for n in names]])
        return logits, ActivationCache(store, bb)


def ablated(adapter: ModelAdapter, components, mode: str = "zero", means=None, positions=None) -> Intervened:
    """``adapter`` with ``components`` (``"L0H1"``, ``"L0MLP"``, ``"L0N12"``; one or a list) ablated in
    every forward, at ``positions`` (default: all)."""
    comps = [components] if isinstance(components, str) else list(components)
    hooks = component_ablation_hooks(adapter, comps, mode=mode, means=means, positions=positions)
    return Intervened(adapter, hooks, label=" + ".join(comps) + f" {mode}-ablated")


@dataclass
class BehaviourRow:
    """One (intervention, RTG) cell of :class:`BehaviourResult`.

    Attributes:
        fractions: ``{outcome: fraction of episodes}`` (goal / collision / timeout / unfinished; sums to 1).
        mean_return, mean_length: over episodes (length in steps).
        visits: ``[gW, gH]`` int64 agent visits per cell (every position the agent stood on, the start
            and the final cell included), indexed ``[x, y]`` as MiniGrid's grid.
        goal_entries: ``{"above" | "below" | "left" | "right": count}`` of goal arrivals by the side
            they entered the goal cell from (``above`` = from the cell ``(x, y - 1)``).
    """

    intervention: str
    rtg: float
    n_episodes: int
    fractions: dict
    mean_return: float
    mean_length: float
    visits: np.ndarray
    goal_entries: dict = field(default_factory=dict)

    def entry_fraction(self, side: str) -> float:
        """Fraction of goal arrivals entering from ``side`` (NaN with no arrival)."""
        n = sum(self.goal_entries.values())
        return float(self.goal_entries.get(side, 0) / n) if n else float("nan")


@dataclass
class BehaviourResult:
    """Rows for every intervention (``"clean"`` first) and RTG."""

    rows: list

    def row(self, intervention: str, rtg: float) -> BehaviourRow:
        for r in self.rows:
            if r.intervention == intervention and abs(r.rtg - float(rtg)) < 1e-6:
                return r
        raise KeyError(f"expected an (intervention, rtg) in {[(r.intervention, r.rtg) for r in self.rows]}, "
                       f"got {(intervention, rtg)}")

    def table(self) -> list[dict]:
        """One flat dict per row (outcome fractions, return, length, goal entry sides)."""
        return [{"intervention": r.intervention, "rtg": r.rtg, "episodes": r.n_episodes,
                 **{f"{k} %": 100 * v for k, v in r.fractions.items()}, "mean return": r.mean_return,
                 "mean length": r.mean_length, **{f"goal from {s}": n for s, n in r.goal_entries.items()}}
                for r in self.rows]

    def figure(self):
        """A static plotly figure: one visit heat map per row (log-scaled counts)."""
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go

        fig = make_subplots(rows=1, cols=len(self.rows), subplot_titles=[f"{r.intervention} @ RTG {r.rtg:g}"
                                                                         for r in self.rows])
        for i, r in enumerate(self.rows):
            fig.add_trace(go.Heatmap(z=np.log1p(r.visits.T), showscale=False, colorscale="Viridis",
                                     hovertemplate="x %{x}, y %{y}: log(1+visits) %{z:.2f}<extra></extra>"),
                          row=1, col=i + 1)
            fig.update_yaxes(autorange="reversed", row=1, col=i + 1)
        fig.update_layout(height=300, width=max(400, 260 * len(self.rows)), margin=dict(t=40, b=10, l=10, r=10))
        return fig


def episode_positions(env, episode) -> list[tuple[int, int]]:
    """The agent's ``(x, y)`` before each action of a recorded episode and after the last, by replaying
    it in ``env`` from its seed (the replayed observations must equal the recorded ones)."""
    if episode.seed < 0:
        raise ValueError(f"episode {episode.index} has no reset seed: it cannot be replayed for positions")
    obs = env.reset(seed=int(episode.seed))
    out = []
    for t in range(episode.length):
        if not np.array_equal(obs, episode.observations[t]):
            raise ValueError(f"replaying episode {episode.index} (seed {episode.seed}): the observation at step {t} "
                             f"differs from the recorded one (another env or max_steps?)")
        out.append(_agent_cell(env))
        obs = env.step(int(episode.actions[t])).observation
    out.append(_agent_cell(env))
    return out


def _agent_cell(env) -> tuple[int, int]:
    x, y = env.full_grid()[1]
    return int(x), int(y)


def _entry_side(before: tuple[int, int], goal: tuple[int, int]) -> str | None:
    dx, dy = goal[0] - before[0], goal[1] - before[1]
    return {(0, 1): "above", (0, -1): "below", (1, 0): "left", (-1, 0): "right"}.get((dx, dy))


def summarise_rollouts(traj, env, intervention: str, rtg: float) -> BehaviourRow:
    """A :class:`BehaviourRow` from recorded episodes (all at one RTG) of ``env``."""
    from ..vocabulary import OUTCOMES

    env.reset(seed=int(traj.seeds[0]) if traj.n_episodes else 0)
    visits = np.zeros(env.full_grid()[0].shape[:2], np.int64)
    entries = {"above": 0, "below": 0, "left": 0, "right": 0}
    outcomes = traj.outcomes()
    for ep in traj.episodes():
        pos = episode_positions(env, ep)
        for x, y in pos:
            visits[x, y] += 1
        if outcomes[ep.index] == "goal" and len(pos) >= 2:
            side = _entry_side(pos[-2], pos[-1])
            if side is not None:
                entries[side] += 1
    n = traj.n_episodes
    fractions = {k: float((outcomes == k).sum() / n) for k in OUTCOMES}
    return BehaviourRow(intervention, float(rtg), int(n), fractions, float(traj.returns().mean()),
                        float(traj.episode_lengths.mean()), visits, entries)


def behaviour_under_intervention(adapter: ModelAdapter, env, interventions: dict, rtgs=(-1.0, 0.9),
                                 n_episodes: int = 50, seed: int = 3_000_000, max_steps: int | None = None,
                                 n_envs: int = 16, progress: bool = False) -> BehaviourResult:
    """Greedy episodes of the clean model and of each intervention, on the same seeds.

    Args:
        adapter: the model; env: an :class:`~dtwidgets.adapters.EnvAdapter` (its ``full_grid`` gives the
            positions) or a MiniGrid id.
        interventions: ``{name: Intervened | list of (hook name, fn)}``.
        rtgs, n_episodes, seed: every (intervention, RTG) plays episodes ``seed + j``, j < n_episodes.
    """
    from ..adapters import MiniGridEnv
    from ..data.rollouts import model_rollouts

    env = MiniGridEnv(env, max_steps=max_steps or 1000) if isinstance(env, str) else env
    models = {"clean": adapter}
    for name, iv in interventions.items():
        models[str(name)] = iv if isinstance(iv, Intervened) else Intervened(adapter, iv, label=str(name))
    rows = []
    for name, model in models.items():
        traj = model_rollouts(model, env, rtgs=rtgs, n_episodes=n_episodes, seed=seed, n_envs=n_envs,
                              max_steps=max_steps, progress=progress)
        for i, r in enumerate(rtgs):
            rows.append(summarise_rollouts(traj.select(np.arange(i * n_episodes, (i + 1) * n_episodes)),
                                           env, name, r))
    return BehaviourResult(rows)


# The reference post's behavioural claims (Bloom & Colognese 2023), each: (component, RTG, what it
# says, the measured criterion). A claim "holds" when the criterion is met AND it differs from the
# clean model at the same RTG by at least CLAIM_MARGIN.
POST_CLAIMS = (
    ("L0H0", -1.0, "head 0 ablated at RTG -1: the agent reaches the goal, from the top",
     "goal rate up by >= margin, and >= 50 % of goal arrivals enter the goal cell from above"),
    ("L0H1", 0.9, "head 1 ablated at RTG 0.9: the agent hits obstacles",
     "collision rate up by >= margin"),
    ("L0MLP", -1.0, "the MLP ablated at RTG -1: the agent approaches the goal from the left",
     "goal rate up by >= margin, and >= 50 % of goal arrivals enter the goal cell from the left"),
)
CLAIM_MARGIN = 0.10


def _claim_holds(component: str, clean: BehaviourRow, iv: BehaviourRow) -> bool:
    f, c = iv.fractions, clean.fractions
    if component == "L0H1":
        return f["collision"] >= c["collision"] + CLAIM_MARGIN
    side = "above" if component == "L0H0" else "left"
    return f["goal"] >= c["goal"] + CLAIM_MARGIN and iv.entry_fraction(side) >= 0.5


def post_claims(adapter: ModelAdapter, env="MiniGrid-Dynamic-Obstacles-8x8-v0", n_episodes: int = 100,
                seed: int = 3_000_000, max_steps: int | None = None, progress: bool = False) -> list[dict]:
    """The post's three claims measured on ``adapter`` (zero ablation at every position, greedy
    episodes ``seed + j``, the clean model on the same seeds beside each): one dict per claim with
    the intervened and clean rows (:class:`BehaviourRow`), the criterion and whether it holds."""
    out = []
    for comp, rtg, claim, criterion in POST_CLAIMS:
        res = behaviour_under_intervention(adapter, env, {comp: ablated(adapter, comp)}, rtgs=(rtg,),
                                           n_episodes=n_episodes, seed=seed, max_steps=max_steps, progress=progress)
        clean, iv = res.row("clean", rtg), res.row(comp, rtg)
        out.append({"claim": claim, "criterion": criterion, "component": comp, "rtg": rtg, "clean": clean,
                    "intervened": iv, "holds": bool(_claim_holds(comp, clean, iv))})
    return out


def claims_table(claims: list[dict]) -> list[dict]:
    """Flat rows of :func:`post_claims` for display: outcome rates and goal-entry sides, clean vs ablated."""
    rows = []
    for c in claims:
        for which in ("clean", "intervened"):
            r = c[which]
            rows.append({"claim": c["claim"] if which == "clean" else "", "model": which, "rtg": c["rtg"],
                         "goal %": 100 * r.fractions["goal"], "collision %": 100 * r.fractions["collision"],
                         "timeout %": 100 * r.fractions["timeout"], "from above %": 100 * r.entry_fraction("above"),
                         "from left %": 100 * r.entry_fraction("left"),
                         "holds": ("yes" if c["holds"] else "no") if which == "intervened" else ""})
    return rows
