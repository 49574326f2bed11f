"""The Directions tab: component projections of the state shown and saved directions (cosines, the
state's projection onto each), checked against the plain-torch forward; saved and loaded with the
Explorer's recordings."""
from __future__ import annotations

import numpy as np
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, counted_window_forwards, make_adapter
from tests.reference_forward import raw_to_features, reference_run


def _resid(adapter, window) -> np.ndarray:
    """The final residual at the prediction token from the independent forward (float64)."""
    sd = {k: v.double() for k, v in state_dict_of(adapter.model).items()}
    c = adapter.cfg
    mcfg = {"d_model": c.d_model, "n_heads": c.n_heads, "d_mlp": c.d_mlp, "n_layers": c.n_layers, "n_ctx": c.n_ctx}
    feats = raw_to_features(torch.as_tensor(window.observations), c.one_hot_obs).double()
    feats = feats * (torch.arange(window.observations.shape[1]) >= int(window.n_pad[0]))[None, :, None]
    _, cache = reference_run(sd, mcfg, feats, window.rtgs.double(), window.timesteps, window.actions,
                             act_fn=c.act_fn, layer_norm=c.layer_norm, gated=c.gated_mlp, time_type=c.time_embedding_type)
    return cache[f"blocks.{c.n_layers - 1}.hook_resid_post"][0, adapter.layout.prediction_position].numpy()


def test_directions_tab_saves_reads_and_round_trips(tmp_path):
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    e = Explorer(adapter, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"))
    p = e.show_panel("directions")
    assert e.error.value == "" and "No direction saved" in p.status.value
    p.save_pair.click()
    with counted_window_forwards(adapter) as calls:
        e.press("ArrowLeft")  # the projections and the saved directions are read from the state's one forward
    assert len(calls) == 1
    p.save_state.click()
    names = e.ctx.directions.names
    assert names == ["forward − right", f"residual at t = {int(e.session.window().timesteps[0, -1])}"]
    r = _resid(adapter, e.session.window())
    W = adapter.W_action.detach().double().numpy()
    v = W[2] - W[1]  # forward − right, what the action head reads
    want = np.array([v @ r / np.linalg.norm(v), np.linalg.norm(r)])  # a residual along itself: its norm
    np.testing.assert_allclose(p.along.values[0], want, rtol=1e-4, atol=1e-4)
    cos = v @ r / np.linalg.norm(v) / np.linalg.norm(r)
    np.testing.assert_allclose(p.cosines.values, [[1, cos], [cos, 1]], atol=1e-4)
    assert p.projection.values.shape[1] == len(p.projection.labels) > 0
    path = e.save(str(tmp_path / "run.npz"))
    e2 = Explorer(adapter, MiniGridEnv(), coalesce_s=0)
    e2.load(path)
    assert e2.ctx.directions.names == names
    np.testing.assert_array_equal(e2.ctx.directions[names[1]].vector, e.ctx.directions[names[1]].vector)
