"""Every accepted hook name means what it means in TransformerLens 3.9, under whichever major is installed.

For every name a model accepts: reading it (``run_with_cache``) gives the activation of an independent
plain-torch forward (``tests/reference_forward.reference_run``, float64, from the checkpoint tensors);
editing it (``run_with_hooks``: add a fixed random tensor, or scale by 1.5) changes every later
activation and the logits exactly as the same edit does in that forward. Models: the shipped demo
(1 layer, no LayerNorm, 2 tokens), a 2-layer LayerNorm gated-MLP one-hot model (26 tokens) and a
2-layer LNPre model (8 tokens). Run under TL 3.9 and TL 4.x: TL 4.3's bridge maps ``hook_resid_mid``
onto ``ln2.hook_in`` and fires ``hook_attn_scores`` with the pattern; both fail here without
``dtwidgets.adapters.hooks``.
"""
from __future__ import annotations

import functools
import zlib

import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.model.backbone import tl_major
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features, reference_run

MODELS = ("demo-post", "ln-gated-onehot-26tok", "lnpre-8tok")
EDITS = ("add", "rescale")


@functools.lru_cache(maxsize=None)
def _model(name: str):
    if name == "demo-post":
        from dtwidgets.demo import load_demo

        adapter = load_demo("post")[0]
    else:
        adapter = make_adapter(**CONFIGS[name])
    T = adapter.layout.n_timesteps
    window = TrajectoryWindow.cat([random_window(adapter, seed=s, n_steps=max(1, T - s)) for s in range(3)])
    cfg = adapter.cfg
    feats = raw_to_features(window.observations, cfg.one_hot_obs)
    feats = feats * (torch.arange(T)[None] >= window.n_pad[:, None])[..., None]  # padded steps: zero features
    return adapter, window, feats


def _reference(name: str, edits=None):
    """``(logits [B, A] at the prediction position, cache)`` of the plain-torch forward with ``edits``."""
    adapter, w, feats = _model(name)
    cfg = adapter.cfg
    mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
    logits, cache = reference_run(state_dict_of(adapter.model), mcfg, feats, w.rtgs, w.timesteps, w.actions,
                                  act_fn=cfg.act_fn, layer_norm=cfg.layer_norm, gated=cfg.gated_mlp,
                                  time_type=cfg.time_embedding_type, edits=edits)
    return logits[:, -1], cache


def _edit(kind: str, name: str):
    """The same edit for the model (float32) and the reference (float64), with a fixed random ``R`` of
    the activation's shape (one per hook name, the same for every row): ``x + 0.5 R`` (``"add"``) or
    ``x * (1 + 0.5 tanh(R))`` (``"rescale"``: entry by entry, so that a LayerNorm does not undo it)."""
    def edit(x):
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        r = torch.randn(x.shape[1:], generator=g, dtype=torch.float64).to(x.dtype)
        return x + 0.5 * r if kind == "add" else x * (1 + 0.5 * torch.tanh(r))
    return edit


def _same(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got, want = got.double(), want.double()
    inf = torch.isinf(want)
    assert torch.equal(torch.isinf(got), inf), f"{what}: -inf (masked scores) at other entries"
    fin = ~inf
    tol = 2e-5 * max(1.0, float(want[fin].abs().max()) if fin.any() else 1.0)
    err = float((got[fin] - want[fin]).abs().max()) if fin.any() else 0.0
    assert err <= tol, f"{what}: max |difference| {err:.3g} from the plain-torch forward (tolerance {tol:.2g})"


def _names(name: str) -> list[str]:
    return list(_reference(name)[1])


def _cases():
    return [(m, h) for m in MODELS for h in _names(m)]


def test_accepted_names_are_exactly_the_reference_hooks():
    """``run_with_cache()`` caches every accepted name and nothing else (no TL 4 bridge aliases):
    the same set on both majors, the set the plain-torch forward records."""
    for m in MODELS:
        adapter, w, _ = _model(m)
        _, cache = adapter.run_with_cache(w)
        assert list(cache.cache_dict) and set(cache.cache_dict) == set(_names(m)), m


@pytest.mark.parametrize("model,hook", _cases())
def test_read_gives_the_reference_activation(model, hook):
    adapter, w, _ = _model(model)
    logits, cache = adapter.run_with_cache(w, names_filter=[hook])
    assert list(cache.cache_dict) == [hook]
    want_logits, want = _reference(model)
    _same(cache[hook], want[hook], f"{model} read {hook}")
    _same(logits, want_logits, f"{model} logits")


@pytest.mark.parametrize("kind", EDITS)
@pytest.mark.parametrize("model,hook", _cases())
def test_edit_reaches_every_later_reader(model, hook, kind):
    """One run: the edit at ``hook``, then a read of every accepted name (the edited hook after the edit)."""
    adapter, w, _ = _model(model)
    edit, seen, store = _edit(kind, hook), [], {}

    def edit_hook(t, hook):
        seen.append(hook.name)
        return edit(t)

    def save(name):
        def fn(t, hook):
            store[name] = t.clone()
        return fn

    names = _names(model)
    logits = adapter.run_with_hooks(w, [(hook, edit_hook)] + [(n, save(n)) for n in names])
    want_logits, want = _reference(model, {hook: edit})
    clean_logits, _ = _reference(model)
    runs = 3 if ".ln1." in hook and tl_major() < 4 else 1  # TL 3.9 runs ln1 once per q/k/v input
    assert seen == [hook] * runs, f"the edit ran as {seen}, expected {runs}x as {hook!r}"
    assert float((want_logits - clean_logits).abs().max()) > 1e-4, "the edit must change the logits"
    assert set(store) == set(names)
    for n in names:
        _same(store[n], want[n], f"{model}: {n} after a {kind} edit at {hook}")
    _same(logits, want_logits, f"{model}: logits after a {kind} edit at {hook}")


def test_resid_mid_edit_equals_the_same_attn_out_edit():
    """``resid_mid = resid_pre + attn_out``: adding v at either is the same run (TL 4.3 without the fix: 0.89)."""
    for m in MODELS:
        adapter, w, _ = _model(m)
        for l in range(adapter.cfg.n_layers):
            v = torch.randn(adapter.cfg.d_model, generator=torch.Generator().manual_seed(l))
            add = lambda t, hook: t + v  # noqa: E731
            mid = adapter.run_with_hooks(w, [(f"blocks.{l}.hook_resid_mid", add)])
            out = adapter.run_with_hooks(w, [(f"blocks.{l}.hook_attn_out", add)])
            assert (mid - adapter.forward(w)).abs().max() > 1e-3
            torch.testing.assert_close(mid, out, atol=1e-5, rtol=0)


def test_nested_hooks_compose_in_order():
    """Hooks attached around ``run_with_cache`` (``analysis._common.run_with_cache``) and hooks of the run
    itself act as one ordered list: the cached ``resid_post`` / ``pattern`` see the outer edits."""
    from dtwidgets.analysis._common import run_with_cache

    m = "ln-gated-onehot-26tok"
    adapter, w, _ = _model(m)
    edits = {"blocks.0.hook_resid_mid": _edit("add", "blocks.0.hook_resid_mid"),
             "blocks.1.hook_mlp_in": _edit("add", "blocks.1.hook_mlp_in"),
             "blocks.1.attn.hook_attn_scores": _edit("rescale", "blocks.1.attn.hook_attn_scores")}
    want_logits, want = _reference(m, edits)
    fwd = [(n, lambda t, hook, f=f: f(t)) for n, f in edits.items()]
    names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post", "blocks.1.mlp.hook_post"]
    logits, cache = run_with_cache(adapter, w, names, fwd_hooks=fwd)
    for n in names:
        _same(cache[n], want[n], n)
    _same(logits, want_logits, "logits")
    torch.testing.assert_close(adapter.forward(w), _reference(m)[0].float(), atol=1e-4, rtol=0)  # all removed


BAD = ["blocks.0.ln2.hook_in", "blocks.0.hook_in", "blocks.0.hook_out", "blocks.0.attn.hook_result", "hook_embed",
       "blocks.0.hook_q_input", "blocks.0.attn.o.hook_in", "blocks.9.hook_resid_pre", "blocks.0.hook_resid_midd",
       "unembed.hook_in", "dt.hook_bogus"]


@pytest.mark.parametrize("bad", BAD)
def test_other_names_are_refused_naming_the_hook(bad):
    from dtwidgets.adapters.hooks import HookNameError

    adapter, w, _ = _model("ln-gated-onehot-26tok")
    before = adapter.forward(w)
    for call in (lambda: adapter.run_with_hooks(w, [(bad, lambda t, hook: t * 0)]),
                 lambda: adapter.run_with_cache(w, names_filter=[bad, "blocks.0.hook_resid_pre"])):
        with pytest.raises(HookNameError, match="hook " + repr(bad).replace(".", r"\.") + " is not accepted") as e:
            call()
        assert isinstance(e.value, ValueError) and isinstance(e.value, KeyError)
        assert "blocks.{l}." in str(e.value) or "dt.hook_rtg_embed" in str(e.value)  # says what is accepted
    torch.testing.assert_close(adapter.forward(w), before)  # nothing left attached


def test_names_this_model_lacks():
    """An LN / gated-MLP hook of a model without one: refused as an edit, left out of a cache (as TL does)."""
    from dtwidgets.adapters.hooks import HookNameError

    adapter, w, _ = _model("demo-post")
    for n in ("blocks.0.ln1.hook_scale", "blocks.0.mlp.hook_pre_linear", "ln_final.hook_scale"):
        with pytest.raises(HookNameError, match="no such activation"):
            adapter.run_with_hooks(w, [(n, lambda t, hook: t)])
        _, cache = adapter.run_with_cache(w, names_filter=[n, "blocks.0.hook_resid_mid"])
        assert list(cache.cache_dict) == ["blocks.0.hook_resid_mid"]
    _, cache = adapter.run_with_cache(w, names_filter=lambda n: n.endswith("hook_resid_mid"))
    assert list(cache.cache_dict) == ["blocks.0.hook_resid_mid"]


def test_hf_adapter_gives_the_same_meaning_with_its_padding_mask():
    """The HF adapter routes hooks through the same owner: a resid_mid edit equals the attn_out edit, and
    an attn_scores hook that returns its input unchanged (a rebuilt pattern on TL 4) keeps the
    permanent padding mask, so the logits of padded windows do not move."""
    from dtwidgets.model.hf import load_hf_decision_transformer
    from tests.hf.helpers import ENV, hf_model, real_windows

    adapter = load_hf_decision_transformer(hf_model(seed=3, randomise=True), env_id=ENV, n_timesteps=4)
    w = real_windows(adapter, 9, seed=4)
    assert bool((w.n_pad > 0).any()) and bool((w.n_pad == 0).any())
    clean = adapter.forward(w)
    v = torch.randn(adapter.backbone.cfg.d_model, generator=torch.Generator().manual_seed(0))
    for l in range(adapter.backbone.cfg.n_layers):
        add = lambda t, hook: t + v  # noqa: E731
        mid = adapter.run_with_hooks(w, [(f"blocks.{l}.hook_resid_mid", add)])
        assert (mid - clean).abs().max() > 1e-3
        torch.testing.assert_close(mid, adapter.run_with_hooks(w, [(f"blocks.{l}.hook_attn_out", add)]), atol=1e-5, rtol=0)
        same = adapter.run_with_hooks(w, [(f"blocks.{l}.attn.hook_attn_scores", lambda s, hook: s.clone())])
        torch.testing.assert_close(same, clean, atol=1e-5, rtol=0)
