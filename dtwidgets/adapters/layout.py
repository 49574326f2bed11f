"""Token layout: where the RTG, state and action tokens of each timestep sit in a model's context."""
from __future__ import annotations

import functools
from dataclasses import dataclass


#: the token layouts a model config can name: the kinds of one timestep's tokens, in order
STEP_LAYOUTS = {"R-s-a": ("rtg", "state", "action"), "s-a": ("state", "action"), "R-s": ("rtg", "state")}
TOKEN_KINDS = ("rtg", "state", "action")
#: the letter of each token kind in layout names and token labels ("R-s-a", "R tokens")
KIND_LETTER = {"rtg": "R", "state": "s", "action": "a"}


@dataclass(frozen=True)
class TokenLayout:
    """Where the RTG, state and action tokens of each timestep sit in the context.

    Each timestep contributes the tokens ``step`` names, in order (a subset of ``rtg``, ``state``,
    ``action`` holding ``state``); the last step stops at its state token, where the next action is
    predicted (the decision is read at the last token). Built-in layouts (:data:`STEP_LAYOUTS`):

    * ``"R-s-a"`` (default): ``R_1 s_1 a_1 ... R_T s_T``, ``3T - 1`` tokens (``n_ctx = 2`` is ``R s``);
    * ``"s-a"`` (no RTG): ``s_1 a_1 ... s_T``, ``2T - 1`` tokens (behaviour cloning);
    * ``"R-s"`` (no actions): ``R_1 s_1 ... R_T s_T``, ``2T`` tokens.

    Another layout is another ``step`` tuple (e.g. ``("state", "rtg", "action")``): every position,
    kind, timestep and label below follows from it, and a model places its tokens by :meth:`positions`.
    ``has_rtg`` / ``has_action`` say which tokens exist (a model without RTG tokens has no RTG analyses).
    """

    n_timesteps: int
    step: tuple[str, ...] = ("rtg", "state", "action")

    def __post_init__(self):
        step = tuple(self.step)
        if not step or "state" not in step or len(set(step)) != len(step) or not set(step) <= set(TOKEN_KINDS):
            raise ValueError(f"expected a step layout of distinct kinds from {TOKEN_KINDS} holding 'state', got {step!r}")
        if not isinstance(self.n_timesteps, int) or isinstance(self.n_timesteps, bool) or self.n_timesteps < 1:
            raise ValueError(f"expected n_timesteps >= 1 (an integer), got {self.n_timesteps!r}")
        object.__setattr__(self, "step", step)

    @classmethod
    def named(cls, name: str, n_timesteps: int) -> "TokenLayout":
        """A built-in layout by name (``"R-s-a"``, ``"s-a"``, ``"R-s"``)."""
        if name not in STEP_LAYOUTS:
            raise ValueError(f"expected a token layout in {tuple(STEP_LAYOUTS)}, got {name!r}")
        return cls(n_timesteps=n_timesteps, step=STEP_LAYOUTS[name])

    @classmethod
    def from_n_ctx(cls, n_ctx: int, layout: str | tuple[str, ...] = "R-s-a") -> "TokenLayout":
        """The layout of ``n_ctx`` tokens (``layout``: a name in :data:`STEP_LAYOUTS` or a step tuple)."""
        step = STEP_LAYOUTS.get(layout) if isinstance(layout, str) else tuple(layout)
        if step is None:
            raise ValueError(f"expected a token layout in {tuple(STEP_LAYOUTS)}, got {layout!r}")
        k, last = len(step), step.index("state") + 1  # tokens per step, tokens of the last step
        if n_ctx < last or (n_ctx - last) % k != 0:
            name = "-".join(KIND_LETTER[t] for t in step)
            valid = ", ".join(str(last + k * i) for i in range(4))
            raise ValueError(f"expected n_ctx = {k}*T - {k - last} ({valid}, ...) for an {name} token layout, got {n_ctx}")
        return cls(n_timesteps=1 + (n_ctx - last) // k, step=step)

    @property
    def name(self) -> str:
        """``"R-s-a"``, ``"s-a"``, ``"R-s"``... (the step's token letters)."""
        return "-".join(KIND_LETTER[t] for t in self.step)

    @property
    def has_rtg(self) -> bool:
        return "rtg" in self.step

    @property
    def has_action(self) -> bool:
        return "action" in self.step

    @property
    def n_tokens(self) -> int:
        k = len(self.step)
        return k * (self.n_timesteps - 1) + self.step.index("state") + 1

    @functools.cached_property
    def kinds(self) -> tuple[str, ...]:
        """Token kind per position: ``"rtg"``, ``"state"`` or ``"action"``."""
        k = len(self.step)
        return tuple(self.step[p % k] for p in range(self.n_tokens))

    @functools.cached_property
    def timestep_of(self) -> tuple[int, ...]:
        """Window step index (0-based) of each position."""
        k = len(self.step)
        return tuple(p // k for p in range(self.n_tokens))

    def positions(self, kind: str) -> list[int]:
        """Positions of the ``kind`` tokens, in step order (empty for a kind the layout does not have)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"expected kind 'rtg', 'state' or 'action', got {kind!r}")
        return [p for p, k in enumerate(self.kinds) if k == kind]

    @property
    def state_positions(self) -> list[int]:
        return self.positions("state")

    @property
    def prediction_position(self) -> int:
        """Position of the last state token, where the next action is read."""
        return self.n_tokens - 1

    def labels(self) -> list[str]:
        """Token labels like ``R₁ s₁ a₁ R₂ s₂`` (subscripts are 1-based window steps)."""
        sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
        return [f"{KIND_LETTER[k]}{str(t + 1).translate(sub)}" for k, t in zip(self.kinds, self.timestep_of)]
