"""Train the project's Decision Transformer on :class:`~dtwidgets.data.Trajectories` (CPU, minutes).
The loop is :class:`~dtwidgets.training.loop.Trainer`; the schedule :class:`~dtwidgets.training.schedules.WarmupCosine`.

Loss: cross-entropy on the action at every (real) state token of a window. Windows end at a sampled
step and are left-padded at the episode start exactly as at evaluation time (``make_window``
convention), conditioned on the return-to-go. Sampling: steps are drawn with per-outcome weights
(goal / collision / timeout episodes, uniform over steps within an outcome), and with probability
``prob_go_from_end`` the window ends at the episode's final step instead (the decisive step).
AdamW with weight decay, linear warm-up then cosine decay, gradient clipping, fixed seeds.
Checkpoints (training-dynamics views) are written on a schedule: ``n_checkpoints`` log-spaced early
then linear (:func:`checkpoint_steps`), or every ``checkpoint_every`` steps; each records the loss of
the batch that led to it (NaN at step 0). The batches come from :func:`data_order`, a function of
the seed, so the exact data order can be rebuilt. A quick calibration runs every ``eval_every`` steps.
:func:`load_series` reads the checkpoints back in step order.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.trajectories import Trajectories
from .loop import Callback, Every, Trainer
from .schedules import WarmupCosine


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
    checkpoint_every: int = 0  # 0 = no intermediate checkpoints (unless n_checkpoints)
    n_checkpoints: int = 0  # > 0: this many checkpoints, log-spaced early then linear (overrides checkpoint_every)
    log_fraction: float = 0.5  # share of n_checkpoints on the log-spaced early part
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


def train(model, traj: Trajectories, cfg: TrainConfig | None = None, out_dir=None, progress: bool = True) -> TrainResult:
    """Train ``model`` (a :class:`~dtwidgets.model.DecisionTransformer`, or a ``DTConfig`` to build one).

    Args:
        model: the model (trained in place) or its config.
        traj: training trajectories (same env as the model).
        cfg: :class:`TrainConfig`.
        out_dir: where ``checkpoints/step_XXXXXX.safetensors`` + ``checkpoints/index.json`` go (None = none);
            the steps are :func:`schedule_of` ``(cfg)``.
        progress: tqdm progress bar with the running loss.
    """
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
    return _train(model, traj, cfg, out_dir, progress)


def checkpoint_steps(n_steps: int, n_checkpoints: int, log_fraction: float = 0.5) -> list[int]:
    """Checkpoint schedule: step 0, about ``log_fraction * n_checkpoints`` log-spaced steps early on
    (1, 2, 4, ... up to the switch point), then linear spacing to ``n_steps`` (always included).

    Returns sorted unique steps (at most ``n_checkpoints + 1`` of them, counting step 0).
    """
    n_steps, n_checkpoints = int(n_steps), int(n_checkpoints)
    if n_steps < 1 or n_checkpoints < 1:
        raise ValueError(f"expected n_steps >= 1 and n_checkpoints >= 1, got {n_steps} and {n_checkpoints}")
    if not 0.0 <= log_fraction <= 1.0:
        raise ValueError(f"expected log_fraction in [0, 1], got {log_fraction}")
    n_log = int(round(n_checkpoints * log_fraction))
    n_lin = n_checkpoints - n_log
    switch = max(1, n_steps // max(n_lin + 1, 1)) if n_lin else n_steps
    steps = {0, n_steps}
    if n_log:
        steps.update(int(round(x)) for x in np.geomspace(1, switch, n_log))
    if n_lin:
        steps.update(int(round(x)) for x in np.linspace(switch, n_steps, n_lin + 1)[1:])
    return sorted(s for s in steps if 0 <= s <= n_steps)


def schedule_of(cfg: TrainConfig) -> list[int]:
    """The checkpoint steps of a config: ``n_checkpoints`` (log then linear) or every ``checkpoint_every``."""
    if cfg.n_checkpoints:
        return checkpoint_steps(cfg.n_steps, cfg.n_checkpoints, cfg.log_fraction)
    if cfg.checkpoint_every:
        return list(range(0, cfg.n_steps + 1, cfg.checkpoint_every))
    return []


def data_order(traj: Trajectories, cfg: TrainConfig):
    """Yield ``[batch_size]`` window-end step indices of every optimiser step, in training order.

    A function of ``cfg.seed`` (and the sampling settings) only: :func:`train` draws its batches from
    this generator, so step ``k``'s batch can be rebuilt exactly (``traj.windows(ends, T, pad)``)."""
    rng = np.random.default_rng(cfg.seed)
    cdf = np.cumsum(step_weights(traj, cfg.outcome_weights))
    for _ in range(cfg.n_steps):
        yield sample_ends(traj, cdf, cfg.batch_size, cfg.prob_go_from_end, rng)


def _optimizer(model, cfg: TrainConfig):
    import torch

    decay: list = []
    no_decay: list = []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def window_loss(model, win, targets):
    """``(loss, accuracy)``: cross-entropy on the action at every real state token of the windows."""
    import torch

    logits = model(win)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)
    with torch.no_grad():
        real = targets != -100
        acc = (logits.argmax(-1)[real] == targets[real]).float().mean()
    return loss, acc


class _Checkpoints(Callback):
    """Writes ``checkpoints/step_XXXXXX.safetensors`` and ``checkpoints/index.json`` at scheduled steps
    (step 0 before training, with loss NaN; step ``k`` after ``k`` steps, with that step's batch loss)."""

    def __init__(self, out_dir, cfg: TrainConfig, model, evals: list):
        self.dir = Path(out_dir) / "checkpoints" if out_dir is not None else Path()
        self.steps: set[int] = set(schedule_of(cfg)) if out_dir is not None else set()
        self.cfg, self.model, self.evals = cfg, model, evals
        self.records: list[dict] = []
        if self.steps:
            self.dir.mkdir(parents=True, exist_ok=True)

    def on_start(self, trainer: Trainer) -> None:
        self.maybe_save(self.model, 0, float("nan"), self.evals)

    def on_step(self, trainer: Trainer, step: int) -> None:
        self.maybe_save(self.model, step + 1, trainer.history["loss"][-1], self.evals)

    def maybe_save(self, model, step: int, loss: float | None, evals: list) -> None:
        from ..model import save_model

        if step not in self.steps:
            return
        path = self.dir / f"step_{step:06d}.safetensors"
        save_model(model, path)
        self.records.append({"step": step, "path": path.name, "loss": loss})
        (self.dir / "index.json").write_text(json.dumps(
            {"train_config": _jsonable(asdict(self.cfg)), "checkpoints": self.records, "evals": evals}, indent=1))


def _evaluate(model, traj, cfg: TrainConfig, step: int) -> dict:
    from ..model import DTAdapter
    from ..data.calibration import calibrate

    res = calibrate(DTAdapter(model), model.cfg.env_id, rtgs=cfg.eval_rtgs, n_episodes=cfg.eval_episodes,
                    n_envs=cfg.eval_n_envs, max_steps=traj.max_steps, seed=2_000_000, progress=False,
                    torch_threads=None)
    model.train()
    fr = res.outcome_fractions
    return {"step": step, "rtgs": res.rtgs.tolist(), "mean_return": res.mean_return.tolist(),
            **{f"frac_{k}": v.tolist() for k, v in fr.items()}}


def _eval_line(rec: dict) -> str:
    return f"step {rec['step']}: " + ", ".join(
        f"R={r:+.1f} ret {m:+.2f} goal {g:.0%} coll {c:.0%}" for r, m, g, c in
        zip(rec["rtgs"], rec["mean_return"], rec["frac_goal"], rec["frac_collision"]))


def _train(model, traj, cfg, out_dir, progress):
    import torch

    mcfg = model.cfg
    T, pad = mcfg.layout.n_timesteps, mcfg.n_actions
    rtg = np.clip(traj.rtg(), *mcfg.rtg_range)
    torch.manual_seed(cfg.seed)
    opt = _optimizer(model, cfg)
    evals: list = []
    ckpts = _Checkpoints(out_dir, cfg, model, evals)
    order = data_order(traj, cfg)

    def loss_fn(step):
        loss, acc = window_loss(model, *traj.windows(next(order), T, pad, rtgs=rtg))
        return loss, {"accuracy": acc}

    def postfix(trainer, done):
        s = slice(max(0, done - cfg.log_every), done)
        trainer.bar.set_postfix(loss=f"{np.mean(trainer.history['loss'][s], dtype=np.float32):.4f}",
                                acc=f"{np.mean(trainer.history['accuracy'][s], dtype=np.float32):.3f}", refresh=False)

    def evaluate(trainer, done):
        evals.append(_evaluate(model, traj, cfg, done))
        if progress:
            trainer.bar.write(_eval_line(evals[-1]))

    trainer = Trainer(opt, WarmupCosine(cfg.lr, cfg.n_steps, cfg.warmup_steps, cfg.min_lr_ratio), cfg.n_steps,
                      grad_clip=cfg.grad_clip, clip_params=model.parameters(), threads=cfg.torch_threads,
                      callbacks=[Every(cfg.log_every, postfix), Every(cfg.eval_every, evaluate), ckpts],
                      progress=progress, desc="train")
    model.train()
    hist = trainer.run(loss_fn)
    model.eval()
    return TrainResult(model, np.asarray(hist["loss"], np.float32), np.asarray(hist["accuracy"], np.float32), evals,
                       ckpts.records, trainer.seconds)


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))
