"""Token layouts R-s-a, s-a (no RTG) and R-s (no actions): the layout's positions, the DT's forward
against the independent plain-torch forward (tests/reference_forward.py writes each layout out token by
token), exact attribution, a safetensors round trip, and one clear error from every RTG analysis of a
model without RTG tokens."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets import analysis as A
from dtwidgets.adapters import TokenLayout, UnsupportedByModel
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig
from dtwidgets.model.checkpoint import load_model, load_state, save_model, state_dict_of
from tests.reference_forward import raw_to_features, reference_logits

# layout name -> (n_ctx for 3 timesteps, step letters for the reference forward)
LAYOUTS = {"R-s-a": (8, ("R", "s", "a")), "s-a": (5, ("s", "a")), "R-s": (6, ("R", "s"))}


def test_layout_positions_written_out():
    assert TokenLayout.from_n_ctx(8).labels() == ["R₁", "s₁", "a₁", "R₂", "s₂", "a₂", "R₃", "s₃"]
    sa = TokenLayout.from_n_ctx(5, "s-a")
    assert sa.labels() == ["s₁", "a₁", "s₂", "a₂", "s₃"] and sa.n_timesteps == 3
    assert sa.state_positions == [0, 2, 4] and sa.positions("rtg") == [] and not sa.has_rtg and sa.has_action
    rs = TokenLayout.from_n_ctx(6, "R-s")
    assert rs.labels() == ["R₁", "s₁", "R₂", "s₂", "R₃", "s₃"] and rs.positions("action") == []
    assert rs.has_rtg and not rs.has_action and rs.prediction_position == 5 and rs.timestep_of == (0, 0, 1, 1, 2, 2)
    assert TokenLayout(2).name == "R-s-a" and TokenLayout.named("s-a", 1).n_tokens == 1
    with pytest.raises(ValueError, match="n_ctx = 2\\*T - 0 .* R-s token layout, got 5"):
        TokenLayout.from_n_ctx(5, "R-s")
    with pytest.raises(ValueError, match="token layout in"):
        TokenLayout.from_n_ctx(5, "a-s-R")
    with pytest.raises(ValueError, match="holding 'state'"):
        TokenLayout(2, ("rtg", "action"))
    with pytest.raises(ValueError, match="token_layout in"):
        DTConfig(n_ctx=5, token_layout="S-A")
    with pytest.raises(ValueError, match="s-a token layout, got 6"):
        DTConfig(n_ctx=6, token_layout="s-a")


def _model(layout: str, layer_norm=None) -> DTAdapter:
    n_ctx = LAYOUTS[layout][0]
    cfg = DTConfig(d_model=32, n_heads=4, d_mlp=48, n_layers=2, n_ctx=n_ctx, layer_norm=layer_norm, max_timestep=40,
                   token_layout=layout, seed=3)
    m = DecisionTransformer(cfg)
    g = torch.Generator().manual_seed(7)
    sd = state_dict_of(m)  # reference layout: the same tensors under both TransformerLens majors
    sd = {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in sd.items()}  # biases non-zero too
    return DTAdapter(load_state(m, sd))


def _window(adapter, seed=0):
    rng = np.random.default_rng(seed)
    T = adapter.layout.n_timesteps
    obs = np.stack([rng.integers(0, 11, (T, 7, 7)), rng.integers(0, 6, (T, 7, 7)), rng.integers(0, 3, (T, 7, 7))], -1)
    return adapter.make_window(obs, np.linspace(0.9, 0.5, T), 2 + np.arange(T), rng.integers(0, 3, T - 1))


def _reference(adapter, w):
    c = adapter.cfg
    mcfg = {"d_model": c.d_model, "n_heads": c.n_heads, "n_layers": c.n_layers}
    feats = raw_to_features(w.observations, False)
    return reference_logits(state_dict_of(adapter.model), mcfg, feats, w.rtgs, w.timesteps, w.actions,
                            layer_norm=c.layer_norm, step=LAYOUTS[c.token_layout][1])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("ln", [None, "LN"])
def test_forward_equals_plain_torch_and_attribution_is_exact(layout, ln):
    ad = _model(layout, ln)
    assert ad.layout.name == layout
    w = _window(ad)
    want = _reference(ad, w)  # [1, T, A]
    torch.testing.assert_close(ad.model(w), want, atol=1e-4, rtol=0)
    torch.testing.assert_close(ad.forward(w), want[:, -1], atol=1e-4, rtol=0)
    at = A.logit_attribution(ad, w, 2, 1)
    ref = float(want[0, -1, 2] - want[0, -1, 1])
    assert abs(at.logit_diff - ref) < 1e-4 and abs(float(at.values.sum()) - ref) < 1e-4
    assert at.per_source.shape[1] == ad.layout.n_tokens
    st = A.analyze_state(ad, w, (2, 1))  # the batched bundle: same attribution, ablations of every component
    np.testing.assert_allclose(st.attribution.values, at.values, atol=1e-5)
    assert st.ablations.logits.shape == (2 * 4 + 2, 3)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_dependent_positions_of_other_analyses(layout):
    """Path patching sends from the embeddings the layout has; probes / SAEs read the last RTG / action token."""
    from dtwidgets.analysis._common import last_token_position as position_index

    ad = _model(layout, "LN")
    w, w2 = _window(ad), _window(ad, seed=5)
    pp = A.path_patching(ad, w, w2, 2, 1)
    has = {"RTG embed": ad.layout.has_rtg, "action embed": ad.layout.has_action, "state embed": True}
    for label, present in has.items():
        assert (label in pp.sender_labels) is present
    same = A.path_patching(ad, w, w, 2, 1)  # corrupted == clean: every path moves nothing
    assert np.nanmax(np.abs(same.effects)) < 1e-5
    want = {"R-s-a": {"state": 7, "rtg": 6, "action": 5}, "s-a": {"state": 4, "action": 3},
            "R-s": {"state": 5, "rtg": 4}}[layout]
    for pos in ("state", "rtg", "action"):
        if pos in want:
            assert position_index(ad, pos) == want[pos]
        else:
            with pytest.raises(ValueError, match=f"has no '{pos}' token"):
                position_index(ad, pos)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_safetensors_round_trip(layout, tmp_path):
    ad = _model(layout)
    path = save_model(ad, tmp_path / f"m-{layout}.safetensors")
    back = DTAdapter(load_model(path))
    assert back.cfg.token_layout == layout and back.layout == ad.layout
    w = _window(ad, seed=2)
    torch.testing.assert_close(back.forward(w), ad.forward(w), atol=0, rtol=0)


def test_a_model_without_rtg_ignores_the_rtg_and_refuses_rtg_analyses():
    ad = _model("s-a")
    w = _window(ad)
    torch.testing.assert_close(ad.forward(w.with_rtg(torch.tensor([-1.0]))), ad.forward(w), atol=0, rtol=0)
    for run, name in ((lambda: A.rtg_scan(ad, w, 2, 1), "rtg_scan"),
                      (lambda: A.rtg_embedding_projection(ad, 2, 1), "rtg_embedding_projection"),
                      (lambda: A.analyze_state(ad, w, (2, 1), rtgs=[0.5]), "RTG scan")):
        with pytest.raises(UnsupportedByModel, match=f"{name}.*s-a \\(no return-to-go input\\)"):
            run()
    st = A.analyze_state(ad, w, (2, 1))  # the default scan is empty, the rest is there
    assert st.rtg_scan.logits.shape == (0, 3) and st.attribution.values.size
    from dtwidgets.data.calibration import calibrate

    with pytest.raises(UnsupportedByModel, match="calibrate"):
        calibrate(ad, "MiniGrid-Dynamic-Obstacles-8x8-v0", n_episodes=1, progress=False)


def test_explorer_hides_rtg_controls_and_scan_without_rtg():
    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.compositions import Explorer

    for layout, shown in (("s-a", False), ("R-s", True)):
        e = Explorer(_model(layout), MiniGridEnv(), coalesce_s=0)
        e.press("ArrowUp")
        keys = [getattr(p, "key", "") for p in e.panels]
        assert ("rtg_scan" in keys) is shown and (e.rtg_slider.layout.display != "none") is shown
        compare = [v for _, v in e.show_panel("policy_map").compare.options]
        assert ("rtg" in compare) is shown
        for k in keys:
            e.show_panel(k)
        assert e.error.value == "", (layout, e.error.value)
        np.testing.assert_allclose(e.prefs.logits, e.session.logits().numpy(), atol=1e-6)
