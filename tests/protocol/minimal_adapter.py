"""A ModelAdapter written from scratch with ONLY the protocol's members.

No ``.model``, no ``.cfg``, no base class: the weights are plain tensors copied out of a shipped
:class:`~dtwidgets.model.DTAdapter` (the way a user would bind their own DT), the TransformerLens
backbone is the only module it holds, and the ``dt.*`` embedding hooks are plain callables.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from transformer_lens import ActivationCache

from dtwidgets.adapters import ObservationSchema, TokenLayout, TrajectoryWindow, hooks, make_window
from dtwidgets.adapters.schema import resolve_action

DT_HOOKS = ("dt.hook_rtg_embed", "dt.hook_state_embed", "dt.hook_action_embed", "dt.hook_time_embed", "dt.hook_tokens")
N_CODES = (11, 6, 3)  # MiniGrid object / colour / state vocabulary sizes


class MinimalAdapter:
    """Every protocol member, nothing else (see ``ModelAdapter``)."""

    def __init__(self, *, backbone, layout: TokenLayout, schema: ObservationSchema, action_names: Sequence[str],
                 rtg_range: tuple[float, float], max_timestep: int, w_rtg: torch.Tensor,
                 time_fn: Callable[[torch.Tensor], torch.Tensor], E_action: torch.Tensor, W_state: torch.Tensor,
                 W_action: torch.Tensor, b_action: torch.Tensor, b_mlp_out: torch.Tensor, one_hot: bool):
        self.backbone = backbone
        self.layout = layout
        self.schema = schema
        self.action_names = tuple(action_names)
        self._rtg_range = (float(rtg_range[0]), float(rtg_range[1]))
        self._max_timestep = int(max_timestep)
        self._w_rtg, self._time_fn, self._E_action = w_rtg, time_fn, E_action
        self._W_state, self._W_action, self._b_action, self._b_mlp_out = W_state, W_action, b_action, b_mlp_out
        self._one_hot = one_hot
        self._dt_hooks: dict[str, list[Callable]] = {}

    # ---- facts ------------------------------------------------------------------------------
    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @property
    def pad_action(self) -> int:
        return len(self.action_names)

    @property
    def rtg_range(self) -> tuple[float, float]:
        return self._rtg_range

    @property
    def max_timestep(self) -> int:
        return self._max_timestep

    def action_index(self, action) -> int:
        return resolve_action(self.action_names, action)

    @property
    def W_action(self) -> torch.Tensor:
        return self._W_action

    @property
    def b_action(self) -> torch.Tensor:
        return self._b_action

    @property
    def W_state(self) -> torch.Tensor:
        return self._W_state

    @property
    def b_mlp_out(self) -> torch.Tensor:
        return self._b_mlp_out

    # ---- embeddings ---------------------------------------------------------------------------
    def embed_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(rtgs).float()[..., None] * self._w_rtg

    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self._time_fn(torch.as_tensor(timesteps).long())

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        return self._E_action[torch.as_tensor(actions).long()]

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(observations)
        if self._one_hot and obs.shape[-1] == 3:
            obs = torch.cat([torch.nn.functional.one_hot(obs[..., i].long(), n) for i, n in enumerate(N_CODES)], -1)
        x = obs.float().movedim(-1, -3)
        return x.reshape(*x.shape[:-3], -1)

    def make_window(self, observations, rtgs, timesteps=None, actions=None) -> TrajectoryWindow:
        return make_window(observations, rtgs, timesteps, actions, n_timesteps=self.layout.n_timesteps,
                           pad_action=self.pad_action)

    def _fire(self, name: str, x: torch.Tensor) -> torch.Tensor:
        for fn in self._dt_hooks.get(name, []):
            out = fn(x, None)
            x = x if out is None else out
        return x

    @torch.inference_mode()
    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        B, T = window.observations.shape[:2]
        real = torch.arange(T)[None, :] >= window.n_pad[:, None]
        time = self._fire("dt.hook_time_embed", self.embed_time(window.timesteps))
        rtg = self._fire("dt.hook_rtg_embed", self.embed_rtg(window.rtgs)) if self.layout.has_rtg else None
        state = self._fire("dt.hook_state_embed", self._state_tokens(self.features(window.observations), real))
        lay = self.layout  # tokens placed where the layout says (R-s-a, s-a, R-s)
        tokens = torch.zeros(B, lay.n_tokens, state.shape[-1])
        tokens[:, lay.positions("state")] = state + time
        if lay.has_rtg:
            tokens[:, lay.positions("rtg")] = rtg + time
        if lay.has_action and T > 1:
            tokens[:, lay.positions("action")] = self._fire("dt.hook_action_embed", self.embed_action(window.actions)) + time[:, :-1]
        return self._fire("dt.hook_tokens", tokens)

    def _state_tokens(self, feats: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``[B, T, n_features]`` -> ``W_state @ features`` ``[B, T, d_model]`` (zero features at padded steps)."""
        return (feats * real[..., None]) @ self._W_state.T

    # ---- running ------------------------------------------------------------------------------
    def _logits(self, resid: torch.Tensor) -> torch.Tensor:
        return resid[:, self.layout.prediction_position] @ self._W_action.T + self._b_action

    @torch.inference_mode()
    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        return self._logits(self.backbone(self.embed(window)))

    @torch.inference_mode()
    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        def wanted(n: str) -> bool:
            if names_filter is None:
                return True
            if isinstance(names_filter, str):
                return n == names_filter
            if isinstance(names_filter, (list, tuple, set)):
                return n in names_filter
            return bool(names_filter(n))

        store: dict[str, Any] = {}
        saves = {n: [lambda x, hook, n=n: store.__setitem__(n, x)] for n in DT_HOOKS if wanted(n)}
        self._dt_hooks = saves
        try:
            tokens = self.embed(window)
        finally:
            self._dt_hooks = {}
        # backbone hooks with their TransformerLens 3.9 meaning on both majors: through the names' owner
        bb_names = [n for n in hooks.accepted_names(self.backbone) if wanted(n)]
        resid, cache = hooks.run_backbone(self.backbone, tokens, cache=bb_names)
        cache.update(store)
        return self._logits(resid), ActivationCache(cache, self.backbone)

    @torch.inference_mode()
    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks=()) -> torch.Tensor:
        dt = [(n, f) for n, f in fwd_hooks if isinstance(n, str) and n.startswith("dt.")]
        bb = [(n, f) for n, f in fwd_hooks if not (isinstance(n, str) and n.startswith("dt."))]
        self._dt_hooks = {}
        for n, f in dt:
            self._dt_hooks.setdefault(n, []).append(f)
        try:
            tokens = self.embed(window)
        finally:
            self._dt_hooks = {}
        return self._logits(hooks.run_backbone(self.backbone, tokens, bb)[0])


def minimal_from(sd: dict[str, torch.Tensor], *, backbone, layout: TokenLayout, schema: ObservationSchema,
                 action_names: Sequence[str], rtg_range: tuple[float, float], max_timestep: int, one_hot: bool,
                 n_layers: int, cls=None, **extra) -> MinimalAdapter:
    """A :class:`MinimalAdapter` from reference-layout tensors ``sd`` (the checkpoint format: the DT's
    embeddings and head; ``transformer.blocks.{l}.mlp.b_out`` for the MLP biases) and a TL backbone."""
    if "time_embedding.bias" in sd:  # linear time embedding: Linear(1, d) of the float timestep
        w_t, b_t = sd["time_embedding.weight"][:, 0].clone(), sd["time_embedding.bias"].clone()

        def time_fn(t):
            return t.float()[..., None] * w_t + b_t
    else:
        table = sd["time_embedding.weight"].clone()

        def time_fn(t):
            return table[t]
    b_out = torch.stack([sd[f"transformer.blocks.{l}.mlp.b_out"] for l in range(n_layers)]).clone()
    return (cls or MinimalAdapter)(backbone=backbone, layout=layout, schema=schema, action_names=action_names,
                          rtg_range=rtg_range, max_timestep=max_timestep,
                          w_rtg=sd["reward_embedding.0.weight"][:, 0].clone(), time_fn=time_fn,
                          E_action=sd["action_embedding.0.weight"].clone(), W_state=sd["state_embedding.weight"].clone(),
                          W_action=sd["action_predictor.weight"].clone(), b_action=sd["action_predictor.bias"].clone(),
                          b_mlp_out=b_out, one_hot=one_hot, **extra)
