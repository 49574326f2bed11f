"""Patching scans against an independent plain-torch forward with the patched activation substituted.

For every cell of every scan, the test builds its own patch from the cell's ids (hook name written
out here, positions of the R/s/a layout computed here), runs ``tests/reference_forward.reference_run``
(float64, from the checkpoint tensors) on the corrupted window with that activation replaced by the
clean run's, and compares ``patched - corrupted`` and the recovery. Models: the shipped demo (1 layer,
2 tokens), a 2-layer LayerNorm gated-MLP one-hot model (26 tokens), a 2-layer LNPre model (8 tokens)
and the real reference checkpoint. Plus: recovery 1 for the whole last residual, 0 for nothing,
batching (forward count, chunking changes nothing) and input validation.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dtwidgets.analysis import patching_scans as S
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features, reference_run

MODELS = ("demo-post", "ln-gated-onehot-26tok", "lnpre-8tok", "reference")
MAX_CELLS = 40  # cells checked per scan (a fixed random subset of bigger scans)


@pytest.fixture(scope="module", params=MODELS)
def setup(request):
    name = request.param
    if name == "demo-post":
        from dtwidgets.demo import load_demo

        adapter = load_demo("post")[0]
    elif name == "reference":
        adapter = request.getfixturevalue("reference_adapter")
    else:
        adapter = make_adapter(**CONFIGS[name])
    clean, corrupted = random_window(adapter, seed=1, rtg=0.9), random_window(adapter, seed=2, rtg=-0.6)
    ref = Reference(adapter)
    lc, lk = ref.logits(clean), ref.logits(corrupted)
    pairs = [(i, j) for i in range(adapter.n_actions) for j in range(adapter.n_actions) if i != j]
    a, b = max(pairs, key=lambda p: abs(float((lc[p[0]] - lc[p[1]]) - (lk[p[0]] - lk[p[1]]))))  # a clear denominator
    return adapter, clean, corrupted, a, b, ref


class Reference:
    """The independent forward of one adapter's weights: logits at the prediction position (float64)
    and the cache of every activation, optionally with edits."""

    def __init__(self, adapter):
        self.adapter, self.sd, cfg = adapter, state_dict_of(adapter.model), adapter.cfg
        self.mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
        self._features: dict[int, tuple] = {}

    def _feats(self, window):
        if id(window) not in self._features:  # keep the window alive with its features (ids stay unique)
            feats = raw_to_features(window.observations, self.adapter.cfg.one_hot_obs)
            real = torch.arange(window.n_timesteps)[None] >= window.n_pad[:, None]
            self._features[id(window)] = (window, feats * real[..., None])
        return self._features[id(window)][1]

    def run(self, window, edits=None):
        cfg = self.adapter.cfg
        logits, cache = reference_run(self.sd, self.mcfg, self._feats(window), window.rtgs,
                                      window.timesteps, window.actions, act_fn=cfg.act_fn, layer_norm=cfg.layer_norm,
                                      gated=cfg.gated_mlp, time_type=cfg.time_embedding_type, edits=edits)
        return logits[0, -1].double(), cache

    def logits(self, window, edits=None):
        return self.run(window, edits)[0]


def _token_positions(P: int, block: dict) -> list[int]:
    """The positions of a token block, from the R s a R s ... layout written out here."""
    kind = {0: "rtg", 1: "state", 2: "action"}
    if block["block"] == "all":
        return list(range(P))
    if block["block"] in ("rtg", "state", "action"):
        return [p for p in range(P) if kind[p % 3] == block["block"]]
    return [p for p in range(P) if p // 3 == block["step"]]


def _patch(kind: str, row: dict, col: dict, P: int) -> tuple[str, tuple]:
    """``(hook name, index)`` of a cell, from its ids: what the cell claims to patch."""
    every = slice(None)
    if kind == "layer_block":
        return f"blocks.{row['layer']}.hook_{row['hook']}", (every, _token_positions(P, col))
    if kind == "head":
        return f"blocks.{row['layer']}.attn.hook_z", (every, every, col["head"])
    if kind == "head_position":
        return f"blocks.{row['layer']}.attn.hook_z", (every, col["position"], row["head"])
    if kind == "head_input":
        return f"blocks.{row['layer']}.attn.hook_{col['input']}", (every, every, row["head"])
    if kind == "head_input_position":
        return f"blocks.{row['layer']}.attn.hook_{row['input']}", (every, col["position"], row["head"])
    if kind == "neuron":
        pos = every if row["position"] is None else row["position"]
        return f"blocks.{row['layer']}.mlp.hook_post", (every, pos, col["neuron"])
    raise AssertionError(kind)


def _independent_cell(ref: Reference, clean, corrupted, clean_cache, name: str, idx: tuple) -> float:
    def substitute(x):
        x = x.clone()
        x[idx] = clean_cache[name][idx]
        return x

    return ref.logits(corrupted, {name: substitute})


SCANS = {
    "layer_block": lambda ad, c, k, a, b: S.layer_block_scan(ad, c, k, a, b),
    "layer_block_timestep_mlp": lambda ad, c, k, a, b: S.layer_block_scan(ad, c, k, a, b, component="mlp_out",
                                                                          blocks="timestep"),
    "layer_block_attn": lambda ad, c, k, a, b: S.layer_block_scan(ad, c, k, a, b, component="attn_out"),
    "head": lambda ad, c, k, a, b: S.head_scan(ad, c, k, a, b),
    "head_position": lambda ad, c, k, a, b: S.head_position_scan(ad, c, k, a, b),
    "head_input": lambda ad, c, k, a, b: S.head_input_scan(ad, c, k, a, b),
    "head_input_position": lambda ad, c, k, a, b: S.head_input_position_scan(ad, c, k, a, b, inputs=("q", "k", "v", "z")),
    "neuron": lambda ad, c, k, a, b: S.neuron_scan(ad, c, k, a, b),
    "neuron_positions": lambda ad, c, k, a, b: S.neuron_scan(ad, c, k, a, b, neurons=range(0, 64, 5),
                                                             positions=[0, ad.layout.n_tokens - 1]),
    "neuron_all_positions": lambda ad, c, k, a, b: S.neuron_scan(ad, c, k, a, b, layers=[0], neurons=range(20),
                                                                 positions="all"),
}


@pytest.mark.parametrize("scan", list(SCANS))
def test_scan_matches_independent_forward_with_the_activation_substituted(setup, scan):
    adapter, clean, corrupted, a, b, ref = setup
    r = SCANS[scan](adapter, clean, corrupted, a, b)
    P = adapter.layout.n_tokens
    assert r.values.shape == r.deltas.shape == (len(r.row_ids), len(r.col_ids))
    assert len(r.row_labels) == len(r.row_ids) and len(r.col_labels) == len(r.col_ids)
    l_clean, clean_cache = ref.run(clean)
    l_corr = ref.logits(corrupted)
    v_clean, v_corr = float(l_clean[a] - l_clean[b]), float(l_corr[a] - l_corr[b])
    scale = max(1.0, float(l_clean.abs().max()), float(l_corr.abs().max()))
    assert r.clean_value == pytest.approx(v_clean, abs=1e-5 * scale)
    assert r.corrupted_value == pytest.approx(v_corr, abs=1e-5 * scale)
    cells = [(i, j) for i in range(len(r.row_ids)) for j in range(len(r.col_ids))]
    if len(cells) > MAX_CELLS:
        pick = np.random.default_rng(0).choice(len(cells), MAX_CELLS, replace=False)
        cells = [cells[k] for k in sorted(pick)]
    for i, j in cells:
        name, idx = _patch(r.kind, r.row_ids[i], r.col_ids[j], P)
        lp = _independent_cell(ref, clean, corrupted, clean_cache, name, idx)
        want_delta = float(lp[a] - lp[b]) - v_corr
        want_rec = want_delta / (v_clean - v_corr)
        what = f"{scan} cell {r.row_labels[i]} × {r.col_labels[j]}"
        assert abs(r.deltas[i, j] - want_delta) <= 2e-5 * scale, (what, r.deltas[i, j], want_delta)
        assert abs(r.values[i, j] - want_rec) <= 2e-5 * scale / abs(v_clean - v_corr), (what, r.values[i, j], want_rec)


def test_recovery_is_one_for_the_whole_last_residual_and_zero_for_nothing(setup):
    adapter, clean, corrupted, a, b, _ = setup
    r = S.layer_block_scan(adapter, clean, corrupted, a, b)
    cols = [c["block"] for c in r.col_ids]
    last = r.row_labels.index(f"resid_post L{adapter.cfg.n_layers - 1}")
    assert abs(r.values[last, cols.index("all")] - 1) < 1e-4
    assert abs(r.values[last, cols.index("state")] - 1) < 1e-4  # the prediction token is a state token
    assert abs(r.values[last, cols.index("rtg")]) < 1e-4  # later positions cannot reach it
    assert abs(r.values[0, cols.index("all")] - 1) < 1e-4  # the whole input residual
    nothing = S.run_scan(adapter, clean, corrupted, a, b, [[[]]], kind="none", row_ids=[{}], col_ids=[{}],
                         row_labels=["-"], col_labels=["-"])
    assert abs(nothing.values[0, 0]) < 1e-5 and abs(nothing.deltas[0, 0]) < 1e-5  # float noise of batch rows only
    same = S.head_input_scan(adapter, clean, clean, a, b)
    np.testing.assert_array_equal(same.values, 0)


def test_one_scan_is_one_cache_forward_and_few_batched_ones():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    clean, corrupted = random_window(adapter, seed=1), random_window(adapter, seed=2, rtg=-0.5)
    calls = {"hooks": 0, "cache": 0}
    run_with_hooks, run_with_cache = adapter.run_with_hooks, adapter.run_with_cache

    def counting_hooks(*args, **kw):
        calls["hooks"] += 1
        return run_with_hooks(*args, **kw)

    def counting_cache(*args, **kw):
        calls["cache"] += 1
        return run_with_cache(*args, **kw)

    adapter.run_with_hooks, adapter.run_with_cache = counting_hooks, counting_cache
    try:
        whole = S.head_input_position_scan(adapter, clean, corrupted, 0, 2)
        assert calls == {"hooks": 1, "cache": 1} and whole.n_forwards == 2
        calls.update(hooks=0, cache=0)
        chunked = S.head_input_position_scan(adapter, clean, corrupted, 0, 2, chunk_size=7)
        K = whole.values.size
        assert calls == {"hooks": math.ceil(K / 7), "cache": 1} and chunked.n_forwards == 1 + math.ceil(K / 7)
    finally:
        del adapter.run_with_hooks, adapter.run_with_cache
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-5)
    kw = whole.heatmap_kwargs()
    from dtwidgets.widgets import MatrixHeatmap

    w = MatrixHeatmap(**kw)
    assert w.values.shape == whole.values.shape and list(w.row_labels) == whole.row_labels


@pytest.mark.parametrize("call, match", [
    (lambda ad, c, k: S.layer_block_scan(ad, c, k, 0, 1, component="resid_mid"), "component"),
    (lambda ad, c, k: S.layer_block_scan(ad, c, k, 0, 1, blocks="pairs"), "blocks"),
    (lambda ad, c, k: S.head_input_scan(ad, c, k, 0, 1, inputs=("q", "x")), "inputs"),
    (lambda ad, c, k: S.head_position_scan(ad, c, k, 0, 1, layers=[2]), "layers"),
    (lambda ad, c, k: S.neuron_scan(ad, c, k, 0, 1, neurons=[64]), "neurons"),
    (lambda ad, c, k: S.neuron_scan(ad, c, k, 0, 1, positions=[8]), "positions"),
    (lambda ad, c, k: S.head_scan(ad, c.repeat(2), k, 0, 1), "clean"),
    (lambda ad, c, k: S.head_scan(ad, c, k, 0, 1, chunk_size=0), "chunk_size"),
    (lambda ad, c, k: S.head_scan(ad, c, k, "jump", 1), "jump"),
    (lambda ad, c, k: S.run_scan(ad, c, k, 0, 1, [[[]], []], kind="x", row_ids=[{}, {}], col_ids=[{}],
                                 row_labels=["a", "b"], col_labels=["c"]), "grid"),
    (lambda ad, c, k: S.run_scan(ad, c, k, 0, 1, [[[]]], kind="x", row_ids=[], col_ids=[{}],
                                 row_labels=["a"], col_labels=["c"]), "row ids"),
])
def test_bad_arguments_are_refused_by_name(call, match):
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    clean, corrupted = random_window(adapter, seed=1), random_window(adapter, seed=2)
    with pytest.raises(ValueError, match=match):
        call(adapter, clean, corrupted)
