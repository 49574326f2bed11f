"""The project's Decision Transformer: DT embeddings + a TransformerLens backbone + an action head.

Tokens per timestep ``t`` are ``R_t, s_t, a_t`` (the last action is absent) for the default R-s-a
layout; ``cfg.token_layout`` may drop the RTG (``s-a``) or the action (``R-s``) tokens, and every token
is placed where ``cfg.layout`` (a :class:`~dtwidgets.adapters.TokenLayout`) says:
    R_t = rtg_t * w_rtg + time(t)            (``reward_embedding``: Linear(1, d), no bias)
    s_t = W_state @ features(obs_t) + time(t) (``state_embedding``: Linear(n_obs, d), no bias)
    a_t = E_action[a_t] + time(t)             (``action_embedding``: Embedding(n_actions + 1, d); row n_actions = pad)
The backbone adds ``W_pos[:P]``; action logits are read from state tokens by ``action_predictor``.
Parameter names follow the reference checkpoint format so its files load strictly.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn
from transformer_lens.hook_points import HookPoint

from ..adapters.hooks import DT_EMBED_HOOKS
from ..adapters.last_position import cut_point, keep_last_position
from ..adapters.schema import COLOURS, OBJECTS, STATES, check_observation_codes, check_one_hot_features
from ..adapters.window import TrajectoryWindow
from .backbone import GatedMLPBiases, build_backbone, tl_major
from .config import DTConfig

EMBED_HOOKS = DT_EMBED_HOOKS  # the DT's own hook points (names owned by adapters.hooks)
N_OBJECTS, N_COLOURS, N_STATES = len(OBJECTS), len(COLOURS), len(STATES)  # the one vocabulary (adapters.schema)


def one_hot_observations(obs: torch.Tensor) -> torch.Tensor:
    """Raw codes ``[..., W, H, 3]`` -> one-hot ``[..., W, H, 20]`` (11 objects, 6 colours, 3 states)."""
    check_observation_codes(obs)  # integers within the vocabulary; names the offending value and cell
    o = obs.long()
    return torch.cat([
        nn.functional.one_hot(o[..., 0], N_OBJECTS),
        nn.functional.one_hot(o[..., 1], N_COLOURS),
        nn.functional.one_hot(o[..., 2], N_STATES),
    ], dim=-1).float()


def _checked_pixels(obs: torch.Tensor, shape) -> torch.Tensor:
    """RGB observations ``[..., height, width, 3]`` with integer values 0..255 (one clear error otherwise)."""
    if obs.ndim < 3 or tuple(obs.shape[-3:]) != tuple(shape):
        raise ValueError(f"expected pixel observations [..., {shape[0]}, {shape[1]}, 3], got shape {tuple(obs.shape)}")
    if obs.is_floating_point():
        bad = ~torch.isfinite(obs) | (obs != obs.round())
        if bad.any():
            raise ValueError(f"expected integer RGB values 0..255 (uint8 pixels), got {int(bad.sum())} non-integer "
                             "or non-finite values")
    if obs.numel() and (obs.min() < 0 or obs.max() > 255):
        raise ValueError(f"expected RGB values 0..255, got min {float(obs.min()):g}, max {float(obs.max()):g}")
    return obs


def _one_hot_indices(obs: torch.Tensor) -> torch.Tensor:
    """Raw codes ``[..., W, H, 3]`` -> the indices ``[..., 3*W*H]`` of the three ones per cell in the
    flattened one-hot features (``(channel, x, y)`` order, 20 channels)."""
    check_observation_codes(obs)  # integers within the vocabulary; names the offending value and cell
    o = obs.long()
    W, H = o.shape[-3:-1]
    channel = o + torch.tensor([0, N_OBJECTS, N_OBJECTS + N_COLOURS], device=o.device)
    cell = (torch.arange(W, device=o.device)[:, None] * H + torch.arange(H, device=o.device)[None, :])[..., None]
    return (channel * (W * H) + cell).reshape(*o.shape[:-3], -1)


def _one_hot_features(obs: torch.Tensor) -> torch.Tensor:
    """Raw codes ``[..., W, H, 3]`` -> flattened one-hot features ``[..., 20*W*H]`` in ``(channel, x, y)``
    order, by scattering three ones per cell (same result as ``one_hot_observations`` + flatten)."""
    idx = _one_hot_indices(obs)
    W, H = obs.shape[-3:-1]
    out = torch.zeros(*idx.shape[:-1], (N_OBJECTS + N_COLOURS + N_STATES) * W * H, device=idx.device)
    return out.scatter_(-1, idx, 1.0)


class DecisionTransformer(nn.Module):
    """A Decision Transformer over MiniGrid observations. ``forward(window) -> [B, T, n_actions]``."""

    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        d = cfg.d_model
        self.reward_embedding = nn.Sequential(nn.Linear(1, d, bias=False))
        self.state_embedding = nn.Linear(cfg.n_obs, d, bias=False)
        self.action_embedding = nn.Sequential(nn.Embedding(cfg.n_actions + 1, d))
        self.time_embedding: nn.Module
        if cfg.time_embedding_type == "embedding":
            self.time_embedding = nn.Embedding(cfg.max_timestep + 1, d)
        else:
            self.time_embedding = nn.Linear(1, d)
        self.transformer: Any = build_backbone(cfg)  # a TransformerLens HookedTransformer / TransformerBridge
        self.gated_biases = GatedMLPBiases(cfg) if (cfg.gated_mlp and tl_major() >= 4) else None
        if self.gated_biases is not None:
            self.gated_biases.attach(self.transformer)
        self.action_predictor = nn.Linear(d, cfg.n_actions)
        self.state_predictor = nn.Linear(d, cfg.n_obs)  # kept for checkpoint parity; not trained
        self.reward_predictor = nn.Linear(d, 1)  # kept for checkpoint parity; not trained
        points = {n.split(".")[1]: HookPoint() for n in EMBED_HOOKS}
        for name in EMBED_HOOKS:
            points[name.split(".")[1]].name = name
        self.embed_hooks = nn.ModuleDict(points)
        backbone: Any = self.transformer
        # plain containers, so that nn.Module does not register them as submodules
        self._hooked_modules = list(backbone.modules())  # where a caller's hook could be attached
        self._own_hooks = _hook_count(self._hooked_modules)  # the backbone's own (e.g. the gated biases')
        self._trim_at: tuple[Any, ...] = (backbone.hook_dict[cut_point(cfg.n_layers)],)

    # ---- inputs -------------------------------------------------------------------------
    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """Observations ``[..., W, H, C]`` (raw C=3, or one-hot C=20 for one-hot models) ->
        flattened features ``[..., C_model * W * H]`` in ``(channel, x, y)`` order, float32."""
        return self._features(self._checked_obs(observations))

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        """:meth:`features` of observations already checked by :meth:`_checked_obs`."""
        if self.cfg.one_hot_obs and obs.shape[-1] == 3:
            return _one_hot_features(obs)
        x = obs.float().movedim(-1, -3)  # [..., C, W, H]
        if self.cfg.obs_kind == "pixels":
            x = x / 255.0  # RGB in [0, 1]
        return x.reshape(*x.shape[:-3], -1)

    def _checked_obs(self, observations) -> torch.Tensor:
        cfg = self.cfg
        W, H = cfg.obs_shape[:2]
        obs = observations if torch.is_tensor(observations) else torch.as_tensor(np.asarray(observations), device="cpu")
        if cfg.obs_kind == "pixels":
            return _checked_pixels(obs, cfg.obs_shape)
        c_model = 20 if cfg.one_hot_obs else 3
        if obs.ndim < 3 or tuple(obs.shape[-3:-1]) != (W, H) or obs.shape[-1] not in {3, c_model}:
            raise ValueError(
                f"expected observations [..., {W}, {H}, 3] (raw MiniGrid codes)"
                + (f" or [..., {W}, {H}, 20] (one-hot)" if cfg.one_hot_obs else "")
                + f", got shape {tuple(obs.shape)}")
        if obs.shape[-1] == 3:
            if not cfg.one_hot_obs:  # one-hot models check while indexing (_one_hot_indices)
                check_observation_codes(obs)  # raw models: codes 99, -1 or 2.5 would give confident logits
        else:
            check_one_hot_features(obs)
        return obs

    def validate(self, window: TrajectoryWindow) -> None:
        """Raise one clear ValueError when a window does not fit this model."""
        cfg, T = self.cfg, self.cfg.layout.n_timesteps
        B = window.observations.shape[0]
        checks = [
            ("observations", tuple(window.observations.shape[:2]), (B, T)),
            ("actions", tuple(window.actions.shape), (B, T - 1)),
            ("rtgs", tuple(window.rtgs.shape), (B, T)),
            ("timesteps", tuple(window.timesteps.shape), (B, T)),
            ("n_pad", tuple(window.n_pad.shape), (B,)),
        ]
        for name, got, want in checks:
            if got != want:
                raise ValueError(f"expected window.{name} with leading shape {want} (batch, {T} timesteps), got {got}")
        lo, hi = cfg.rtg_range
        r = window.rtgs  # a model without RTG tokens ignores window.rtgs
        if cfg.layout.has_rtg and bool((~torch.isfinite(r) | (r < lo - 1e-6) | (r > hi + 1e-6)).any()):
            raise ValueError(f"expected RTG values in [{lo}, {hi}], got min {r.min().item():.4g}, max {r.max().item():.4g}")
        t = window.timesteps
        if bool(((t < 0) | (t > cfg.max_timestep)).any()):
            raise ValueError(f"expected timesteps in [0, {cfg.max_timestep}], got min {int(t.min())}, max {int(t.max())}")
        a = window.actions
        if a.numel() and bool(((a < 0) | (a > cfg.n_actions)).any()):
            raise ValueError(f"expected actions in [0, {cfg.n_actions - 1}] (or pad {cfg.n_actions}), got min {int(a.min())}, max {int(a.max())}")
        if ((window.n_pad < 0) | (window.n_pad >= T)).any():
            raise ValueError(f"expected n_pad in [0, {T - 1}], got {window.n_pad.tolist()}")

    # ---- embedding ----------------------------------------------------------------------
    def embed_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        """RTGs ``[...]`` float -> ``rtg * w_rtg`` ``[..., d_model]`` (no time term)."""
        return self.reward_embedding(rtgs.to(self.device).float()[..., None])

    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Timesteps ``[...]`` int -> time embeddings ``[..., d_model]``."""
        t = timesteps.to(self.device)
        if self.cfg.time_embedding_type == "embedding":
            return self.time_embedding(t.long())
        return self.time_embedding(t.float()[..., None])

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions ``[...]`` int (``n_actions`` = pad) -> action embeddings ``[..., d_model]`` (no time term)."""
        return self.action_embedding(actions.to(self.device).long())

    def embed_state(self, observations: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Observations ``[B, T, W, H, C]`` -> ``W_state @ features`` ``[B, T, d_model]``; steps where
        ``real`` ``[B, T]`` is False (left padding) see an all-zero feature vector. Raw codes of a
        one-hot model are read by gathering ``W_state`` columns (no one-hot tensor is built)."""
        obs = self._checked_obs(observations).to(self.device)
        if self.cfg.one_hot_obs and obs.shape[-1] == 3:
            idx = _one_hot_indices(obs)  # [B, T, 3*W*H]
            table = self.state_embedding.weight.T.contiguous()  # [n_obs, d]: a row per feature (a strided
            # table makes embedding_bag ~10x slower than this copy)
            state = nn.functional.embedding_bag(idx.reshape(-1, idx.shape[-1]), table,
                                                mode="sum").reshape(*idx.shape[:-1], -1)
            return state * real[..., None].to(state.dtype)
        feats = self._features(obs) * real[..., None]
        return self.state_embedding(feats)

    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        """Token embeddings ``[B, n_ctx, d_model]`` (before the positional embedding), placed by ``cfg.layout``
        (the RTG / action embeddings run only when the layout has those tokens)."""
        self.validate(window)
        cfg, lay, dev = self.cfg, self.cfg.layout, self.action_predictor.weight.device
        B, T = window.observations.shape[:2]
        h = self.embed_hooks
        real = torch.arange(T, device=dev)[None, :] >= window.n_pad.to(dev)[:, None]
        time = h["hook_time_embed"](self.embed_time(window.timesteps))  # [B, T, d]
        state = h["hook_state_embed"](self.embed_state(window.observations, real))
        tokens = torch.zeros(B, lay.n_tokens, cfg.d_model, device=dev, dtype=state.dtype)
        tokens[:, lay.positions("state")] = state + time
        if lay.has_rtg:
            tokens[:, lay.positions("rtg")] = h["hook_rtg_embed"](self.embed_rtg(window.rtgs)) + time
        if lay.has_action and T > 1:
            act = h["hook_action_embed"](self.embed_action(window.actions))
            tokens[:, lay.positions("action")] = act + time[:, :-1]
        return h["hook_tokens"](tokens)

    # ---- forward ------------------------------------------------------------------------
    def head(self, resid_final: torch.Tensor) -> torch.Tensor:
        """Final residual ``[B, P, d]`` (after ln_final) -> logits at state tokens ``[B, T, n_actions]``."""
        return self.action_predictor(resid_final[:, self.cfg.layout.positions("state")])

    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        return self.head(self.transformer(self.embed(window)))

    def last_logits(self, window: TrajectoryWindow) -> torch.Tensor:
        """Logits ``[B, n_actions]`` at the prediction position (the last state token), equal to
        ``forward(window)[:, -1]``. The last block's MLP and ``ln_final`` act position by position, so
        they run on that position alone (the last block's ``hook_resid_mid`` passes it on). Whenever a
        hook beyond the backbone's own is attached (a caller's hooks may read or write any position),
        the whole sequence runs instead."""
        tokens = self.embed(window)
        if _hook_count(self._hooked_modules) != self._own_hooks:
            return self.head(self.transformer(tokens))[:, -1]
        point = self._trim_at[0]
        point.add_hook(keep_last_position)
        try:
            resid = self.transformer(tokens)  # [B, 1, d]
        finally:
            point.remove_hooks("fwd")
        return self.action_predictor(resid[:, -1])

    @property
    def device(self) -> torch.device:
        return self.action_predictor.weight.device


def _hook_count(modules: list[nn.Module]) -> int:
    """Hooks on ``modules`` that could see positions: every hook on a HookPoint; on other modules every
    forward hook and every forward-pre hook but a TransformerLens 4 bridge's own (the capture hooks its
    ``BlockBridge`` wires the first time a hooked run needs them; their functions live in
    ``transformer_lens.model_bridge``)."""
    n = 0
    for m in modules:
        n += len(m._forward_hooks)
        pre = m._forward_pre_hooks.values()
        n += len(pre) if isinstance(m, HookPoint) else sum(not _bridge_own(h) for h in pre)
    return n


def _bridge_own(hook: Any) -> bool:
    f = hook.func if isinstance(hook, functools.partial) else hook
    return str(getattr(f, "__module__", "") or "").startswith("transformer_lens.model_bridge.")
