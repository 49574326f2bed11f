"""HF Decision Transformer test helpers: models, real MiniGrid windows, and HF's own forward as the reference.

The reference is ``transformers``' ``DecisionTransformerModel.forward`` itself, fed the continuous inputs a
user would build (flattened observation, one-hot actions, ``attention_mask`` for padded steps), with the
pre-``tanh`` action scores read by a torch forward hook on ``predict_action[0]``. No dtwidgets code runs in it.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

ENV = "MiniGrid-Dynamic-Obstacles-8x8-v0"
N_ACTIONS = 3


def hf_model(seed: int = 0, *, randomise: bool = False, state_dim: int = 147, **kw):
    """A fresh ``DecisionTransformerModel`` for Dynamic Obstacles; ``randomise`` perturbs every parameter
    (biases, LayerNorm weights, ``wpe``) so no term is trivially zero or one."""
    from transformers import DecisionTransformerConfig, DecisionTransformerModel

    cfg = dict(state_dim=state_dim, act_dim=N_ACTIONS, hidden_size=32, n_layer=2, n_head=4, max_ep_len=128,
               bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    model = DecisionTransformerModel(DecisionTransformerConfig(**{**cfg, **kw})).eval()
    if randomise:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return model


@functools.lru_cache(maxsize=None)
def trajectories(n_episodes: int = 24):
    from dtwidgets.data import collect_trajectories

    return collect_trajectories(ENV, n_episodes=n_episodes, n_envs=4, max_steps=100, seed=3, progress=False)


def real_windows(adapter, n: int = 48, seed: int = 0):
    """``n`` windows cut from real Dynamic-Obstacles episodes, about a third of them left-padded (episode
    starts). RTG = the remaining return of the episode."""
    from dtwidgets.adapters.window import TrajectoryWindow

    traj = trajectories()
    rng = np.random.default_rng(seed)
    T = adapter.layout.n_timesteps
    out = []
    for k in range(n):
        e = int(rng.integers(len(traj.episode_starts)))
        s0, L = int(traj.episode_starts[e]), int(traj.episode_lengths[e])
        i = int(rng.integers(0, min(L, T - 1))) if k % 3 == 0 and T > 1 else int(rng.integers(0, L))
        lo = max(0, i - T + 1)
        rew = traj.rewards[s0:s0 + L]
        rtgs = [float(rew[j:].sum()) for j in range(lo, i + 1)]
        out.append(adapter.make_window(traj.observations[s0 + lo:s0 + i + 1], rtgs, traj.timesteps[s0 + lo:s0 + i + 1],
                                       traj.actions[s0 + lo:s0 + i] if i > lo else None))
    return TrajectoryWindow.cat(out)


def hf_inputs(window, *, one_hot: bool = False, layout: str = "xyc", mean=None, std=None, rtg_scale: float = 1.0,
              act_dim: int = N_ACTIONS) -> dict:
    """The HF forward's keyword arguments for a dtwidgets window (written from the HF docs, not dtwidgets)."""
    obs = window.observations.long()
    B, T = obs.shape[:2]
    if one_hot:
        x = torch.cat([F.one_hot(obs[..., 0], 11), F.one_hot(obs[..., 1], 6), F.one_hot(obs[..., 2], 3)], -1).float()
    else:
        x = obs.float()
    if layout == "cxy":
        x = x.movedim(-1, -3)
    states = x.reshape(B, T, -1)
    if mean is not None:
        states = (states - torch.as_tensor(mean, dtype=torch.float32)) / torch.as_tensor(std, dtype=torch.float32)
    actions = torch.zeros(B, T, act_dim)
    a = window.actions
    real_a = a < act_dim
    actions[:, : T - 1][real_a] = F.one_hot(a[real_a], act_dim).float()
    mask = (torch.arange(T)[None] >= window.n_pad[:, None]).long()
    return dict(states=states, actions=actions, returns_to_go=window.rtgs[..., None] / rtg_scale,
                timesteps=window.timesteps, attention_mask=mask, return_dict=True)


@torch.no_grad()
def hf_scores(model, window, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pre-activation scores [B, A], action_preds [B, A])`` of HF's forward at the last state token."""
    seen = {}
    handle = model.predict_action[0].register_forward_hook(lambda mod, inp, out: seen.__setitem__("z", out))
    try:
        out = model.eval()(**hf_inputs(window, act_dim=model.config.act_dim, **kw))
    finally:
        handle.remove()
    return seen["z"][:, -1], out.action_preds[:, -1]


def train_briefly(model, windows, steps: int = 40, lr: float = 3e-3, seed: int = 0, **kw):
    """A few dozen Adam steps of cross-entropy on the taken actions (HF forward, real trajectories)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    inputs = hf_inputs(windows, act_dim=model.config.act_dim, **kw)
    target, real = windows.actions, windows.actions < model.config.act_dim
    for _ in range(steps):
        out = model(**inputs)
        loss = F.cross_entropy(out.action_preds[:, :-1][real], target[real])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), float(loss.detach())
