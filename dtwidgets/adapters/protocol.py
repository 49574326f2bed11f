"""The adapter protocol: the single way analysis functions and widgets reach a model and an env.

Any TransformerLens-wrapped Decision Transformer binds through :class:`ModelAdapter`, any
gymnasium MiniGrid env through :class:`EnvAdapter`. The project's own implementations are
:class:`dtwidgets.model.DTAdapter` and :class:`dtwidgets.adapters.MiniGridEnv`.

The protocol is everything an analysis, a widget feed or the Explorer needs: a class that has
exactly these members (plain attributes, properties or methods; no base class needed) passes
``isinstance(obj, ModelAdapter)`` and runs every analysis. Token embeddings are additive per step:
an RTG token is ``embed_rtg(R_t) + embed_time(t)``, a state token ``W_state @ features(s_t) +
embed_time(t)``, an action token ``embed_action(a_t) + embed_time(t)``; ``embed(window)`` returns
those tokens (the backbone adds its own positional embedding).

``W_state`` and ``embed_state`` are OPTIONAL (:data:`OPTIONAL_MODEL_MEMBERS`): a linear state embedding
gives ``W_state``; a nonlinear encoder (MLP, CNN) leaves ``W_state`` out (or ``None``) and gives
``embed_state(features)``, whose Jacobian at the observation shown the observation-side analyses read
(:mod:`dtwidgets.analysis.state_map`, the one owner of that rule). Which tokens a step has (R-s-a,
s-a, R-s) is the ``layout``'s (:class:`~dtwidgets.adapters.TokenLayout`); a layout without RTG tokens
makes RTG analyses raise :class:`UnsupportedByModel`.

``device`` is OPTIONAL too: the :class:`torch.device` the model's weights live on (default CPU, read by
:func:`dtwidgets.adapters.device.device_of`). Analyses create their tensors on it and hand the adapter
windows built on the CPU (the adapter moves its inputs to its device); results leave it once, as numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .layout import TokenLayout
from .schema import ObservationSchema
from .window import TrajectoryWindow

Hook = tuple[Any, Callable]  # (hook name or name filter, fn(tensor, hook) -> tensor | None)

#: ModelAdapter members an adapter may leave out (``isinstance`` does not require them)
OPTIONAL_MODEL_MEMBERS = ("W_state", "embed_state", "device")


class UnsupportedByModel(ValueError):
    """An analysis (or control) this model cannot support: the message names the analysis, what the
    model lacks (e.g. no RTG tokens, no linear state embedding) and what to do instead."""


def _has_member(obj: Any, name: str) -> bool:
    """Whether ``obj`` has ``name`` without running it: a class attribute, property or method is found
    statically (a property that raises, e.g. ``W_state`` of a nonlinear encoder, still counts); an
    instance attribute or one a ``__getattr__`` provides is looked up, and an error there means absent."""
    import inspect

    try:
        inspect.getattr_static(obj, name)
        return True
    except AttributeError:
        pass
    if getattr(type(obj), "__getattr__", None) is None:
        return False
    try:
        getattr(obj, name)
        return True
    except Exception:  # noqa: BLE001  isinstance never raises
        return False


class _StaticProtocolMeta(type(Protocol)):  # type: ignore[misc]
    """``isinstance(obj, Proto)`` checks that every member is present without calling properties, so it
    never raises (the stock check calls each property on Python < 3.12)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        members = getattr(cls, "_members", None)
        if members is None:
            return super().__instancecheck__(obj)
        return all(_has_member(obj, m) for m in members)


@runtime_checkable
class ModelAdapter(Protocol, metaclass=_StaticProtocolMeta):
    """A Decision Transformer seen through TransformerLens.

    Attributes:
        backbone: the TransformerLens module (``HookedTransformer`` on TL 3.x, a
            ``TransformerBridge`` on TL 4.x). Hook names are TransformerLens' canonical ones
            (``blocks.{l}.attn.hook_z``, ``blocks.{l}.hook_resid_pre``, ``ln_final.hook_scale``...);
            weights are TL-shaped (``W_Q [L, H, d_model, d_head]``, ``W_O [L, H, d_head, d_model]``).
        layout: token layout (which positions are RTG, state, action tokens).
        schema: observation schema (grid shape, channels, raw vs one-hot).
        action_names: one name per action logit.

    Optional capability (not required): ``last_position_trim: bool`` — the backbone's last layer may
    run on the prediction position alone (the batched analyses then skip the last MLP at every
    other position; verified once per backbone against a full run). Without it every position runs.

    Optional capability (not required): ``run_from_layer(resid, layer) -> Tensor`` — run the backbone
    from block ``layer`` on a residual stream ``resid`` ``[B, P, d_model]`` entering it (the value of
    ``blocks.{layer}.hook_resid_pre``): blocks ``layer..L-1`` and ``ln_final`` run, their hook points
    firing as in a full forward, and nothing before block ``layer`` runs; returns the backbone's output.
    Single-component ablations then run a layer-``l`` ablation from the clean run's residual at layer
    ``l`` (layers ``>= l`` only; checked once per backbone and layer against the clean run). Without it
    every ablation row runs the whole window.
    """

    backbone: Any
    layout: TokenLayout
    schema: ObservationSchema
    action_names: tuple[str, ...]

    @property
    def n_actions(self) -> int: ...

    @property
    def pad_action(self) -> int: ...

    @property
    def rtg_range(self) -> tuple[float, float]:
        """Return-to-go values the model accepts ``(low, high)``, in reward units."""

    @property
    def max_timestep(self) -> int:
        """Largest episode timestep the model's time embedding knows."""

    def action_index(self, action) -> int:
        """An action given by name or index -> its index (a clear ValueError otherwise)."""

    @property
    def W_action(self) -> torch.Tensor:
        """Action head weights ``[n_actions, d_model]`` (one residual direction per action)."""

    @property
    def b_action(self) -> torch.Tensor:
        """Action head bias ``[n_actions]``."""

    @property
    def W_state(self) -> torch.Tensor | None:
        """OPTIONAL. Linear state embedding ``[d_model, n_features]`` over the flattened observation;
        absent or ``None`` for a nonlinear state encoder (then give :meth:`embed_state`)."""

    def embed_state(self, features: torch.Tensor) -> torch.Tensor:
        """OPTIONAL. Flattened features ``[N, n_features]`` float -> state token embeddings ``[N, d_model]``
        without the time term, differentiable (not in inference mode): ``features @ W_state.T`` for a
        linear embedding, the encoder's output for an MLP or CNN."""

    @property
    def device(self) -> torch.device:
        """OPTIONAL. Where the weights and activations live (default ``torch.device("cpu")``); inputs
        (windows, features, RTGs) may come on the CPU and are moved here by the adapter."""

    @property
    def b_mlp_out(self) -> torch.Tensor:
        """Each layer's MLP output bias ``[n_layers, d_model]`` (zeros for MLPs without one).

        Needed because TransformerLens 4's native gated MLP has no ``b_out``: an adapter that adds
        it back (by a hook) reports it here, so per-neuron attribution stays exact."""

    def embed_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        """Return-to-go values ``[N]`` float (reward units) -> the RTG token embeddings
        ``[N, d_model]`` without the time term (an RTG token is ``embed_rtg(R) + embed_time(t)``)."""

    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Episode timesteps ``[N]`` int64 -> the time embeddings ``[N, d_model]`` added to every
        token of that step."""

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Action indices ``[N]`` int64 (``pad_action`` allowed) -> action token embeddings
        ``[N, d_model]`` without the time term."""

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """Observations ``[..., W, H, C]`` -> flattened model input features ``[..., n_features]``."""

    def make_window(self, observations, rtgs, timesteps=None, actions=None) -> TrajectoryWindow:
        """One-row window from recent steps, left-padded to the model's context."""

    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        """Token embeddings ``[B, n_tokens, d_model]`` fed to the backbone (before W_pos)."""

    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        """Action logits at the prediction position ``[B, n_actions]``."""

    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        """``(logits [B, n_actions], ActivationCache)``; the cache also holds the DT's own
        embedding hooks ``dt.hook_rtg_embed``, ``dt.hook_state_embed``, ``dt.hook_action_embed``,
        ``dt.hook_time_embed`` (each ``[B, T(or T-1), d_model]``) and ``dt.hook_tokens``."""

    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks: Sequence[Hook]) -> torch.Tensor:
        """Action logits ``[B, n_actions]`` with temporary forward hooks (backbone or ``dt.*``)."""


@dataclass
class StepResult:
    """One environment step. ``observation`` is the partial view ``[W, H, 3]`` uint8."""

    observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    info: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def outcome(self) -> str | None:
        """How this step ended the episode (None while it runs): the env's own verdict
        ``info["outcome"]`` when it gives one (an env adapter decides its world's outcomes, e.g.
        CliffWalking's goal has reward -1), else MiniGrid's reward rule
        (:func:`~dtwidgets.vocabulary.episode_outcome`). The one place a step's outcome is read."""
        from ..vocabulary import OUTCOMES, episode_outcome

        o = self.info.get("outcome") if isinstance(self.info, dict) else None
        if o is None:
            return episode_outcome(float(self.reward), bool(self.terminated), bool(self.truncated))
        if o not in OUTCOMES[:3]:
            raise ValueError(f"expected info['outcome'] in {OUTCOMES[:3]} or None, got {o!r}")
        return str(o) if self.done else None


@runtime_checkable
class EnvAdapter(Protocol, metaclass=_StaticProtocolMeta):
    """A MiniGrid environment a user can play, inspect and edit.

    Coordinates are grid cells ``(x, y)``; directions 0=right, 1=down, 2=left, 3=up.

    Optional members (not required by ``isinstance``; readers fall back to a default):

    * ``action_table`` — a :class:`~dtwidgets.adapters.actions.ActionTable` saying what each action
      does (turn, forward, absolute move, no-op, interact); default guessed from ``action_names``
      (:func:`~dtwidgets.adapters.actions.action_table`). Key maps, the default preference pair,
      policy-map placements and behaviour policies follow it.
    * ``deadly_objects`` — object names whose contact ends the episode with a penalty (default
      ``("lava",)``); behaviour policies avoid (or, ``suicidal``, seek) them.
    * ``mission`` — the episode's instruction string, recorded with collected trajectories.
    * a step's ``info["outcome"]`` (``"goal"``, ``"collision"``, ``"timeout"``) — the env's own
      verdict, preferred to the reward rule (:attr:`StepResult.outcome`).
    """

    env_id: str
    action_names: tuple[str, ...]
    schema: ObservationSchema

    @property
    def max_steps(self) -> int: ...

    @property
    def step_count(self) -> int: ...

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; returns the partial observation ``[W, H, 3]`` uint8."""

    def step(self, action: int) -> StepResult: ...

    def observation(self) -> np.ndarray:
        """The current partial observation ``[W, H, 3]`` uint8 (x, y, (object, colour, state))."""

    def full_grid(self) -> tuple[np.ndarray, tuple[int, int], int]:
        """``(grid [gW, gH, 3] uint8, agent_pos (x, y), agent_dir)``."""

    def render(self) -> np.ndarray:
        """RGB frame ``[h, w, 3]`` uint8."""

    def snapshot(self) -> Any:
        """An opaque copy of the whole state (grid, agent, step count, RNG)."""

    def restore(self, snap: Any) -> np.ndarray:
        """Restore a snapshot; returns the partial observation."""

    def set_cell(self, x: int, y: int, obj: str | None, colour: str | None = None, state: str | None = None) -> np.ndarray:
        """Place an object (``"wall"``, ``"ball"``, ``"goal"``, ``"key"``, ``"door"``, ``"lava"``...)
        or clear the cell (``None``/``"empty"``) at grid cell ``(x, y)``; returns the new partial observation."""

    def observation_at(self, x: int, y: int, facing: int) -> np.ndarray:
        """The partial observation ``[W, H, 3]`` uint8 the agent would see at cell ``(x, y)`` facing
        ``facing`` (0 right, 1 down, 2 left, 3 up), everything else as it is; changes nothing (used by policy maps)."""


def _protocol_members(proto: type) -> tuple[str, ...]:
    names = set(getattr(proto, "__annotations__", {})) | {k for k in vars(proto) if not k.startswith("_")}
    return tuple(sorted(n for n in names if not n.startswith("_")))


for _proto in (ModelAdapter, EnvAdapter):
    type.__setattr__(_proto, "_members", _protocol_members(_proto))
type.__setattr__(ModelAdapter, "_members", tuple(m for m in ModelAdapter._members if m not in OPTIONAL_MODEL_MEMBERS))


def required_members(proto: type) -> tuple[str, ...]:
    """The members an object needs to pass ``isinstance(obj, proto)`` (:class:`ModelAdapter` without its
    optional :data:`OPTIONAL_MODEL_MEMBERS`; every member of :class:`EnvAdapter`)."""
    return tuple(proto._members)  # type: ignore[attr-defined]
