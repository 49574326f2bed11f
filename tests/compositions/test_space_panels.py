"""The Explorer's Spaces, Congruence and NMF tabs against independent computations: numpy SVD, sklearn NMF
and plain torch from the weights, with every activation from tests/reference_forward.py (float64, no
dtwidgets code). The fits are made once, when a tab is first shown; the tabs run on the protocol-only
adapter with the same numbers, and a model without MLP neurons gets one note, not a traceback."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis import congruence as congruence_module
from dtwidgets.analysis import nmf as nmf_module
from dtwidgets.analysis import spaces as spaces_module
from dtwidgets.analysis.space_extras import NMFNow, SpacePCA
from dtwidgets.compositions import Explorer
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features, reference_run

CONFIG = "ln-gated-onehot-26tok"  # LayerNorm (ln_final folded into the congruence), gated MLP (negative post)


def _reference(adapter, window):
    """``(logits [B, A] at the last state token, cache)`` of the independent float64 forward."""
    sd = state_dict_of(adapter.model)
    c = adapter.cfg
    mcfg = {"d_model": c.d_model, "n_heads": c.n_heads, "d_mlp": c.d_mlp, "n_layers": c.n_layers, "n_ctx": c.n_ctx}
    feats = raw_to_features(torch.as_tensor(window.observations), c.one_hot_obs).double()
    T = window.observations.shape[1]
    feats = feats * (torch.arange(T)[None, :] >= window.n_pad[:, None])[..., None]
    logits, cache = reference_run(sd, mcfg, feats, window.rtgs.double(), window.timesteps, window.actions,
                                  act_fn=c.act_fn, layer_norm=c.layer_norm, gated=c.gated_mlp,
                                  time_type=c.time_embedding_type)
    return logits[:, -1].double().numpy(), cache


def _windows(adapter, n: int = 14) -> TrajectoryWindow:
    T = adapter.layout.n_timesteps
    return TrajectoryWindow.cat([random_window(adapter, seed=s, n_steps=1 + s % T, rtg=0.9 - 0.1 * (s % 5))
                                 for s in range(n)])


def _explorer(adapter, refs):
    e = Explorer(adapter, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"), reference_windows=refs)
    assert e.error.value == ""
    return e


def _aligned(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``want`` with each column's sign matched to ``got``'s (a principal axis is defined up to its sign)."""
    s = np.sign((got * want).sum(0))
    return want * np.where(s == 0, 1, s)


@pytest.fixture(scope="module")
def setup():
    adapter = make_adapter(**{**CONFIGS[CONFIG], "n_actions": 3})  # the MiniGrid env's 3 actions
    return adapter, _windows(adapter)


def test_spaces_tab_is_numpy_svd_with_the_state_projected(setup):
    adapter, refs = setup
    e = _explorer(adapter, refs)
    p = e.show_panel("spaces")
    pos = adapter.layout.prediction_position  # the last state token
    ref_logits, ref_cache = _reference(adapter, refs)
    for hook_value in ("blocks.0.hook_resid_pre", "blocks.1.hook_resid_mid"):
        p.hook.value = hook_value
        for step in range(3):
            X = ref_cache[hook_value][:, pos].numpy()
            mean = X.mean(0)
            _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
            got = p.view.points
            assert got.shape == (len(X) + 1, 2) and p.view.selected == len(X)  # the state shown: last, ringed
            want = _aligned(got[:-1], (X - mean) @ Vt[:2].T)
            np.testing.assert_allclose(got[:-1], want, atol=2e-4 * np.abs(want).max())
            _, now = _reference(adapter, e.session.window())
            x = now[hook_value][0, pos].numpy()
            s = np.sign((got[:-1] * ((X - mean) @ Vt[:2].T)).sum(0))
            np.testing.assert_allclose(got[-1], s * ((x - mean) @ Vt[:2].T), atol=2e-4 * np.abs(want).max())
            np.testing.assert_allclose(p.view.scree, S ** 2 / (S ** 2).sum(), atol=1e-5)
            np.testing.assert_array_equal(p.view.colour[:-1], ref_logits.argmax(1))  # the model's action
            assert list(p.view.colour_classes) == list(adapter.action_names)
            e.press("ArrowUp" if step % 2 else "ArrowLeft")
    p.colour_by.value = "rtg"
    np.testing.assert_allclose(p.view.colour[:-1], refs.rtgs[:, -1].numpy())
    assert p.view.colour[-1] == pytest.approx(float(e.session.window().rtgs[0, -1]))
    p.dims.value = 3
    assert p.view.points.shape == (refs.batch_size + 1, 3) and "drag to rotate" in p.info.value


def test_congruence_tab_is_plain_torch_from_the_weights(setup):
    adapter, refs = setup
    e = _explorer(adapter, refs)
    p = e.show_panel("congruence")
    e.press("ArrowLeft")
    sd = {k: v.double() for k, v in state_dict_of(adapter.model).items()}
    L, A = adapter.cfg.n_layers, adapter.n_actions
    u = sd["action_predictor.weight"] * sd["transformer.ln_final.w"]
    u = u - u.mean(-1, keepdim=True)  # LayerNorm centres what the head reads
    out = torch.stack([sd[f"transformer.blocks.{l}.mlp.W_out"] @ u.T for l in range(L)]).numpy()  # [L, N, A]
    flat = out.reshape(-1, A)
    N = out.shape[1]
    top = np.argsort(-np.abs(flat).max(1), kind="stable")[:16]
    assert list(p.heatmap.row_labels) == [f"L{i // N}N{i % N}" for i in top]
    np.testing.assert_allclose(p.heatmap.values, flat[top], rtol=1e-4, atol=1e-5)
    _, now = _reference(adapter, e.session.window())
    pos = adapter.layout.prediction_position
    acts = np.concatenate([now[f"blocks.{l}.mlp.hook_post"][0, pos].numpy() for l in range(L)])[top]
    a, b = adapter.action_names.index("forward"), adapter.action_names.index("right")
    np.testing.assert_allclose(p.now.values[0], acts, atol=1e-4)
    np.testing.assert_allclose(p.now.values[1], acts * (flat[top, a] - flat[top, b]), atol=1e-4)
    assert p.now.series_names[1] == "push on forward − right"


def test_nmf_tab_is_sklearn_nmf_with_the_states_weights(setup):
    from sklearn.decomposition import NMF, non_negative_factorization

    adapter, refs = setup
    e = _explorer(adapter, refs)
    p = e.show_panel("nmf")
    p.k.value = 4
    e.press("ArrowLeft")
    hook = f"blocks.{adapter.cfg.n_layers - 1}.mlp.hook_post"
    assert p.hook.value == hook
    pos = adapter.layout.prediction_position
    _, ref_cache = _reference(adapter, refs)
    X = ref_cache[hook][:, pos].numpy()
    assert (X < 0).any()  # a gated MLP: positive and negative parts are factorised
    Xs = np.concatenate([np.maximum(X, 0), np.maximum(-X, 0)], 1)
    model = NMF(n_components=4, init="nndsvda", random_state=0, max_iter=500)
    model.fit(Xs)
    H = model.components_
    r = e.ctx.compute(e.session.window(), panels=[p]).state.extras[NMFNow]  # the fit the tab drew (made once)
    np.testing.assert_allclose(r.nmf.components, H, atol=2e-3 * np.abs(H).max())
    _, now = _reference(adapter, e.session.window())
    x = now[hook][0, pos].numpy()
    xs = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)])[None]
    w, _, _ = non_negative_factorization(xs, H=H, n_components=4, init="custom", update_H=False, solver="mu",
                                         max_iter=20000, tol=1e-12)
    order = np.argsort(-w[0], kind="stable")
    assert list(p.weights.labels) == [f"component {k}" for k in order]
    np.testing.assert_allclose(p.weights.values[0], w[0][order], atol=2e-3 * max(1.0, w.max()))
    assert p.browser.selected == order[0] and len(p.browser.feature_ids) == 4
    assert p.browser.examples_obs.shape[:2] == (4, 9) and "4 NMF components" in p.browser.title


def test_fits_are_made_once_and_only_when_a_tab_is_shown(setup, monkeypatch):
    adapter, refs = setup
    calls = {"pca": 0, "nmf": 0, "congruence": 0}
    for mod, name, key in ((spaces_module, "activation_pca", "pca"), (nmf_module, "activation_nmf", "nmf"),
                           (congruence_module, "neuron_congruence", "congruence")):
        def counted(*a, _f=getattr(mod, name), _k=key, **kw):
            calls[_k] += 1
            return _f(*a, **kw)
        monkeypatch.setattr(mod, name, counted)
    fresh = make_adapter(**CONFIGS["lnpre-8tok"])
    e = _explorer(fresh, _windows(fresh, 10))
    e.press("ArrowLeft")
    assert calls == {"pca": 0, "nmf": 0, "congruence": 0}  # tabs not shown: nothing fitted
    for key in ("spaces", "congruence", "nmf"):
        e.show_panel(key)
        first = e.ui.panels[e.ui.tabs.selected_index]
        before = first.view.points.copy() if key == "spaces" else None
        for k in ("ArrowLeft", "ArrowUp", "ArrowUp"):
            e.press(k)
        if before is not None:  # the state shown moves, the reference points do not
            assert not np.allclose(first.view.points[-1], before[-1])
            np.testing.assert_array_equal(first.view.points[:-1], before[:-1])
    assert calls == {"pca": 1, "nmf": 1, "congruence": 1}, calls


def test_without_reference_windows_the_episode_so_far_is_used_then_kept():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    e = _explorer(adapter, None)
    p = e.show_panel("spaces")
    assert "at least 2 reference states" in p.info.value and p.view.layout.display == "none"
    for _ in range(9):
        e.press("ArrowLeft")
    ref = p.reference.get()
    assert len(ref) == 8 and "steps 0–7" in p.info.value  # retaken each state up to 8 states, then kept
    _, cache = _reference(adapter, ref.windows)
    X = cache["blocks.0.hook_resid_pre"][:, adapter.layout.prediction_position].numpy()
    want = (X - X.mean(0)) @ np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:2].T
    np.testing.assert_allclose(p.view.points[:-1], _aligned(p.view.points[:-1], want), atol=2e-4 * np.abs(want).max())
    p.reference.button.click()
    assert len(p.reference.get()) == e.session.n_steps + 1 == 10 and "steps 0–9" in p.info.value


@pytest.mark.parametrize("key", ["spaces", "congruence", "nmf"])
def test_tabs_on_the_protocol_only_adapter_match_the_shipped_one(key):
    from tests.protocol.test_minimal_adapter import pair

    shipped, minimal = pair("lnpre-8tok")
    refs = _windows(shipped, 10)
    views = []
    for ad in (shipped, minimal):
        e = _explorer(ad, refs)
        p = e.show_panel(key)
        e.press("ArrowLeft")
        e.press("ArrowUp")
        assert e.error.value == ""
        views.append({"spaces": lambda: (p.view.points, p.view.colour), "congruence": lambda: (p.heatmap.values, p.now.values),
                      "nmf": lambda: (p.weights.values, p.browser.action_bars)}[key]())
    for got, want in zip(*views):
        np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))


def _attn_only_adapter():
    """The protocol-only adapter around an attention-only TransformerLens backbone (no MLP at all), with the
    embeddings and action head of the lnpre-8tok test model (its attention heads: the backbone's own seeded init)."""
    from dtwidgets.model.backbone import _PosEmbedTokens, tl_major
    from tests.protocol.minimal_adapter import minimal_from

    shipped = make_adapter(**CONFIGS["lnpre-8tok"])
    c = shipped.cfg
    kw = dict(n_layers=c.n_layers, d_model=c.d_model, n_ctx=c.n_ctx, d_head=c.d_head, n_heads=c.n_heads, d_mlp=c.d_mlp,
              d_vocab=c.d_model, d_vocab_out=c.d_model, act_fn="relu", normalization_type=c.layer_norm,
              attention_dir="causal", seed=0, attn_only=True)
    if tl_major() >= 4:
        from transformer_lens import TransformerBridge, TransformerBridgeConfig

        bb = TransformerBridge.boot_native(TransformerBridgeConfig(**kw))
        with torch.no_grad():
            bb.unembed.weight.copy_(torch.eye(c.d_model))
            bb.unembed.bias.zero_()
            bb.embed.weight.zero_()
    else:
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        bb = HookedTransformer(HookedTransformerConfig(default_prepend_bos=False, **kw))
        bb.embed, bb.unembed = torch.nn.Identity(), torch.nn.Identity()
        bb.pos_embed = _PosEmbedTokens(c.n_ctx, c.d_model)
        bb.setup()
    return minimal_from(state_dict_of(shipped.model), backbone=bb, layout=shipped.layout, schema=shipped.schema,
                        action_names=c.action_names, rtg_range=c.rtg_range, max_timestep=c.max_timestep,
                        one_hot=c.one_hot_obs, n_layers=c.n_layers)


def test_a_model_without_mlp_neurons_gets_one_note_in_each_tab():
    """An attention-only backbone: the congruence tab says there are no neurons; PCA and NMF offer only the
    hooks the model has and run on them; an MLP hook asked for by hand is one note, not a traceback."""
    from dtwidgets.analysis.bundle import StateAnalysis
    from dtwidgets.analysis.extras import StateRequest
    from dtwidgets.compositions.panels import AnalysisContext, PanelData
    from dtwidgets.compositions.panels.congruence import CongruencePanel
    from dtwidgets.compositions.panels.nmf import NMFPanel
    from dtwidgets.compositions.panels.spaces import SpacesPanel

    ad = _attn_only_adapter()
    refs = _windows(ad, 10)
    ctx = AnalysisContext(ad, pair=("forward", "right"))
    ctx.reference_windows = refs  # (set after: the context's mean ablation reads every MLP hook)
    window = random_window(ad, seed=99)
    state = StateAnalysis(action_names=tuple(ad.action_names), logits=ad.forward(window)[0].detach().numpy(),
                          probs=None, attribution=None, ablations=None, rtg_scan=None, attention=None)  # type: ignore[arg-type]
    state._request = StateRequest(ad, window, (2, 1), state=state)  # the bundle needs MLPs; the tabs do not
    data = PanelData(window, state, [])
    cong, spaces, nmf = CongruencePanel(ctx), SpacesPanel(ctx), NMFPanel(ctx)
    for p in (cong, spaces, nmf):
        p.update(data)
    assert "no MLP neurons" in cong.note.value and cong.heatmap.layout.display == "none"
    assert all("mlp" not in h for _, h in spaces.hook.options) and spaces.view.points.shape == (11, 2)
    assert all("mlp" not in h and "resid_mid" not in h for h in nmf.hook.options)
    assert nmf.hook.value == "blocks.1.hook_resid_post" and nmf.weights.values.shape == (1, 6)
    _, ref_cache = _reference_attn_only(ad, refs)
    X = ref_cache["blocks.0.hook_resid_pre"][:, ad.layout.prediction_position].numpy()
    want = (X - X.mean(0)) @ np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:2].T
    np.testing.assert_allclose(spaces.view.points[:-1], _aligned(spaces.view.points[:-1], want),
                               atol=2e-4 * np.abs(want).max())
    assert "not a hook NMF reads" in NMFNow("blocks.0.mlp.hook_post", nmf.reference.get()).compute(state.request).note
    assert "not a residual hook" in SpacePCA("blocks.0.hook_resid_mid", spaces.reference.get()).compute(state.request).note


def _reference_attn_only(adapter, window):
    """The embeddings of the independent forward (the residual before block 0 does not depend on the blocks)."""
    shipped = make_adapter(**CONFIGS["lnpre-8tok"])
    return _reference(shipped, window)
