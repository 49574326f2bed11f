""":class:`HFDTAdapter`: a HuggingFace ``DecisionTransformerModel`` bound to the :class:`ModelAdapter` protocol.

Built by :func:`dtwidgets.model.load_hf_decision_transformer`; see ``docs/huggingface.md``.

The HF model's forward, for a window of ``T`` steps (``t`` = step, ``x_p`` = the raw token at ``p``)::

    x[R_t] = ρ_t + τ_t,  x[s_t] = φ_t + τ_t,  x[a_t] = α_t + τ_t
    ρ_t = embed_return(rtg_t / rtg_scale)       τ_t = embed_timestep(timestep_t)
    φ_t = embed_state((state_t - mean) / std)    α_t = embed_action(one_hot(action_t))
    h0[p] = embed_ln(x_p) + wpe[0]     (position ids are all zero in HF)
    logits = predict_action[0](ln_f(blocks(h0))[s_T])      (pre-``tanh``, see below)

**Embedding decomposition (exact).** ``embed_ln(x) = γ ⊙ centre(x) / σ_p + β`` with
``σ_p = sqrt(var(x_p) + eps)``. Centring is linear, so with ``C(v) = γ ⊙ centre(v)`` the token fed to
the backbone (``embed``/``dt.hook_tokens``, before ``W_pos``) splits exactly into the ``dt.*`` hooks::

    dt.hook_time_embed[t]   = C(τ_t) / σ[s_t]                 (time term at the state token's scale)
    dt.hook_state_embed[t]  = C(φ_t) / σ[s_t]
    dt.hook_rtg_embed[t]    = (C(ρ_t) + C(τ_t)) / σ[R_t] - dt.hook_time_embed[t]
    dt.hook_action_embed[t] = (C(α_t) + C(τ_t)) / σ[a_t] - dt.hook_time_embed[t]
    W_pos[p] = wpe[0] + β  for every p  (the constant of every token: GPT-2's position 0 + embed_ln's bias)

so ``kind embed + time embed + W_pos == embed_ln(x) + wpe[0]`` at every position. At state tokens (where
actions are read and attributed) each term is exactly that input's own share. At RTG and action tokens
the time term is the one scaled for the state token of the same step, and the RTG/action hook carries
the rest, including ``C(τ_t) (1/σ[R_t] - 1/σ[s_t])``. ``dt.hook_embed_ln_scale`` caches ``σ`` ``[B, P, 1]``.
Hooks that edit a ``dt.*`` term act with ``embed_ln``'s scale frozen (tokens are their sum).

**Weight views** (``W_state``, ``embed_rtg``, ``embed_time``, ``embed_action``) use the same map with
``σ = 1``: ``C(raw term)``, i.e. the term's direction in the residual stream after ``embed_ln``'s weight
and centring, ignoring its per-token scale (like TransformerLens' weight-only views take LN scales as 1).

**Action head.** ``forward``, ``run_with_cache`` and ``run_with_hooks`` return the *pre-activation*
scores ``z = ln_f(resid[s_T]) @ W_action.T + b_action`` (``[B, n_actions]``). When the HF config has
``action_tanh`` (``output_activation == "tanh"``), HF's ``action_preds`` are ``tanh(z)``; ``tanh`` is
monotonic, so the arg-max action and every preference order are the same, and direct attribution
decomposes ``z_a - z_b`` exactly (not ``tanh(z_a) - tanh(z_b)``). Softmax "probabilities" are
``softmax(z)`` (what a cross-entropy-trained head means by them).

**Padding.** dtwidgets windows are left-padded (``n_pad``). HF masks padded steps with
``attention_mask``; here permanent hooks on ``blocks.{l}.attn.hook_pattern`` drop attention to padded
keys and renormalise (a padded query keeps only itself), which equals HF's masked softmax. Cached
patterns are the masked ones.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from transformer_lens import ActivationCache
from transformer_lens.hook_points import HookPoint

from ..adapters import hooks
from ..adapters.device import resolve_device
from ..adapters.layout import TokenLayout
from ..adapters.schema import ObservationSchema, resolve_action
from ..adapters.window import TrajectoryWindow, make_window
from .adapter import dt_hooks
from .dt import _one_hot_features

EMBED_HOOKS = (hooks.DT_RTG_EMBED, hooks.DT_STATE_EMBED, hooks.DT_ACTION_EMBED, hooks.DT_TIME_EMBED,
               hooks.DT_TOKENS, hooks.DT_EMBED_LN_SCALE)


class HFEmbedding(nn.Module):
    """The HF DT's input side in dtwidgets' feature order (buffers, no gradients).

    Buffers (``d`` = hidden size, ``F`` = n_features in ``(channel, x, y)`` order, ``A`` = act_dim):
        W_state_hf, b_state ``[d, F]``, ``[d]`` = ``embed_state`` (columns reordered); mean, std ``[F]`` its input
        normalisation (applied as HF does, ``(f - mean) / std`` first); w_rtg, b_rtg ``[d]`` (``embed_return``);
        W_act ``[d, A]``, b_act ``[d]``; time ``[max_ep_len, d]``; ln_w ``[d]`` (``embed_ln.weight``; its bias is in ``W_pos``).
    """

    W_state_hf: torch.Tensor
    b_state: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    w_rtg: torch.Tensor
    b_rtg: torch.Tensor
    W_act: torch.Tensor
    b_act: torch.Tensor
    time: torch.Tensor
    ln_w: torch.Tensor

    def __init__(self, tensors: dict[str, torch.Tensor], eps: float, rtg_scale: float):
        super().__init__()
        for name, t in tensors.items():
            self.register_buffer(name, t.detach().float().cpu().clone().contiguous())
        self.eps, self.rtg_scale = float(eps), float(rtg_scale)
        points = {}
        for name in EMBED_HOOKS:
            points[name.split(".")[1]] = hp = HookPoint()
            hp.name = name
        self.hooks = nn.ModuleDict(points)

    def centre(self, v: torch.Tensor) -> torch.Tensor:
        """``C(v) = γ ⊙ (v - mean(v))`` over the last axis."""
        return self.ln_w * (v - v.mean(-1, keepdim=True))

    def raw_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        return (rtgs.float() / self.rtg_scale)[..., None] * self.w_rtg + self.b_rtg

    def raw_action(self, actions: torch.Tensor) -> torch.Tensor:
        """``embed_action(one_hot(a))``; the pad action (``== A``) is the all-zero vector (the bias)."""
        A = self.W_act.shape[1]
        onehot = nn.functional.one_hot(actions.long(), A + 1)[..., :A].float()
        return onehot @ self.W_act.T + self.b_act

    def raw_state(self, feats: torch.Tensor) -> torch.Tensor:
        return ((feats - self.mean) / self.std) @ self.W_state_hf.T + self.b_state

    @property
    def W_state_raw(self) -> torch.Tensor:
        """``embed_state.weight / std`` ``[d, F]``: per unit of each raw feature."""
        return self.W_state_hf / self.std

    def forward(self, feats, rtgs, actions, timesteps) -> torch.Tensor:
        """``feats [B, T, F]``, ``rtgs [B, T]``, ``actions [B, T-1]``, ``timesteps [B, T]`` -> tokens ``[B, 3T-1, d]``."""
        B, T = rtgs.shape
        h = self.hooks
        rho, phi, tau = self.raw_rtg(rtgs), self.raw_state(feats), self.time[timesteps.long()]
        alpha = self.raw_action(actions)
        x = torch.zeros(B, 3 * T - 1, tau.shape[-1], dtype=tau.dtype, device=tau.device)
        x[:, 0::3], x[:, 1::3], x[:, 2::3] = rho + tau, phi + tau, alpha + tau[:, :-1]
        sigma = h["hook_embed_ln_scale"]((x.var(-1, unbiased=False, keepdim=True) + self.eps).sqrt())
        s_state = sigma[:, 1::3]
        time = self.centre(tau) / s_state
        rtg = (self.centre(rho) + self.centre(tau)) / sigma[:, 0::3] - time
        state = h["hook_state_embed"](self.centre(phi) / s_state)
        tokens = torch.zeros_like(x)
        if T > 1:
            act = (self.centre(alpha) + self.centre(tau[:, :-1])) / sigma[:, 2::3] - time[:, :-1]
            act = h["hook_action_embed"](act)
        time = h["hook_time_embed"](time)
        tokens[:, 0::3] = h["hook_rtg_embed"](rtg) + time
        tokens[:, 1::3] = state + time
        if T > 1:
            tokens[:, 2::3] = act + time[:, :-1]
        return h["hook_tokens"](tokens)


class HFDTAdapter:
    """A HuggingFace ``DecisionTransformerModel`` on a TransformerLens backbone (TL 3.x or 4.x).

    Made by :func:`~dtwidgets.model.load_hf_decision_transformer`. Weights are copied at load time.
    See the module docstring for the embedding decomposition, the action head and padding.

    Attributes:
        backbone, layout, schema, action_names: the protocol's members.
        env_id: the MiniGrid env the model was bound to.
        output_activation: ``"tanh"`` when HF's ``action_preds = tanh(logits)`` (``config.action_tanh``),
            else ``None``. Logits here are always the pre-activation scores that attribution decomposes.
        state_layout: ``"xyc"`` or ``"cxy"``, the flattening order of HF's ``states`` vector.
        rtg_scale: HF's ``returns_to_go = rtg / rtg_scale``.
        hf_config: the HF config (a copy, for reference); hf_model: the source model (not used by analyses).
    """

    last_position_trim = True
    """Capability (optional protocol member): the backbone's last layer may run on the prediction
    position alone and give the same logits (analyses then skip the other positions' last MLP;
    verified once per backbone). Adapters without it run every position."""

    def __init__(self, backbone, embedding: HFEmbedding, W_action, b_action, b_mlp_out, *, schema: ObservationSchema,
                 n_timesteps: int, action_names, rtg_range, env_id: str, output_activation: str | None,
                 state_layout: str, hf_config=None, hf_model=None):
        self.backbone = backbone.eval()
        self.embedding = embedding.eval()
        self.layout = TokenLayout(n_timesteps=int(n_timesteps))
        self.schema = schema
        self.action_names = tuple(action_names)
        self.env_id = env_id
        self.output_activation = output_activation
        self.state_layout = state_layout
        self.rtg_scale = embedding.rtg_scale
        self.hf_config, self.hf_model = hf_config, hf_model
        self._rtg_range = (float(rtg_range[0]), float(rtg_range[1]))
        self._W_action, self._b_action = W_action.detach().float().cpu().clone(), b_action.detach().float().cpu().clone()
        self._b_mlp_out = b_mlp_out.detach().float().cpu().clone()
        self._keep: torch.Tensor | None = None  # [B, P] bool, set during a forward of a padded window
        self._n_masked = 0  # layers masked in the current forward
        for l in range(backbone.cfg.n_layers):
            backbone.hook_dict[hooks.pattern(l)].add_hook(self._mask_pattern, is_permanent=True)

    def __repr__(self) -> str:
        c = self.backbone.cfg
        act = f", {self.output_activation} head" if self.output_activation else ""
        return (f"HFDTAdapter({c.n_layers} layer(s), {c.n_heads} heads, d_model {c.d_model}, "
                f"{self.layout.n_timesteps} timesteps, {'one-hot' if self.schema.one_hot else 'raw'} obs "
                f"{self.schema.grid_shape}, actions {self.action_names}{act}, env {self.env_id})")

    # ---- protocol properties -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the weights live (optional protocol member); inputs are moved here."""
        return self._W_action.device

    def to(self, device) -> "HFDTAdapter":
        """Move every weight (backbone, embedding, head) to ``device`` (checked by
        :func:`~dtwidgets.adapters.device.resolve_device`); returns ``self``."""
        dev = resolve_device(device)
        if dev == self.device:
            return self
        self.backbone.to(dev)
        self.embedding.to(dev)
        self._W_action, self._b_action, self._b_mlp_out = (t.to(dev) for t in (self._W_action, self._b_action,
                                                                                 self._b_mlp_out))
        return self

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @property
    def pad_action(self) -> int:
        return self.n_actions

    @property
    def rtg_range(self) -> tuple[float, float]:
        return self._rtg_range

    @property
    def max_timestep(self) -> int:
        return int(self.embedding.time.shape[0]) - 1

    def action_index(self, action) -> int:
        return resolve_action(self.action_names, action)

    @property
    def W_action(self) -> torch.Tensor:
        """``predict_action[0].weight`` ``[n_actions, d_model]`` (reads ``ln_f``'s output)."""
        return self._W_action

    @property
    def b_action(self) -> torch.Tensor:
        return self._b_action

    @property
    def W_state(self) -> torch.Tensor:
        """``C(embed_state.weight / std)`` ``[d_model, n_features]``: per unit of each raw feature, after
        ``embed_ln``'s weight and centring, scale taken as 1."""
        return self.embedding.centre(self.embedding.W_state_raw.T).T

    @property
    def b_mlp_out(self) -> torch.Tensor:
        """MLP output biases (``mlp.c_proj.bias``) ``[n_layers, d_model]``."""
        return self._b_mlp_out

    @torch.inference_mode()
    def embed_rtg(self, rtgs) -> torch.Tensor:
        """RTG term ``C(embed_return(rtg / rtg_scale))`` ``[N, d_model]`` for ``rtgs [N]`` (reward units)."""
        e = self.embedding
        return e.centre(e.raw_rtg(torch.as_tensor(rtgs, dtype=torch.float32, device=self.device).reshape(-1)))

    @torch.inference_mode()
    def embed_time(self, timesteps) -> torch.Tensor:
        """Time term ``C(embed_timestep(t))`` ``[N, d_model]`` for ``timesteps [N]`` (0..max_timestep)."""
        t = torch.as_tensor(timesteps, device=self.device).reshape(-1).long()
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.max_timestep):
            raise ValueError(f"expected timesteps in [0, {self.max_timestep}], got min {int(t.min())}, max {int(t.max())}")
        return self.embedding.centre(self.embedding.time[t])

    @torch.inference_mode()
    def embed_action(self, actions) -> torch.Tensor:
        """Action term ``C(embed_action(one_hot(a)))`` ``[N, d_model]``; ``a == pad_action`` -> the zero vector's."""
        a = torch.as_tensor(actions, device=self.device).reshape(-1).long()
        if a.numel() and (int(a.min()) < 0 or int(a.max()) > self.n_actions):
            raise ValueError(f"expected actions in [0, {self.n_actions - 1}] (or pad {self.n_actions}), got {a.tolist()}")
        return self.embedding.centre(self.embedding.raw_action(a))

    # ---- inputs ------------------------------------------------------------------------
    def features(self, observations) -> torch.Tensor:
        """Observations ``[..., W, H, 3]`` raw codes (or ``[..., W, H, 20]`` one-hot for one-hot models) ->
        features ``[..., n_features]`` float32 in dtwidgets' ``(channel, x, y)`` order, before normalisation."""
        W, H = self.schema.grid_shape
        obs = torch.as_tensor(observations)
        c_model = self.schema.n_channels
        if obs.ndim < 3 or tuple(obs.shape[-3:-1]) != (W, H) or obs.shape[-1] not in {3, c_model}:
            raise ValueError(f"expected observations [..., {W}, {H}, 3] (raw MiniGrid codes)"
                             + (f" or [..., {W}, {H}, {c_model}] (one-hot)" if self.schema.one_hot else "")
                             + f", got shape {tuple(obs.shape)}")
        if self.schema.one_hot and obs.shape[-1] == 3:
            return _one_hot_features(obs)
        x = obs.float().movedim(-1, -3)
        return x.reshape(*x.shape[:-3], -1)

    def make_window(self, observations, rtgs, timesteps=None, actions=None) -> TrajectoryWindow:
        return make_window(observations, rtgs, timesteps, actions, n_timesteps=self.layout.n_timesteps,
                           pad_action=self.pad_action)

    def validate(self, window: TrajectoryWindow) -> None:
        """Raise one clear ValueError when a window does not fit this model."""
        T, B = self.layout.n_timesteps, window.observations.shape[0]
        for name, got, want in (("observations", tuple(window.observations.shape[:2]), (B, T)),
                                ("actions", tuple(window.actions.shape), (B, T - 1)),
                                ("rtgs", tuple(window.rtgs.shape), (B, T)), ("timesteps", tuple(window.timesteps.shape), (B, T)),
                                ("n_pad", tuple(window.n_pad.shape), (B,))):
            if got != want:
                raise ValueError(f"expected window.{name} with leading shape {want} (batch, {T} timesteps), got {got}")
        lo, hi = self.rtg_range
        r = window.rtgs
        if not torch.isfinite(r).all() or (r < lo - 1e-6).any() or (r > hi + 1e-6).any():
            raise ValueError(f"expected RTG values in [{lo}, {hi}], got min {r.min().item():.4g}, max {r.max().item():.4g}")
        t = window.timesteps
        if (t < 0).any() or (t > self.max_timestep).any():
            raise ValueError(f"expected timesteps in [0, {self.max_timestep}], got min {int(t.min())}, max {int(t.max())}")
        a = window.actions
        if a.numel() and ((a < 0).any() or (a > self.n_actions).any()):
            raise ValueError(f"expected actions in [0, {self.n_actions - 1}] (or pad {self.n_actions}), "
                             f"got min {int(a.min())}, max {int(a.max())}")
        if ((window.n_pad < 0) | (window.n_pad >= T)).any():
            raise ValueError(f"expected n_pad in [0, {T - 1}], got {window.n_pad.tolist()}")

    # ---- running -----------------------------------------------------------------------
    def _real_steps(self, window: TrajectoryWindow) -> torch.Tensor:
        T = self.layout.n_timesteps
        return torch.arange(T, device=self.device)[None, :] >= window.n_pad.to(self.device)[:, None]  # [B, T]

    def _tokens(self, window: TrajectoryWindow) -> torch.Tensor:
        self.validate(window)
        real = self._real_steps(window)
        feats = self.features(window.observations).to(self.device) * real[..., None]  # padded steps: all-zero features
        dev = self.device
        return self.embedding(feats, window.rtgs.to(dev), window.actions.to(dev), window.timesteps.to(dev))

    @contextmanager
    def _padding(self, window: TrajectoryWindow):
        """Mask attention to padded steps' tokens while the backbone runs (no-op without padding)."""
        real = self._real_steps(window)
        self._keep = None if bool(real.all()) else real.repeat_interleave(3, dim=1)[:, : self.layout.n_tokens]
        self._n_masked = 0
        try:
            yield
        finally:
            keep, self._keep = self._keep, None
        if keep is not None and self._n_masked < self.backbone.cfg.n_layers:
            raise RuntimeError(f"the padding mask ran in {self._n_masked} of {self.backbone.cfg.n_layers} layers: its "
                               "permanent hooks on blocks.{l}.attn.hook_pattern were removed (reset_hooks("
                               "including_permanent=True)?); reload the model with load_hf_decision_transformer")

    def _mask_pattern(self, pattern: torch.Tensor, hook) -> torch.Tensor | None:
        keep = self._keep
        if keep is None:
            return None
        if keep.shape[0] != pattern.shape[0]:
            raise RuntimeError(f"padding mask for {keep.shape[0]} rows, attention pattern has {pattern.shape[0]}")
        self._n_masked += 1
        P = pattern.shape[-1]
        k = keep[:, None, None, :P].to(pattern.device) | torch.eye(P, dtype=torch.bool, device=pattern.device)
        p = pattern * k
        return p / p.sum(-1, keepdim=True)

    def _head(self, resid_final: torch.Tensor) -> torch.Tensor:
        return resid_final[:, -1] @ self._W_action.T + self._b_action

    @torch.inference_mode()
    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        """Tokens ``[B, 3T-1, d_model]`` = ``embed_ln(x) - β`` (``W_pos`` holds ``wpe[0] + β``)."""
        return self._tokens(window)

    @torch.inference_mode()
    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        """Pre-activation action scores ``[B, n_actions]`` at the last state token."""
        tokens = self._tokens(window)
        with self._padding(window):
            return self._head(self.backbone(tokens))

    __call__ = forward

    @torch.inference_mode()
    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        wanted = hooks.cache_request(names_filter, (*EMBED_HOOKS, *hooks.accepted_names(self.backbone)),
                                     self.backbone.cfg.n_layers)
        store: dict[str, torch.Tensor] = {}

        def save(t, hook):
            store[hook.name] = t.detach()

        with self._dt_hooks([(n, save) for n in wanted if n.startswith("dt.")]):
            tokens = self._tokens(window)
        with self._padding(window):
            resid, cache = hooks.run_backbone(self.backbone, tokens, cache=[n for n in wanted if not n.startswith("dt.")])
        cache.update(store)
        return self._head(resid), ActivationCache(cache, self.backbone)

    @torch.inference_mode()
    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks=()) -> torch.Tensor:
        dt, bb = hooks.split_dt(fwd_hooks)
        with self._dt_hooks(dt):
            tokens = self._tokens(window)
        with self._padding(window):
            resid, _ = hooks.run_backbone(self.backbone, tokens, bb)
        return self._head(resid)

    def _dt_hooks(self, fwd_hooks):
        return dt_hooks([hp for hp in self.embedding.hooks.values() if isinstance(hp, HookPoint)], fwd_hooks)

