"""Behavioural clone: distilled from the teacher's logits only (the recorded actions are never read),
>= 95 % greedy-action agreement on held-out states, and the side-by-side comparison."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dtwidgets.analysis.model_comparison import action_agreement, compare_models
from dtwidgets.training.clone import DistillConfig, distill

from .conftest import ENV_ID

MIX = {"bfs": 0.3, "bfs:0.2": 0.2, "survivor": 0.1, "suicidal": 0.2, "random": 0.2}


@pytest.fixture(scope="module")
def teacher_and_data():
    from dtwidgets.data import TrainConfig, collect_trajectories, train
    from dtwidgets.model import DTAdapter, DTConfig

    data = collect_trajectories(ENV_ID, 150, MIX, seed=0, n_envs=16, max_steps=60, progress=False)
    held = collect_trajectories(ENV_ID, 30, MIX, seed=50_000, n_envs=8, max_steps=60, progress=False)
    cfg = DTConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1, n_ctx=5, one_hot_obs=True, layer_norm="LN",
                   max_timestep=100)
    teacher = DTAdapter(train(cfg, data, TrainConfig(n_steps=200, batch_size=64, lr=3e-3, warmup_steps=10, seed=0),
                              progress=False).model)
    return teacher, cfg, data, held


def test_clone_agrees_with_teacher_on_held_out_states(teacher_and_data):
    from dtwidgets.compositions import CloneComparison

    teacher, cfg, data, held = teacher_and_data
    dcfg = DistillConfig(n_steps=600, lr=3e-3)
    res = distill(teacher, data, dataclasses.replace(cfg, seed=1), dcfg, progress=False)
    agree = action_agreement(teacher, res.student, held)
    print(f"clone: held-out greedy-action agreement {agree:.3f} on {held.n_steps} states, final loss "
          f"{res.losses[-20:].mean():.4f}")
    assert agree >= 0.95
    # the targets are the teacher's logits, never the recorded actions: changing the action taken at
    # every episode's last step (an action no window holds as context) leaves training unchanged
    acts = data.actions.copy()
    ends = data.episode_ends()
    acts[ends] = (acts[ends] + 1) % 3
    scrambled = dataclasses.replace(data, actions=acts)
    res2 = distill(teacher, scrambled, dataclasses.replace(cfg, seed=1), dataclasses.replace(dcfg, n_steps=20),
                   progress=False)
    res3 = distill(teacher, data, dataclasses.replace(cfg, seed=1), dataclasses.replace(dcfg, n_steps=20),
                   progress=False)
    np.testing.assert_array_equal(res2.losses, res3.losses)
    win, _ = held.windows(np.arange(0, held.n_steps, 5), teacher.layout.n_timesteps, teacher.pad_action,
                          rtgs=np.clip(held.rtg(), -1, 1))
    cmp = compare_models(teacher, res.student, win)
    assert cmp.attribution.shape[:2] == (2, win.batch_size) and cmp.ablation.shape[1] == win.batch_size
    assert set(cmp.matches) == {"L0H0", "L0H1", "L0MLP"}
    from dtwidgets.probes import probe_concepts

    suites = [probe_concepts(m, held, None, ["ball ahead"], n_splits=3) for m in (teacher, res.student)]
    view = CloneComparison(cmp, suites)
    assert view.attribution.values.shape == (2, len(cmp.labels))
    np.testing.assert_allclose(view.ablation.values, cmp.ablation.mean(1), rtol=1e-5)
    assert [p.title.split(":")[0] for p in view.probes] == ["teacher", "clone"]
    assert view.probes[1].selectivity.shape == suites[1].matrix().shape


def test_compare_model_with_itself(teacher_and_data):
    teacher, _, _, held = teacher_and_data
    win, _ = held.windows(np.arange(0, held.n_steps, 9), teacher.layout.n_timesteps, teacher.pad_action)
    cmp = compare_models(teacher, teacher, win)
    assert cmp.agreement == 1.0 and all(cmp.matches.values())
    np.testing.assert_allclose(cmp.attribution[0], cmp.attribution[1])
    # attribution rows sum to the model's own logit difference (independent: the adapter's forward)
    lg = teacher.forward(win).numpy()
    np.testing.assert_allclose(cmp.attribution[0].sum(1), lg[:, -1] - lg[:, 0], atol=1e-4)


def test_distill_rejects_other_actions(teacher_and_data):
    teacher, cfg, data, _ = teacher_and_data
    with pytest.raises(ValueError, match="actions"):
        distill(teacher, data, dataclasses.replace(cfg, n_actions=4, action_names=None),
                DistillConfig(n_steps=1), progress=False)


def test_rtg_jitter_recondition_rows_and_asks_the_teacher(teacher_and_data):
    """Jittered rows get a fresh RTG at every window step and the teacher's logits there (checked with a
    plain forward of the teacher on a window rebuilt with that RTG); the other rows keep theirs."""
    import torch

    from dtwidgets.training.clone import _rejitter, conditioning_rtgs

    teacher, cfg, data, _ = teacher_and_data
    ends = np.array([3, 40, 41, 90, 200])
    rtgs = conditioning_rtgs(data, teacher.rtg_range)
    win, _ = data.windows(ends, teacher.layout.n_timesteps, teacher.pad_action, rtgs=rtgs)
    tgt = teacher.forward(win).float()
    rows = torch.tensor([1, 3])
    new = np.array([0.25, -0.75])
    win2, tgt2 = _rejitter(teacher, win, tgt, rows, new)
    np.testing.assert_allclose(win2.rtgs[rows].numpy(), np.repeat(new[:, None], win.n_timesteps, 1).astype(np.float32))
    keep = torch.tensor([0, 2, 4])
    np.testing.assert_array_equal(win2.rtgs[keep].numpy(), win.rtgs[keep].numpy())
    np.testing.assert_array_equal(tgt2[keep].numpy(), tgt[keep].numpy())
    for i, r in zip(rows.tolist(), new):
        ref, _ = data.windows(ends[i:i + 1], teacher.layout.n_timesteps, teacher.pad_action,
                              rtgs=np.full(data.n_steps, r, np.float32))
        np.testing.assert_allclose(tgt2[i].numpy(), teacher.forward(ref)[0].numpy(), atol=1e-5)
    res = distill(teacher, data, dataclasses.replace(cfg, seed=1), DistillConfig(n_steps=5, rtg_jitter=0.5),
                  progress=False)
    assert res.losses.shape == (5,) and np.isfinite(res.losses).all()
    with pytest.raises(ValueError, match="rtg_jitter"):
        distill(teacher, data, cfg, DistillConfig(n_steps=1, rtg_jitter=2.0), progress=False)
    with pytest.raises(ValueError, match="loss"):
        distill(teacher, data, cfg, DistillConfig(n_steps=1, loss="l1"), progress=False)


def test_time_jitter_moves_rows_in_episode_time_and_asks_the_teacher(teacher_and_data):
    """Retimed rows: the last step gets the new timestep, earlier real steps keep their offsets,
    padding keeps timestep 0, and the targets are the teacher's logits on that window (checked
    against windows rebuilt from a copy of the data whose timesteps are shifted, and a plain
    forward of the teacher); the other rows are untouched."""
    import torch

    from dtwidgets.training.clone import _retime, conditioning_rtgs

    teacher, cfg, data, _ = teacher_and_data
    T = teacher.layout.n_timesteps
    assert T >= 2  # so that a window starting an episode has padding
    starts = data.episode_starts
    ends = np.array([starts[1], starts[1] + 3, starts[2] + 1, starts[3] + 2])  # first row is padded
    rtgs = conditioning_rtgs(data, teacher.rtg_range)
    win, _ = data.windows(ends, T, teacher.pad_action, rtgs=rtgs)
    assert int(win.n_pad[0]) == T - 1
    tgt = teacher.forward(win).float()
    rows = torch.tensor([0, 1, 3])
    new_end = np.array([57, 12, 80])
    win2, tgt2 = _retime(teacher, win, tgt, rows, new_end)
    np.testing.assert_array_equal(win2.timesteps[2].numpy(), win.timesteps[2].numpy())
    np.testing.assert_array_equal(tgt2[2].numpy(), tgt[2].numpy())
    for i, n in zip(rows.tolist(), new_end):
        shifted = dataclasses.replace(data, timesteps=data.timesteps + (n - data.timesteps[ends[i]]))
        ref, _ = shifted.windows(ends[i:i + 1], T, teacher.pad_action, rtgs=rtgs)
        np.testing.assert_array_equal(win2.timesteps[i].numpy(), ref.timesteps[0].numpy())
        assert int(win2.timesteps[i, -1]) == n
        np.testing.assert_allclose(tgt2[i].numpy(), teacher.forward(ref)[0].numpy(), atol=1e-5)
    assert int(win2.timesteps[0, 0]) == 0  # padding keeps timestep 0
    res = distill(teacher, data, dataclasses.replace(cfg, seed=1), DistillConfig(n_steps=5, time_jitter=1.0),
                  progress=False)
    assert res.losses.shape == (5,) and np.isfinite(res.losses).all()
    with pytest.raises(ValueError, match="time_jitter"):
        distill(teacher, data, cfg, DistillConfig(n_steps=1, time_jitter=-0.1), progress=False)
