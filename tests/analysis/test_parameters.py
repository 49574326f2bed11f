"""Parameter statistics against numpy on the reference-layout weights (the checkpoint's own tensors),
and per-head norms against a per-head loop; the same names and numbers on both TransformerLens majors."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.analysis.parameters import parameter_stats
from tests.analysis.helpers import CONFIGS, make_adapter
from tests.analysis.ref_cache import reference_weights


def _reference_name(name: str) -> str:
    if name.startswith("L"):
        layer, rest = name.split(".", 1)
        part = "attn." + rest if rest[2:3] in "QKVO" and rest[:2] in ("W_", "b_") else \
            (rest if rest.startswith("ln") else "mlp." + rest)
        return f"transformer.blocks.{layer[1:]}.{part}"
    return {"W_state": "state_embedding.weight", "W_action": "action_predictor.weight", "b_action": "action_predictor.bias",
            "W_pos": "transformer.pos_embed.W_pos", "embed_time": "time_embedding.weight",
            "ln_final.w": "transformer.ln_final.w", "ln_final.b": "transformer.ln_final.b"}.get(name, "")


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok"])
def test_parameter_stats_against_numpy(name):
    a = make_adapter(**CONFIGS[name])
    sd = reference_weights(a)
    got = parameter_stats(a, bins=7)
    checked = 0
    for i, n in enumerate(got.names):
        key = _reference_name(n)
        if key not in sd:
            continue
        v = sd[key].float().numpy().astype(np.float64).reshape(-1)
        np.testing.assert_allclose([got.frobenius[i], got.mean[i], got.std[i], got.min[i], got.max[i]],
                                   [np.linalg.norm(v), v.mean(), v.std(), v.min(), v.max()], rtol=1e-5, atol=1e-7)
        counts, edges = np.histogram(v, bins=7)
        np.testing.assert_array_equal(got.hist_counts[i], counts)
        np.testing.assert_allclose(got.hist_edges[i], edges, rtol=1e-6)
        assert got.n_params[i] == v.size
        checked += 1
    L = a.cfg.n_layers
    assert checked >= 10 * L + 3, got.names  # every attention/MLP weight of every layer found its twin
    assert ("L0.W_gate" in got.names) == bool(a.cfg.gated_mlp)
    for w in ("W_Q", "W_K", "W_V", "W_O"):
        for l in range(L):
            W = sd[f"transformer.blocks.{l}.attn.{w}"]
            want = [float(np.linalg.norm(W[h].numpy())) for h in range(W.shape[0])]
            np.testing.assert_allclose(got.head_norms[w][l], want, rtol=1e-5)
    assert got.row("W_state")["shape"] == tuple(a.W_state.shape)
    with pytest.raises(KeyError, match="name"):
        got.row("W_nope")
    with pytest.raises(ValueError, match="bins"):
        parameter_stats(a, bins=0)
