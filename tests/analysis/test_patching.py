"""Activation patching: zero effect for identical inputs, full effect when everything is patched,
and agreement with TransformerLens' own (one-forward-per-patch) patching loop."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dtwidgets.analysis import activation_patching, patched_logits
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "raw-2tok-noLN", "ln-3layers-linear-time-5tok"])
def test_identical_inputs_have_zero_effect(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a)
    r = activation_patching(a, w, w, "forward", "left")
    for k in ("resid", "heads", "heads_by_pos", "mlp", "mlp_by_pos"):
        np.testing.assert_array_equal(getattr(r, k), 0)
        assert np.abs(r.deltas[k]).max() < 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_patching_everything_reproduces_the_corrupted_run(name):
    a = make_adapter(**CONFIGS[name])
    clean, corrupted = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.3)
    L, H, P = a.cfg.n_layers, a.cfg.n_heads, a.layout.n_tokens
    want = a.forward(corrupted)[0]
    everything = [("dt.hook_tokens", None, None)] + [(f"blocks.{l}.attn.hook_z", None, None) for l in range(L)] \
        + [(f"blocks.{l}.hook_mlp_out", None, None) for l in range(L)]
    got = patched_logits(a, clean, corrupted, [everything, [("blocks.0.hook_resid_pre", None, None)],
                                               [(f"blocks.{L - 1}.hook_resid_post", None, None)]])
    for row in got:
        torch.testing.assert_close(row, want, atol=1e-5 * max(1, float(want.abs().max())), rtol=0)
    r = activation_patching(a, clean, corrupted, "forward", "left")
    assert r.resid.shape == (L + 1, P) and r.heads.shape == (L * H,) and r.heads_by_pos.shape == (L * H, P)
    assert r.mlp.shape == (L,) and r.mlp_by_pos.shape == (L, P)
    # the final residual at the prediction token carries everything; earlier final positions nothing
    assert abs(r.resid[-1, -1] - 1) < 1e-4 and np.abs(r.resid[-1, :-1]).max() < 1e-4
    rev = activation_patching(a, clean, corrupted, "forward", "left", reverse=True)
    assert rev.clean_value == pytest.approx(r.clean_value) and abs(rev.resid[-1, -1] - 1) < 1e-4


def test_sweep_matches_transformer_lens_patching_loop():
    """TL's ``generic_activation_patch`` (one forward per index, on the backbone's token-embedding
    input) gives the same resid_pre sweep. Its position count comes from ``index_df`` because TL's
    ``get_act_patch_resid_pre`` reads positions from token-id shapes."""
    import pandas as pd
    from transformer_lens import patching

    a = make_adapter(**CONFIGS["ln-3layers-linear-time-5tok"])
    clean, corrupted = random_window(a, seed=1), random_window(a, seed=2)
    r = activation_patching(a, clean, corrupted, "forward", "left")
    d = a.W_action[2] - a.W_action[0]
    bias = float(a.b_action[2] - a.b_action[0])
    with torch.inference_mode():
        _, corrupted_cache = a.backbone.run_with_cache(a.embed(corrupted))
        metric = lambda out: ((out[:, -1] @ d + bias - r.clean_value) / (r.corrupted_value - r.clean_value))[0]  # noqa: E731
        df = pd.DataFrame(list(itertools.product(range(3), range(5))), columns=["layer", "pos"])
        tl = patching.generic_activation_patch(a.backbone, a.embed(clean), corrupted_cache, metric,
                                               patching.layer_pos_patch_setter, "resid_pre", index_df=df)
    np.testing.assert_allclose(r.resid[:-1], tl.reshape(3, 5).numpy(), atol=1e-4)
