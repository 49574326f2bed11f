""":class:`DTAdapter`: the project's Decision Transformer bound to the :class:`ModelAdapter` protocol."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from transformer_lens import ActivationCache

from ..adapters import hooks
from ..adapters.device import resolve_device
from ..adapters.schema import resolve_action
from ..adapters.window import TrajectoryWindow, make_window
from .dt import EMBED_HOOKS, DecisionTransformer


class DTAdapter:
    """Wraps a :class:`DecisionTransformer` for analysis and widgets.

    All methods run in inference mode (no autograd graph). ``logits`` returned by ``forward``,
    ``run_with_cache`` and ``run_with_hooks`` are the action logits at the prediction position
    (the last state token), ``[B, n_actions]``.
    """

    last_position_trim = True
    """Capability (optional protocol member): the backbone's last layer may run on the prediction
    position alone and give the same logits (analyses then skip the other positions' last MLP;
    verified once per backbone). Adapters without it run every position."""

    def __init__(self, model: DecisionTransformer, metadata: dict | None = None):
        self.model = model.eval()
        self.cfg = model.cfg
        self.backbone: Any = model.transformer
        self.layout = model.cfg.layout
        self.schema = model.cfg.schema
        self.action_names = tuple(model.cfg.action_names)
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        c = self.cfg
        return (f"DTAdapter({c.n_layers} layer(s), {c.n_heads} heads, d_model {c.d_model}, n_ctx {c.n_ctx}, "
                f"{'one-hot' if c.one_hot_obs else 'raw'} obs {c.obs_shape}, actions {self.action_names})")

    # ---- protocol properties -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model's weights live (optional protocol member); inputs are moved here."""
        return self.model.device

    def to(self, device) -> "DTAdapter":
        """Move the model to ``device`` (checked by :func:`~dtwidgets.adapters.device.resolve_device`);
        returns ``self``."""
        dev = resolve_device(device)
        if dev == self.device:
            return self
        self.backbone.to(dev)  # TransformerLens' own ``to`` also updates the backbone's cfg.device
        self.model.to(dev)
        return self

    @property
    def n_actions(self) -> int:
        return self.cfg.n_actions

    @property
    def pad_action(self) -> int:
        return self.cfg.n_actions

    @property
    def rtg_range(self) -> tuple[float, float]:
        lo, hi = self.cfg.rtg_range
        return float(lo), float(hi)

    @property
    def max_timestep(self) -> int:
        return self.cfg.max_timestep

    @property
    def W_action(self) -> torch.Tensor:
        return self.model.action_predictor.weight.detach()

    @property
    def b_action(self) -> torch.Tensor:
        return self.model.action_predictor.bias.detach()

    @property
    def W_state(self) -> torch.Tensor:
        return self.model.state_embedding.weight.detach()

    def embed_state(self, features: torch.Tensor) -> torch.Tensor:
        """Flattened features ``[N, n_features]`` -> ``features @ W_state.T`` ``[N, d_model]`` (differentiable)."""
        return self.model.state_embedding(torch.as_tensor(features, device=self.model.device).float())

    @property
    def b_mlp_out(self) -> torch.Tensor:
        """MLP output biases ``[n_layers, d_model]``; under TL 4 with a gated MLP, the ones our DT
        adds back by hooks (:class:`~dtwidgets.model.backbone.GatedMLPBiases`)."""
        if self.model.gated_biases is not None:
            return self.model.gated_biases.b_out.detach()
        return self.backbone.b_out.detach()

    @torch.inference_mode()
    def embed_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        return self.model.embed_rtg(torch.as_tensor(rtgs, device=self.model.device))

    @torch.inference_mode()
    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.model.embed_time(torch.as_tensor(timesteps, device=self.model.device))

    @torch.inference_mode()
    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        return self.model.embed_action(torch.as_tensor(actions, device=self.model.device))

    def action_index(self, action) -> int:
        """An action given by name or index -> index (clear error otherwise)."""
        return resolve_action(self.action_names, action)

    # ---- inputs ------------------------------------------------------------------------
    def features(self, observations) -> torch.Tensor:
        return self.model.features(observations)

    def make_window(self, observations, rtgs, timesteps=None, actions=None) -> TrajectoryWindow:
        return make_window(observations, rtgs, timesteps, actions,
                           n_timesteps=self.layout.n_timesteps, pad_action=self.pad_action)

    # ---- running -----------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        return self.model.embed(window)

    @torch.inference_mode()
    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        return self.model.last_logits(window)

    __call__ = forward

    @torch.inference_mode()
    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        """``(logits, ActivationCache)`` of the accepted hook names ``names_filter`` selects (see
        :func:`dtwidgets.adapters.hooks.cache_request`), each with its TransformerLens 3.9 meaning."""
        wanted = hooks.cache_request(names_filter, self._hook_names(), self.cfg.n_layers)
        store: dict[str, torch.Tensor] = {}

        def save(t, hook):
            store[hook.name] = t.detach()

        with self._dt_hooks([(n, save) for n in wanted if n.startswith("dt.")]):
            tokens = self.model.embed(window)
        resid, cache = hooks.run_backbone(self.backbone, tokens, cache=[n for n in wanted if not n.startswith("dt.")])
        cache.update(store)
        return self.model.head(resid)[:, -1], ActivationCache(cache, self.backbone)

    @torch.inference_mode()
    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks=()) -> torch.Tensor:
        """Logits with ``fwd_hooks`` (``(accepted name, fn)``; backbone or ``dt.*``) active, each with its
        TransformerLens 3.9 meaning (:mod:`dtwidgets.adapters.hooks`); other names are refused."""
        dt, bb = hooks.split_dt(fwd_hooks)
        with self._dt_hooks(dt):
            tokens = self.model.embed(window)
        resid, _ = hooks.run_backbone(self.backbone, tokens, bb)
        return self.model.head(resid)[:, -1]

    @torch.inference_mode()
    def run_from_layer(self, resid: torch.Tensor, layer: int) -> torch.Tensor:
        """Capability (optional protocol member): the backbone from block ``layer`` on, for a residual
        stream ``resid`` ``[B, P, d_model]`` entering it (the value of ``blocks.{layer}.hook_resid_pre``):
        blocks ``layer..L-1`` and ``ln_final`` run with their hook points firing as in a full forward,
        nothing before block ``layer`` runs. Returns the backbone's output (final residual after
        ``ln_final``); see :func:`run_blocks_from`."""
        return run_blocks_from(self.backbone, resid, layer)

    def _hook_names(self) -> tuple[str, ...]:
        return (*EMBED_HOOKS, *hooks.accepted_names(self.backbone))

    def _dt_hooks(self, fwd_hooks):
        return dt_hooks(self.model.embed_hooks.values(), fwd_hooks)


def run_blocks_from(backbone, resid: torch.Tensor, layer: int) -> torch.Tensor:
    """Blocks ``layer..L-1``, ``ln_final`` and the unembed of a TransformerLens ``backbone`` on the
    residual stream ``resid`` ``[B, P, d_model]`` entering block ``layer``. TL 3: HookedTransformer's own
    ``start_at_layer``; TL 4: the blocks are called in turn (the bridge's ``start_at_layer`` still runs
    the blocks below and discards their output)."""
    L = int(backbone.cfg.n_layers)
    if not 0 <= int(layer) < L:
        raise ValueError(f"run_from_layer: expected a layer in [0, {L - 1}], got {layer!r}")
    if not hooks.is_bridge(backbone):
        return backbone(resid, start_at_layer=int(layer))
    x = resid
    for block in backbone.blocks[int(layer):]:
        x = block(x)
        x = x[0] if isinstance(x, tuple) else x  # a bridge block returns (hidden states, ...)
    ln = getattr(backbone, "ln_final", None)
    return backbone.unembed(x if ln is None else ln(x))


@contextmanager
def dt_hooks(hook_points, fwd_hooks):
    """Attach ``fwd_hooks`` (``(name, fn)`` pairs) to the DT's own embedding hook points for the duration
    of a ``with`` block; an unknown name raises a :class:`~dtwidgets.adapters.hooks.HookNameError` listing
    the known ones."""
    points = {str(hp.name): hp for hp in hook_points}
    used = []
    try:
        for name, fn in fwd_hooks:
            if name not in points:
                raise hooks.HookNameError(f"hook {name!r} is not accepted: expected a DT hook in {sorted(points)}")
            points[name].add_hook(fn)
            used.append(points[name])
        yield
    finally:
        for hp in used:
            hp.remove_hooks()
