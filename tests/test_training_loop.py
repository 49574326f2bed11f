"""The one training loop (dtwidgets.training): schedules against their closed forms written here, the
Trainer against a plain-torch step, and the DT training, the behavioural clone and the SAE all
stepping through the one Trainer with the schedule their configs ask for."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from dtwidgets.training import loop
from dtwidgets.training.loop import Callback, Every, Trainer, torch_threads
from dtwidgets.training.schedules import Constant, LinearDecay, WarmupCosine

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"


def warmup_cosine_closed_form(s, lr, n, w, m):
    """Linear warm-up to lr over w steps, then cosine from lr to m*lr at step n (held after)."""
    if s < w:
        return lr * (s + 1) / w
    frac = min(1.0, (s - w) / max(1, n - w))
    return m * lr + (lr - m * lr) * (1 + np.cos(np.pi * frac)) / 2


def linear_decay_closed_form(s, lr, n, frac):
    """Constant lr until step n - frac*n, then a straight line to 0 at step n."""
    start = n - frac * n
    return lr if s <= start else lr * (n - s) / (frac * n)


@pytest.mark.parametrize("lr, n, w, m", [(1e-3, 3000, 100, 0.1), (3e-3, 2000, 50, 0.02), (0.5, 10, 0, 0.0),
                                         (2.0, 7, 7, 0.3)])
def test_warmup_cosine_matches_closed_form(lr, n, w, m):
    sched = WarmupCosine(lr, n, w, m)
    for s in range(n + 5):
        assert sched(s) == pytest.approx(warmup_cosine_closed_form(s, lr, n, w, m), rel=1e-12, abs=1e-15), s
    assert sched(n + 100) == pytest.approx(m * lr)  # held at the floor
    if w:
        assert sched(0) == pytest.approx(lr / w) and sched(w - 1) == pytest.approx(lr)
    assert sched(w) == pytest.approx(lr)  # the peak, where the cosine starts
    if n - w >= 2 and (n - w) % 2 == 0:
        assert sched(w + (n - w) // 2) == pytest.approx(lr * (1 + m) / 2)  # half-way down the cosine


@pytest.mark.parametrize("lr, n, frac", [(2e-3, 100, 0.2), (1.0, 35, 0.2), (0.1, 10, 0.5)])
def test_linear_decay_matches_closed_form(lr, n, frac):
    sched = LinearDecay(lr, n, frac)
    for s in range(n + 1):
        assert sched(s) == pytest.approx(linear_decay_closed_form(s, lr, n, frac), rel=1e-12, abs=1e-15), s
    assert sched(n) == 0.0 and sched(0) == lr
    assert Constant(0.25)(0) == Constant(0.25)(10**6) == 0.25


@pytest.mark.parametrize("bad", [dict(lr=-1.0), dict(lr=float("nan")), dict(n_steps=-1), dict(warmup_steps=-2)])
def test_schedule_arguments_are_validated(bad):
    args = {"lr": 1e-3, "n_steps": 10, "warmup_steps": 2, **bad}
    with pytest.raises(ValueError, match=f"WarmupCosine.{next(iter(bad))}"):
        WarmupCosine(**args)


def test_trainer_step_matches_plain_torch_with_clipping_and_schedule():
    """SGD steps through the Trainer == the same steps written by hand (lr from the closed form,
    gradient scaled to norm <= clip)."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 5, generator=g), torch.randn(64, generator=g)
    w = torch.zeros(5, requires_grad=True)
    n, lr, clip = 6, 0.3, 0.05
    opt = torch.optim.SGD([w], lr=1.0)
    hist = Trainer(opt, WarmupCosine(lr, n, 2, 0.1), n, grad_clip=clip, progress=False).run(
        lambda s: ((X @ w - y) ** 2).mean())
    ref = torch.zeros(5, dtype=torch.float64)
    Xd, yd = X.double(), y.double()
    for s in range(n):
        r = Xd @ ref - yd
        assert hist["loss"][s] == pytest.approx(float((r ** 2).mean()), rel=1e-5)
        grad = 2 * Xd.T @ r / len(yd)
        grad = grad * min(1.0, clip / float(grad.norm()))
        ref = ref - warmup_cosine_closed_form(s, lr, n, 2, 0.1) * grad
    assert torch.allclose(w.detach().double(), ref, rtol=1e-5, atol=1e-7)


def test_trainer_loss_decreases_and_callbacks_run_in_order():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(256, 8, generator=g)
    y = X @ torch.randn(8, generator=g)
    model = torch.nn.Linear(8, 1)
    events: list = []

    class Spy(Callback):
        def on_start(self, trainer):
            events.append("start")

        def on_backward(self, trainer, step):
            assert all(p.grad is not None for p in model.parameters())
            events.append(("backward", step))

        def on_step(self, trainer, step):
            events.append(("step", step, trainer.optimizer.param_groups[0]["lr"]))

        def on_end(self, trainer):
            events.append("end")

    sched = WarmupCosine(0.05, 200, 10, 0.0)
    every = []
    callbacks = [Spy(), Every(50, lambda t, done: every.append(done))]
    trainer = Trainer(torch.optim.Adam(model.parameters()), sched, 200, callbacks=callbacks, progress=False)
    hist = trainer.run(lambda s: (((model(X)[:, 0] - y) ** 2).mean(), {"half": 0.5}))
    assert len(hist["loss"]) == 200 and hist["half"] == [0.5] * 200
    assert np.mean(hist["loss"][-10:]) < 0.01 * np.mean(hist["loss"][:5])
    assert events[0] == "start" and events[-1] == "end" and len(events) == 2 + 2 * 200
    assert events[1:5] == [("backward", 0), ("step", 0, sched(0)), ("backward", 1), ("step", 1, sched(1))]
    assert every == [50, 100, 150, 200]


def test_trainer_arguments_are_validated_and_schedule_none_keeps_the_lr():
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="Trainer n_steps"):
            Trainer(opt, None, bad)
    with pytest.raises(ValueError, match="Trainer grad_clip"):
        Trainer(opt, None, 1, grad_clip=float("nan"))
    t = Trainer(opt, None, 3, progress=False)
    for _ in range(2):  # a second run starts a new history
        assert len(t.run(lambda s: (w - 1.0).pow(2).sum())["loss"]) == 3
    assert opt.param_groups[0]["lr"] == 0.1
    assert torch.allclose(w.detach(), torch.full((2,), 1 - 0.8 ** 6))  # w <- w - 0.1 * 2 (w - 1), six times


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


class _Recorder(Callback):
    """Test-only: every step the Trainer takes, with the lr the optimizer used and the logged loss."""

    def __init__(self):
        self.steps, self.lrs, self.losses, self.desc = [], [], [], None

    def on_step(self, trainer, step):
        self.desc = trainer.desc
        self.steps.append(step)
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])
        self.losses.append(trainer.history["loss"][-1])


@pytest.fixture
def trainer_runs(monkeypatch):
    """Every Trainer built while the test runs gets a :class:`_Recorder` (appended to this list)."""
    runs: list = []
    init = loop.Trainer.__init__

    def recording_init(self, *args, callbacks=(), **kw):
        runs.append(_Recorder())
        init(self, *args, callbacks=[*callbacks, runs[-1]], **kw)

    monkeypatch.setattr(loop.Trainer, "__init__", recording_init)
    return runs


@pytest.fixture(scope="module")
def tiny():
    from dtwidgets.data.collect import collect_trajectories
    from dtwidgets.model import DTConfig

    mix = {"bfs": 0.3, "survivor": 0.2, "suicidal": 0.3, "random": 0.2}
    traj = collect_trajectories(ENV_ID, n_episodes=12, policy_mix=mix, seed=3, n_envs=4, max_steps=40, progress=False)
    return traj, DTConfig(d_model=16, n_heads=2, d_mlp=32, n_layers=1, n_ctx=2, one_hot_obs=True, max_timestep=50)


def test_dt_training_steps_through_the_trainer(trainer_runs, tiny):
    from dtwidgets.data import TrainConfig, train

    traj, mcfg = tiny
    cfg = TrainConfig(n_steps=12, batch_size=16, lr=2e-3, warmup_steps=4, min_lr_ratio=0.1, seed=0)
    res = train(mcfg, traj, cfg, progress=False)
    (rec,) = trainer_runs
    assert rec.desc == "train" and rec.steps == list(range(12))
    assert np.array_equal(np.asarray(rec.losses, np.float32), res.losses)
    np.testing.assert_allclose(rec.lrs, [warmup_cosine_closed_form(s, 2e-3, 12, 4, 0.1) for s in range(12)], rtol=1e-12)


def test_clone_distillation_steps_through_the_trainer(trainer_runs, tiny):
    from dtwidgets.model import DecisionTransformer, DTAdapter
    from dtwidgets.training.clone import DistillConfig, distill

    traj, mcfg = tiny
    teacher = DTAdapter(DecisionTransformer(mcfg))
    res = distill(teacher, traj, dataclasses.replace(mcfg, seed=1),
                  DistillConfig(n_steps=9, batch_size=16, lr=3e-3, warmup_steps=3, min_lr_ratio=0.02), progress=False)
    (rec,) = trainer_runs
    assert rec.desc == "distill" and rec.steps == list(range(9))
    assert np.array_equal(np.asarray(rec.losses, np.float32), res.losses)
    np.testing.assert_allclose(rec.lrs, [warmup_cosine_closed_form(s, 3e-3, 9, 3, 0.02) for s in range(9)], rtol=1e-12)


def test_sae_training_steps_through_the_trainer(trainer_runs):
    from dtwidgets.sae import train_sae

    acts = torch.randn(400, 8, generator=torch.Generator().manual_seed(2))
    sae, hist = train_sae(acts, d_sae=16, k=2, batch_size=40, epochs=2.0, lr=1e-2, progress=False)
    (rec,) = trainer_runs
    assert rec.desc.startswith("train SAE topk") and rec.steps == list(range(20)) and hist.n_steps == 20
    assert rec.losses == hist.loss
    np.testing.assert_allclose(rec.lrs, [linear_decay_closed_form(s, 1e-2, 20, 0.2) for s in range(20)], rtol=1e-12)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(16))  # the unit-decoder callback ran
    assert math.isfinite(hist.seconds) and hist.seconds > 0
