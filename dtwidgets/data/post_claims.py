"""The reference post's behavioural claims about ablations, as a table computed live on any model.

Bloom & Colognese (2023) describe what their one-layer Dynamic-Obstacles DT does with a component
zero-ablated (at every position):

* **A** — head 0 ablated at RTG −1: the agent reaches the goal "from the top";
* **B** — head 1 ablated at RTG 0.9: the agent hits obstacles;
* **C** — the MLP ablated at RTG −1: the agent approaches the goal "from the left".

:func:`post_claims` runs :func:`~dtwidgets.data.behaviour.behaviour_under_intervention` for exactly
these (intervention, RTG) pairs plus the clean baseline at both RTGs (same seeds), and judges each
claim by a criterion fixed in advance. Measures (over the ``n`` episodes of one (model, RTG)):

* ``goal`` — fraction of episodes ending at the goal (the env adapter's outcome rule);
* ``from above`` / ``from left`` — fraction of the GOAL ARRIVALS whose last move entered the goal
  cell ``(gx, gy)`` from ``(gx, gy − 1)`` (moving down: "from the top"; y grows downward as MiniGrid
  draws the grid) / from ``(gx − 1, gy)`` (moving right: "from the left"), from the full-grid
  positions of the replayed episodes (:attr:`~dtwidgets.data.behaviour.EpisodePath.entry_side`);
* ``goal from above`` / ``goal from left`` — fraction of ALL episodes that reached the goal that way;
* ``obstacle collision`` — fraction of ALL episodes that ended by walking into an obstacle: a
  collision with a ball in the cell ahead just before the last action (walls do not count);
* ``route above`` / ``route left`` — fraction of ALL episodes whose path visited the goal's column
  above it / its row left of it, reaching the goal or not
  (:meth:`~dtwidgets.data.behaviour.EpisodePath.route`; context, not part of the verdict).

A claim **holds** when the claimed behaviour is the ablated model's majority behaviour:

* A: ``goal > 0.5`` and ``from above > 0.5``;
* B: ``obstacle collision > 0.5`` and above the clean model's at the same RTG;
* C: ``goal > 0.5`` and ``from left > 0.5``.

Each claim also says whether the ablation moved its primary measure (A: ``goal from above``, B:
``obstacle collision``, C: ``goal from left``) toward the claim, i.e. above the clean model's at the
same RTG (``toward_claim``), and the clean values stand beside every measure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..adapters.protocol import EnvAdapter, ModelAdapter
from .behaviour import CLEAN, BehaviourCell, BehaviourResult, behaviour_under_intervention

MAJORITY = 0.5


@dataclass
class Claim:
    """One claim judged on one model.

    Attributes:
        key: ``"A"``, ``"B"``, ``"C"``; component: the ablated component (``"L0H0"``...); rtg.
        post_says: the claim in the post's words; criterion: the test applied (plain text).
        measures: ``{measure: value}`` of the ablated model (fractions, see the module docstring);
        clean: the same measures of the clean model at the same RTG.
        counts: ``{"n": episodes, "goal": goal arrivals, ...}`` of the ablated model.
        holds: whether the criterion is met.
        primary: the measure the claim is mostly about; toward_claim: ablated ``primary`` > clean.
    """

    key: str
    component: str
    rtg: float
    post_says: str
    criterion: str
    measures: dict[str, float]
    clean: dict[str, float]
    counts: dict[str, int]
    holds: bool
    primary: str = ""

    @property
    def toward_claim(self) -> bool:
        return _gt(self.measures[self.primary], self.clean[self.primary])


def _measures(c: BehaviourCell) -> dict[str, float]:
    return {"goal": c.outcome_fractions["goal"], "collision": c.outcome_fractions["collision"],
            "timeout": c.outcome_fractions["timeout"], "from above": c.entry_fraction("above"),
            "from left": c.entry_fraction("left"), "goal from above": c.goal_entries["above"] / max(c.n_episodes, 1),
            "goal from left": c.goal_entries["left"] / max(c.n_episodes, 1),
            "obstacle collision": c.collision_fraction("ball"), "route above": c.route_fraction("above"),
            "route left": c.route_fraction("left")}


def _gt(x: float, y: float) -> bool:
    return bool(np.isfinite(x) and x > y)


@dataclass
class PostClaims:
    """The three claims on one model, with the behaviour runs behind them.

    Attributes:
        claims: ``[A, B, C]`` :class:`Claim`; behaviour: ``{rtg: BehaviourResult}`` (RTG −1: clean,
        head 0 and MLP ablated; RTG 0.9: clean, head 1 ablated); model: a description; mode: the
        ablation (``"zero"`` or ``"mean"``).
    """

    claims: list[Claim]
    behaviour: dict[float, BehaviourResult]
    model: str
    mode: str = "zero"

    def table(self) -> list[dict]:
        """One row per claim: key, component, rtg, post_says, criterion, the ablated and clean
        measures (``<measure>`` and ``clean <measure>``), n and holds."""
        return [{"claim": c.key, "component": c.component, "rtg": c.rtg, "post_says": c.post_says,
                 "criterion": c.criterion, **c.measures, **{f"clean {k}": v for k, v in c.clean.items()},
                 "n": c.counts["n"], "holds": c.holds, "primary": c.primary, "toward_claim": c.toward_claim}
                for c in self.claims]

    def summary(self) -> str:
        lines = [f"post claims on {self.model} ({self.mode} ablation)"]
        for c in self.claims:
            m, k = c.measures, c.clean
            lines.append(f"  {c.key} {c.component} at RTG {c.rtg:g} ({c.post_says}): "
                         f"{'HOLDS' if c.holds else 'does not hold'} [{c.criterion}]; {c.primary} "
                         f"{m[c.primary]:.0%} vs clean {k[c.primary]:.0%}")
            for tag, v in (("ablated", m), ("clean", k)):
                lines.append(f"      {tag:>7}: goal {v['goal']:.0%} (from above {v['from above']:.0%}, from left "
                             f"{v['from left']:.0%}), obstacle collision {v['obstacle collision']:.0%}, timeout "
                             f"{v['timeout']:.0%}, route above {v['route above']:.0%}, route left {v['route left']:.0%}")
        return "\n".join(lines)

    def figure(self, rtg: float, *, title: str | None = None):
        """The heat maps behind the claims at ``rtg`` (−1 or 0.9), clean first."""
        key = min(self.behaviour, key=lambda r: abs(r - float(rtg)))
        return self.behaviour[key].figure(title=title or f"{self.model}: where the agent goes at RTG {key:g}")


def post_claims(adapter: ModelAdapter, env: EnvAdapter | str, n_episodes: int = 100, seed: int = 3_000_000, *,
                layer: int = 0, mode: str = "zero", means=None, n_envs: int = 32, progress: bool = False,
                model_name: str | None = None) -> PostClaims:
    """Judge the post's three claims on ``adapter`` (see the module docstring for every definition).

    Args:
        adapter: a Dynamic-Obstacles DT with at least 2 heads (``layer``'s heads 0 and 1 and MLP are
            ablated; the post's model has one layer).
        env: its :class:`~dtwidgets.adapters.EnvAdapter` (e.g. ``MiniGridEnv(
            "MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=1000)``) or a MiniGrid id.
        n_episodes: episodes per (model, RTG) — 5 runs of ``n_episodes`` in all.
        seed: episode ``j`` resets with ``seed + j`` in every run.
        mode, means: ``"zero"`` (the default) or ``"mean"`` ablation with ``means`` from
            :func:`~dtwidgets.analysis.mean_activations` (a dataset mean per position), as
            :func:`~dtwidgets.analysis.ablate`.
    """
    h0, h1, mlp = f"L{layer}H0", f"L{layer}H1", f"L{layer}MLP"

    def spec(component: str) -> dict:
        return {"ablate": component, "mode": mode, "means": means}
    def run(interventions: dict, rtg: float) -> BehaviourResult:
        return behaviour_under_intervention(adapter, env, interventions, rtgs=[rtg], n_episodes=n_episodes, seed=seed,
                                            n_envs=n_envs, progress=progress)

    low = run({f"{h0} ablated": spec(h0), f"{mlp} ablated": spec(mlp)}, -1.0)
    high = run({f"{h1} ablated": spec(h1)}, 0.9)

    def cells(res: BehaviourResult, name: str, rtg: float) -> tuple[BehaviourCell, dict, dict]:
        c = res.cell(name, rtg)
        return c, _measures(c), _measures(res.cell(CLEAN, rtg))

    a, ma, ca = cells(low, f"{h0} ablated", -1.0)
    b, mb, cb = cells(high, f"{h1} ablated", 0.9)
    c, mc, cc = cells(low, f"{mlp} ablated", -1.0)
    claims = [
        Claim("A", h0, -1.0, 'reaches the goal "from the top"', "goal > 50% and from above > 50% of goal arrivals",
              ma, ca, _counts(a), _gt(ma["goal"], MAJORITY) and _gt(ma["from above"], MAJORITY), "goal from above"),
        Claim("B", h1, 0.9, "hits obstacles", "obstacle collision > 50% of episodes and > clean",
              mb, cb, _counts(b), _gt(mb["obstacle collision"], MAJORITY) and _gt(mb["obstacle collision"],
                                                                                    cb["obstacle collision"]),
              "obstacle collision"),
        Claim("C", mlp, -1.0, 'approaches the goal "from the left"', "goal > 50% and from left > 50% of goal arrivals",
              mc, cc, _counts(c), _gt(mc["goal"], MAJORITY) and _gt(mc["from left"], MAJORITY), "goal from left"),
    ]
    name = model_name or str(getattr(adapter, "metadata", {}).get("source", "") or type(adapter).__name__)
    return PostClaims(claims, {-1.0: low, 0.9: high}, name, mode)


def _counts(c: BehaviourCell) -> dict[str, int]:
    return {"n": c.n_episodes, **c.outcome_counts, "from above": c.goal_entries["above"],
            "from left": c.goal_entries["left"], "obstacle collision": c.collisions_with.get("ball", 0)}
