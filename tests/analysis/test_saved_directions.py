"""DirectionStore: each source gives the vector computed here independently (checkpoint tensors, the SAE
file, the plain-torch cache), the cosine matrix equals numpy's, and save/load round-trips exactly
through JSON + safetensors while tampered files are refused with a named reason."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from dtwidgets.adapters import TrajectoryWindow, hooks
from dtwidgets.analysis.saved_directions import DirectionStore, space_of
from dtwidgets.probes.fit import ProbeResult
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.analysis.ref_cache import reference_cache, reference_weights


def _store():
    a = make_adapter(**CONFIGS["ln-3layers-linear-time-5tok"])
    sd = reference_weights(a)
    s = DirectionStore()
    with_w = TrajectoryWindow.cat([random_window(a, seed=i, rtg=0.9) for i in range(3)])
    without_w = TrajectoryWindow.cat([random_window(a, seed=10 + i, rtg=-0.5) for i in range(4)])
    s.add_steering("high rtg", a, (with_w, without_w), hooks.resid_post(1))
    s.add_neuron("L1N7 out", a, "L1N7")
    s.add_neuron("L0N3 in", a, "L0N3", side="in")
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(6, 32)), rng.normal(size=(5, 32)) + 1
    s.add_mean_difference("md", A, B, hook=hooks.resid_pre(2))
    probe = ProbeResult("front is wall", (hooks.resid_mid(0), "state"), "categorical", 0.9, 0.95, 0.5, 0.5,
                        directions=rng.normal(size=(1, 32)), intercepts=np.zeros(1), dom_directions=rng.normal(size=(1, 32)),
                        classes=("False", "True"))
    s.add_probe("wall probe", probe)
    s.add("mlp dir", rng.normal(size=64), hook=hooks.mlp_post(0))
    p = a.layout.prediction_position
    ref = reference_cache(a, with_w)[hooks.resid_post(1)][:, p].mean(0) - \
        reference_cache(a, without_w)[hooks.resid_post(1)][:, p].mean(0)
    want = {"high rtg": ref.numpy(), "L1N7 out": sd["transformer.blocks.1.mlp.W_out"][7].numpy(),
            "L0N3 in": sd["transformer.blocks.0.mlp.W_in"][:, 3].numpy(), "md": A.mean(0) - B.mean(0),
            "wall probe": probe.directions[0]}
    return s, want


def test_sources_cosines_and_round_trip(tmp_path):
    s, want = _store()
    for name, v in want.items():
        np.testing.assert_allclose(s[name].vector, v, atol=1e-4, rtol=1e-4)
        assert s[name].space == "residual"
    assert s["mlp dir"].space == hooks.mlp_post(0) and s.spaces() == ["residual", hooks.mlp_post(0)]
    assert s["wall probe"].provenance["concept"] == "front is wall" and s["L0N3 in"].source == "neuron"
    names, M = s.cosine_matrix("residual")
    assert names == list(want)
    V = np.stack([want[n] for n in names])
    np.testing.assert_allclose(M, (V @ V.T) / np.outer(np.linalg.norm(V, axis=1), np.linalg.norm(V, axis=1)), atol=1e-4)
    s.save(tmp_path / "dirs")
    back = DirectionStore.load(tmp_path / "dirs")
    assert back.names == s.names
    for n in s.names:
        np.testing.assert_array_equal(back[n].vector, s[n].vector)
        assert (back[n].space, back[n].hook, back[n].source, back[n].provenance) == \
            (s[n].space, s[n].hook, s[n].source, s[n].provenance)
    with pytest.raises(ValueError, match="no direction is saved"):
        s.cosine_matrix("blocks.1.mlp.hook_post")
    with pytest.raises(ValueError, match="already saved"):
        s.add("md", np.ones(32), "residual")


def test_sae_feature_is_the_decoder_row_of_the_file():
    from dtwidgets.demo import DEMO_DIR
    from dtwidgets.sae import demo_sae

    s = DirectionStore()
    d = s.add_sae_feature("f5", demo_sae("post"), 5)
    W = load_file(str(DEMO_DIR / "post_sae" / "sae_weights.safetensors"))["W_dec"]
    np.testing.assert_array_equal(d.vector, W[5])
    assert d.hook == hooks.resid_post(0) and d.space == "residual" and d.provenance["feature"] == 5


def _tamper(folder, fn_json=None, tensors=None):
    meta = json.loads((folder / "directions.json").read_text())
    if fn_json:
        fn_json(meta)
    (folder / "directions.json").write_text(json.dumps(meta))
    if tensors is not None:
        save_file(tensors, str(folder / "directions.safetensors"))


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["directions"][0].update(name=7), "name"),
    (lambda m: m["directions"][0].update(dim=3), "shape"),
    (lambda m: m["directions"][1].update(name=m["directions"][0]["name"]), "already saved"),
    (lambda m: m["directions"][0].update(source="pickle"), "source"),
    (lambda m: m["directions"][0]["provenance"].update(x=[1, 2]), "provenance"),
    (lambda m: m.update(format="other"), "format"),
    (lambda m: m["directions"].pop(), "one tensor per entry"),
])
def test_load_refuses_tampered_files(tmp_path, edit, match):
    s = DirectionStore()
    s.add("a", np.ones(4), "residual")
    s.add("b", np.arange(4.0), "residual")
    folder = s.save(tmp_path / "d")
    _tamper(folder, edit)
    with pytest.raises(ValueError, match=match):
        DirectionStore.load(folder)


def test_load_refuses_non_finite_values(tmp_path):
    s = DirectionStore()
    s.add("a", np.ones(4), "residual")
    folder = s.save(tmp_path / "d")
    _tamper(folder, tensors={"d0": np.array([1, np.nan, 0, 0], dtype=np.float32)})
    with pytest.raises(ValueError, match="finite"):
        DirectionStore.load(folder)
    with pytest.raises(ValueError, match="finite"):
        s.add("b", [np.inf, 0], "residual")


def test_space_of():
    assert space_of(hooks.resid_mid(3)) == space_of(hooks.DT_TOKENS) == space_of(hooks.mlp_out(0)) == "residual"
    assert space_of(hooks.hook_z(0)) == hooks.hook_z(0)
