"""Checkpoint schedule (log-spaced early, linear later), exact data order from the seed, load_series."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dtwidgets.training.dt import TrainConfig, checkpoint_steps, data_order, train, window_loss
from dtwidgets.dynamics import load_series


def test_checkpoint_steps_log_then_linear():
    s = checkpoint_steps(1000, 10)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s)) and len(s) <= 11
    early = [x for x in s if 0 < x <= 100]
    assert early[:3] == [1, 2, 5] or early[0] == 1  # log-spaced start
    gaps = np.diff([x for x in s if x >= 166])
    assert np.ptp(gaps) <= 1  # linear after the switch
    assert checkpoint_steps(10, 20) == list(range(11))
    with pytest.raises(ValueError, match="n_checkpoints"):
        checkpoint_steps(10, 0)


def test_data_order_and_series(small_traj, tmp_path):
    from dtwidgets.model import DTConfig, load_model

    mcfg = DTConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1, n_ctx=5, one_hot_obs=True)
    cfg = TrainConfig(n_steps=30, batch_size=32, lr=3e-3, warmup_steps=3, n_checkpoints=6, seed=5)
    res = train(mcfg, small_traj, cfg, out_dir=tmp_path, progress=False)
    series = load_series(tmp_path)
    assert series.steps == checkpoint_steps(30, 6) and series.steps == [c["step"] for c in res.checkpoints]
    assert np.isnan(series[0].loss)
    # the exact batch of any step can be rebuilt from the seed: a checkpoint's weights on its step's
    # batch give the loss recorded for that step during training
    order = list(data_order(small_traj, cfg))
    rtg = np.clip(small_traj.rtg(), -1, 1)
    for ck in series.checkpoints[1:-1]:
        model = load_model(ck.path).train()
        with torch.no_grad():
            loss, _ = window_loss(model, *small_traj.windows(order[ck.step], 2, 3, rtgs=rtg))
        assert float(loss) == pytest.approx(float(res.losses[ck.step]), rel=1e-5, abs=1e-6)
        assert ck.loss == pytest.approx(float(res.losses[ck.step - 1]))
    again = list(data_order(small_traj, cfg))
    assert all(np.array_equal(a, b) for a, b in zip(order, again))


def test_load_series_rejects_bad_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="index"):
        load_series(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"checkpoints": [{"step": 0, "path": "../evil.safetensors"}]}))
    with pytest.raises(ValueError, match="plain file name"):
        load_series(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"checkpoints": [{"step": 0, "path": "a.safetensors"}]}))
    with pytest.raises(FileNotFoundError, match="a.safetensors"):
        load_series(tmp_path)
