"""Train the project's Decision Transformer on :class:`~dtwidgets.data.Trajectories` (CPU, minutes).

Loss: cross-entropy on the action at every (real) state token of a window. Windows end at a sampled
step and are left-padded at the episode start exactly as at evaluation time (``make_window``
convention), conditioned on the return-to-go. Sampling: steps are drawn with per-outcome weights
(goal / collision / timeout episodes, uniform over steps within an outcome), and with probability
``prob_go_from_end`` the window ends at the episode's final step instead (the decisive step).
AdamW with weight decay, linear warm-up then cosine decay, gradient clipping, fixed seeds.
Checkpoints are written every ``checkpoint_every`` steps (training-dynamics views) and a quick
calibration runs every ``eval_every`` steps.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .trajectories import Trajectories


@dataclass
class TrainConfig:
    """Optimisation settings (see the module docstring)."""

    n_steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    prob_go_from_end: float = 0.1
    outcome_weights: dict | None = field(default_factory=lambda: {"goal": 1.0, "collision": 1.0, "timeout": 1.0})
    seed: int = 0
    checkpoint_every: int = 0  # 0 = no intermediate checkpoints
    eval_every: int = 0  # 0 = no evaluation during training
    eval_rtgs: tuple = (-1.0, 0.0, 0.9)
    eval_episodes: int = 16
    eval_n_envs: int = 48
    log_every: int = 50
    torch_threads: int | None = 1  # 1 is as fast for these small models and robust on busy machines


@dataclass
class TrainResult:
    model: object
    losses: np.ndarray
    accuracies: np.ndarray
    evals: list = field(default_factory=list)
    checkpoints: list = field(default_factory=list)
    elapsed_s: float = 0.0


def step_weights(traj: Trajectories, outcome_weights: dict | None) -> np.ndarray:
    """``[N]`` sampling probability of each step as a window end (sums to 1)."""
    N = traj.n_steps
    if outcome_weights is None:
        return np.full(N, 1.0 / N)
    out = np.repeat(traj.outcomes(), traj.episode_lengths)
    unknown = set(outcome_weights) - {"goal", "collision", "timeout", "unfinished"}
    if unknown:
        raise ValueError(f"expected outcome_weights keys among goal/collision/timeout/unfinished, got {sorted(unknown)}")
    w = np.zeros(N)
    for k, v in outcome_weights.items():
        m = out == k
        if m.any() and v > 0:
            w[m] = float(v) / m.sum()
    if w.sum() <= 0:
        raise ValueError(f"no steps have a positive sampling weight: outcomes present {traj.outcome_counts()}, "
                         f"weights {outcome_weights}")
    return w / w.sum()


def sample_ends(traj: Trajectories, cdf: np.ndarray, batch_size: int, prob_go_from_end: float,
                rng: np.random.Generator) -> np.ndarray:
    """``[B]`` window-end step indices: weighted steps, or (with ``prob_go_from_end``) their episode's last step."""
    ends = np.minimum(np.searchsorted(cdf, rng.random(batch_size), side="right"), traj.n_steps - 1)
    if prob_go_from_end > 0:
        go = rng.random(batch_size) < prob_go_from_end
        if go.any():
            last = traj.episode_ends()[traj.episode_ids()[ends[go]]]
            ends[go] = last
    return ends


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.n_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def train(model, traj: Trajectories, cfg: TrainConfig | None = None, out_dir=None, progress: bool = True) -> TrainResult:
    """Train ``model`` (a :class:`~dtwidgets.model.DecisionTransformer`, or a ``DTConfig`` to build one).

    Args:
        model: the model (trained in place) or its config.
        traj: training trajectories (same env as the model).
        cfg: :class:`TrainConfig`.
        out_dir: where ``checkpoints/step_XXXXXX.safetensors`` + ``checkpoints/index.json`` go (None = none).
        progress: tqdm progress bar with the running loss.
    """
    import torch

    from ..model import DecisionTransformer, DTConfig

    cfg = cfg or TrainConfig()
    if isinstance(model, DTConfig):
        model = DecisionTransformer(model)
    mcfg = model.cfg
    if traj.env_id != mcfg.env_id:
        raise ValueError(f"expected trajectories of the model's env {mcfg.env_id}, got {traj.env_id}")
    if traj.actions.size and traj.actions.max() >= mcfg.n_actions:
        raise ValueError(f"trajectories hold action {int(traj.actions.max())}, the model has {mcfg.n_actions} actions")
    if traj.timesteps.size and traj.timesteps.max() > mcfg.max_timestep:
        raise ValueError(f"trajectories reach timestep {int(traj.timesteps.max())}, the model's time embedding "
                         f"stops at {mcfg.max_timestep}")
    threads = torch.get_num_threads()
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    try:
        return _train(model, traj, cfg, out_dir, progress)
    finally:
        torch.set_num_threads(threads)


def _train(model, traj, cfg, out_dir, progress):
    import torch
    from tqdm.auto import tqdm

    from ..model import DTAdapter, save_model
    from .calibration import calibrate

    mcfg = model.cfg
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    T = mcfg.layout.n_timesteps
    pad = mcfg.n_actions
    cdf = np.cumsum(step_weights(traj, cfg.outcome_weights))
    rtg = traj.rtg()
    lo, hi = mcfg.rtg_range
    rtg = np.clip(rtg, lo, hi)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    ckpt_dir = Path(out_dir) / "checkpoints" if out_dir is not None else None
    if ckpt_dir is not None and cfg.checkpoint_every:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    losses = np.zeros(cfg.n_steps, np.float32)
    accs = np.zeros(cfg.n_steps, np.float32)
    evals, ckpts = [], []
    t0 = time.perf_counter()

    def evaluate(step):
        res = calibrate(DTAdapter(model), mcfg.env_id, rtgs=cfg.eval_rtgs, n_episodes=cfg.eval_episodes,
                        n_envs=cfg.eval_n_envs, max_steps=traj.max_steps, seed=2_000_000, progress=False,
                        torch_threads=None)
        model.train()
        fr = res.outcome_fractions
        rec = {"step": step, "rtgs": res.rtgs.tolist(), "mean_return": res.mean_return.tolist(),
               **{f"frac_{k}": v.tolist() for k, v in fr.items()}}
        evals.append(rec)
        return rec

    def checkpoint(step):
        path = ckpt_dir / f"step_{step:06d}.safetensors"
        save_model(model, path)
        ckpts.append({"step": step, "path": path.name, "loss": float(losses[max(step - 1, 0)])})
        (ckpt_dir / "index.json").write_text(json.dumps({"train_config": _jsonable(asdict(cfg)), "checkpoints": ckpts,
                                                         "evals": evals}, indent=1))

    model.train()
    bar = tqdm(range(cfg.n_steps), desc="train", unit="step", disable=not progress, leave=False)
    if ckpt_dir is not None and cfg.checkpoint_every:
        checkpoint(0)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        ends = sample_ends(traj, cdf, cfg.batch_size, cfg.prob_go_from_end, rng)
        win, targets = traj.windows(ends, T, pad, rtgs=rtg)
        logits = model(win)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses[step] = loss.item()
        with torch.no_grad():
            real = targets != -100
            accs[step] = (logits.argmax(-1)[real] == targets[real]).float().mean().item()
        done = step + 1
        if cfg.log_every and done % cfg.log_every == 0:
            s = slice(max(0, done - cfg.log_every), done)
            bar.set_postfix(loss=f"{losses[s].mean():.4f}", acc=f"{accs[s].mean():.3f}", refresh=False)
        if cfg.eval_every and done % cfg.eval_every == 0:
            rec = evaluate(done)
            if progress:
                bar.write(f"step {done}: " + ", ".join(
                    f"R={r:+.1f} ret {m:+.2f} goal {g:.0%} coll {c:.0%}" for r, m, g, c in
                    zip(rec["rtgs"], rec["mean_return"], rec["frac_goal"], rec["frac_collision"])))
        if ckpt_dir is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            checkpoint(done)
    bar.close()
    model.eval()
    return TrainResult(model, losses, accs, evals, ckpts, time.perf_counter() - t0)


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))
