"""Behavioural clones: a Decision Transformer distilled from another DT's logits (not from behaviour data).

``distill(teacher, traj, student_config)`` runs the teacher (any
:class:`~dtwidgets.adapters.ModelAdapter`) on every recorded step's window once, then trains a fresh
:class:`~dtwidgets.model.DecisionTransformer` to match the teacher's action distribution at the
prediction position: ``KL(softmax(teacher / τ) || softmax(student / τ))`` (default, τ =
``temperature`` = 1) or the squared error of the mean-centred logits, on windows built the training
way (left-padded, conditioned on the recorded ``traj.rtgs`` of model rollouts, else the data's
return-to-go). The recorded actions are context only, never targets. Good distillation states are
the teacher's own: :func:`~dtwidgets.data.rollouts.record_rollouts` records them. The loop is
:class:`~dtwidgets.training.loop.Trainer`, the schedule :class:`~dtwidgets.training.schedules.WarmupCosine`.

Comparing the clone with its teacher (greedy-action agreement, attribution and ablation side by side):
:mod:`dtwidgets.analysis.model_comparison`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import _common as C
from .loop import Trainer, torch_threads
from .schedules import WarmupCosine


@dataclass
class DistillConfig:
    """Distillation settings: AdamW, linear warm-up then cosine decay to ``min_lr_ratio * lr``, fixed seed.

    ``loss``: ``"kl"`` (default) = KL(teacher || student) of the full action distributions at
    ``temperature``; ``"logit_mse"`` = squared error of the mean-centred logits.
    ``rtg_jitter``: fraction of each batch whose windows are re-conditioned on an RTG drawn
    uniformly from the teacher's ``rtg_range`` (the teacher is run on those rows), so the clone
    learns the teacher's response to every RTG it can be asked for, not only the recorded ones.
    ``time_jitter``: fraction of each batch whose windows are moved to another episode time: the
    window's last step gets a timestep drawn uniformly from the ones an episode of ``traj`` can
    reach (``0 .. min(traj.max_steps - 1, max_timestep)``, at least the window's real length - 1),
    the earlier real steps keep their offsets, and the teacher is run on those rows. A DT with a
    learned time embedding gives every timestep its own vector, and rollouts visit late timesteps
    rarely; jittering gives each one the same share of the training.
    """

    n_steps: int = 2000
    batch_size: int = 256
    lr: float = 3e-3
    min_lr_ratio: float = 0.02
    weight_decay: float = 0.0
    warmup_steps: int = 50
    temperature: float = 1.0
    loss: str = "kl"
    rtg_jitter: float = 0.0
    time_jitter: float = 0.0
    seed: int = 0
    torch_threads: int | None = 1


@dataclass
class CloneResult:
    """The student as a :class:`~dtwidgets.model.DTAdapter`, its loss curve ``[n_steps]`` and time."""

    student: object
    losses: np.ndarray
    elapsed_s: float = 0.0


def conditioning_rtgs(traj, rtg_range) -> np.ndarray:
    """``[N]`` RTG each step is conditioned on: the recorded ``traj.rtgs`` (model rollouts) when
    present, else the return-to-go of the data; clipped to ``rtg_range``."""
    return np.clip(traj.rtg() if traj.rtgs is None else traj.rtgs, *rtg_range).astype(np.float32)


@torch.inference_mode()
def teacher_logits(teacher, traj, batch_size: int = 1024) -> np.ndarray:
    """``[N, A]`` float32 logits of ``teacher`` at every recorded step's window (see :func:`conditioning_rtgs`)."""
    rtgs = conditioning_rtgs(traj, teacher.rtg_range)
    out = []
    for s in range(0, traj.n_steps, batch_size):
        ends = np.arange(s, min(traj.n_steps, s + batch_size))
        win, _ = traj.windows(ends, teacher.layout.n_timesteps, teacher.pad_action, rtgs=rtgs)
        out.append(C.np32(teacher.forward(win)))
    return np.concatenate(out)


def distill(teacher, traj, student_config, cfg: DistillConfig | None = None, progress: bool = True) -> CloneResult:
    """Train a student DT (built from ``student_config``, a :class:`~dtwidgets.model.DTConfig`) on the
    teacher's logits over the windows of ``traj`` (recorded actions are context only, never targets)."""
    from ..model import DecisionTransformer, DTAdapter

    cfg = cfg or DistillConfig()
    if tuple(student_config.action_names) != tuple(teacher.action_names):
        raise ValueError(f"expected a student with the teacher's actions {tuple(teacher.action_names)}, got "
                         f"{tuple(student_config.action_names)}")
    for name in ("rtg_jitter", "time_jitter"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"expected {name} in [0, 1], got {getattr(cfg, name)}")
    _distill_loss(torch.zeros(1, 2), torch.zeros(1, 2), cfg.loss)  # validates the loss name before any work
    with torch_threads(cfg.torch_threads):
        target = torch.from_numpy(teacher_logits(teacher, traj))
        torch.manual_seed(cfg.seed)
        student = DecisionTransformer(student_config)
        opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
        trainer = Trainer(opt, WarmupCosine(cfg.lr, cfg.n_steps, cfg.warmup_steps, cfg.min_lr_ratio), cfg.n_steps,
                          threads=cfg.torch_threads, progress=progress, desc="distill")
        student.train()
        hist = trainer.run(_distill_batches(teacher, traj, student, student_config, target, cfg))
        student.eval()
    return CloneResult(DTAdapter(student, metadata={"source": "distilled clone"}), np.asarray(hist["loss"], np.float32),
                       trainer.seconds)


def _distill_batches(teacher, traj, student, student_config, target, cfg: DistillConfig):
    """``loss_fn(step)`` for the :class:`Trainer`: one batch of windows (with the RTG / time jitter) and
    the distillation loss of the student against the teacher there."""
    rng = np.random.default_rng(cfg.seed)
    rtgs = conditioning_rtgs(traj, student_config.rtg_range)
    lo, hi = (float(x) for x in teacher.rtg_range)
    t_max = min(int(traj.max_steps) - 1, int(teacher.max_timestep), int(student_config.max_timestep))
    T, pad = student_config.layout.n_timesteps, student_config.n_actions

    def loss_fn(step):
        ends = rng.integers(0, traj.n_steps, cfg.batch_size)
        win, _ = traj.windows(ends, T, pad, rtgs=rtgs)
        tgt = target[ends]
        jit = np.flatnonzero(rng.random(cfg.batch_size) < cfg.rtg_jitter)
        if jit.size:  # re-condition those rows on a fresh RTG and ask the teacher again
            win, tgt = _rejitter(teacher, win, tgt, torch.from_numpy(jit), rng.uniform(lo, hi, jit.size))
        jit = np.flatnonzero(rng.random(cfg.batch_size) < cfg.time_jitter)
        if jit.size:  # move those rows to another episode time and ask the teacher again
            first = (T - 1 - win.n_pad[jit]).numpy()  # the last step's lowest possible timestep
            new_end = rng.integers(first, np.maximum(first, t_max) + 1)
            win, tgt = _retime(teacher, win, tgt, torch.from_numpy(jit), new_end)
        return _distill_loss(student.last_logits(win) / cfg.temperature, tgt / cfg.temperature, cfg.loss)

    return loss_fn


@torch.no_grad()  # not inference_mode: the new window is the student's (autograd-tracked) input
def _rejitter(teacher, win, tgt, rows, new_rtg):
    """Rows ``rows`` of ``win`` with every RTG (a sparse-reward window's RTG is constant) set to
    ``new_rtg``, and the teacher's logits there."""
    r = win.rtgs.clone()
    r[rows] = torch.as_tensor(new_rtg, dtype=torch.float32)[:, None]
    win = dataclasses.replace(win, rtgs=r)
    tgt = tgt.clone()
    tgt[rows] = teacher.forward(win.index(rows)).float()
    return win, tgt


@torch.no_grad()
def _retime(teacher, win, tgt, rows, new_end):
    """Rows ``rows`` of ``win`` moved in episode time: the last step gets timestep ``new_end``, the
    earlier real steps keep their offsets (padding keeps timestep 0), and the teacher's logits there."""
    T = win.timesteps.shape[1]
    real = torch.arange(T)[None, :] >= win.n_pad[rows][:, None]
    ts = win.timesteps.clone()
    ts[rows] = torch.where(real, torch.as_tensor(new_end, dtype=torch.long)[:, None] - torch.arange(T - 1, -1, -1), 0)
    win = dataclasses.replace(win, timesteps=ts)
    tgt = tgt.clone()
    tgt[rows] = teacher.forward(win.index(rows)).float()
    return win, tgt


def _distill_loss(student_logits, teacher_logits, kind: str):
    """``"kl"``: KL(teacher || student) of the softmax distributions, averaged over rows;
    ``"logit_mse"``: mean squared error of the mean-centred logits (the softmax is invariant to the centring)."""
    if kind == "kl":
        return torch.nn.functional.kl_div(torch.log_softmax(student_logits, -1), torch.log_softmax(teacher_logits, -1),
                                          log_target=True, reduction="batchmean")
    if kind == "logit_mse":
        d = (student_logits - student_logits.mean(-1, keepdim=True)) - (teacher_logits - teacher_logits.mean(-1, keepdim=True))
        return (d ** 2).mean()
    raise ValueError(f"expected loss 'kl' or 'logit_mse', got {kind!r}")
