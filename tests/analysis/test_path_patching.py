"""Direct path patching: zero for identical runs; each edge equals TransformerLens' own
get_act_patch_direct_path (TL 4) and an independent plain-torch forward with one edge patched."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.model import tl_major
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window

MULTI = ["ln-gated-onehot-26tok", "lnpre-8tok", "ln-3layers-linear-time-5tok", "noLN-gated-gelu-26tok"]


@pytest.mark.parametrize("name", MULTI + ["raw-2tok-noLN"])
def test_identical_runs_give_zero_everywhere(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=1)
    r = path_patching(a, w, w, "forward", "left")
    L, H = a.cfg.n_layers, a.cfg.n_heads
    assert r.effects.shape == (L * H, L * H * 3 + 1)
    finite = r.effects[np.isfinite(r.effects)]
    assert len(finite) == (sum(H * H * 3 * (L - 1 - l) for l in range(L)) + L * H)
    np.testing.assert_allclose(finite, 0, atol=1e-5)


def _edge_forward(a, base, source, sender, receiver):
    """Plain torch from the weights: the base run where only receiver's q/k/v input (or the final
    residual) sees the sender's source-run output; everything else sees its base-run output."""
    cfg = a.cfg
    sd = {k: v.double() for k, v in state_dict_of(a.model).items()}

    def ln(x, pre):
        if not cfg.layer_norm:
            return x
        x = x - x.mean(-1, keepdim=True)
        x = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5)
        return x * sd[pre + ".w"] + sd[pre + ".b"] if cfg.layer_norm == "LN" else x

    def run(window, write_delta=None):
        x0 = a.embed(window).double()[0] + sd["transformer.pos_embed.W_pos"][:a.layout.n_tokens]
        P, d = x0.shape
        H, dh = cfg.n_heads, cfg.d_model // cfg.n_heads
        x, zs = x0, {}
        for l in range(cfg.n_layers):
            p = f"transformer.blocks.{l}."
            qkv = {}
            for c in "QKV":
                h_in = ln(x, p + "ln1")
                qkv[c] = torch.einsum("pd,hde->phe", h_in, sd[p + f"attn.W_{c}"]) + sd[p + f"attn.b_{c}"]
                if write_delta is not None and receiver != "action head" and receiver[0] == l and receiver[2] == c.lower():
                    h2 = receiver[1]
                    x_r = ln(x + write_delta, p + "ln1")
                    qkv[c][:, h2] = x_r @ sd[p + f"attn.W_{c}"][h2] + sd[p + f"attn.b_{c}"][h2]
            s = torch.einsum("qhe,khe->hqk", qkv["Q"], qkv["K"]) / math.sqrt(dh)
            s = s.masked_fill(~torch.tril(torch.ones(P, P, dtype=torch.bool)), float("-inf"))
            z = torch.einsum("hqk,khe->qhe", s.softmax(-1), qkv["V"])
            zs[l] = z
            x = x + torch.einsum("qhe,hed->qd", z, sd[p + "attn.W_O"]) + sd[p + "attn.b_O"]
            h2 = ln(x, p + "ln2")
            act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu}[cfg.act_fn]
            if cfg.gated_mlp:
                post = act(h2 @ sd[p + "mlp.W_gate"]) * (h2 @ sd[p + "mlp.W_in"]) + sd[p + "mlp.b_in"]
            else:
                post = act(h2 @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
            x = x + post @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
        return x, zs

    _, z_base = run(base)
    _, z_src = run(source)
    ls, hs = sender
    delta = (z_src[ls][:, hs] - z_base[ls][:, hs]) @ sd[f"transformer.blocks.{ls}.attn.W_O"][hs]
    if receiver == "action head":
        x = run(base)[0] + delta
    else:
        x, _ = run(base, write_delta=delta)
    xf = ln(x, "transformer.ln_final")
    return xf[-1] @ sd["action_predictor.weight"].T + sd["action_predictor.bias"]


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "lnpre-8tok", "ln-3layers-linear-time-5tok"])
def test_edges_equal_an_independent_edge_forward(name):
    a = make_adapter(**CONFIGS[name])
    clean, corr = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4)
    r = path_patching(a, clean, corr, "forward", "left")
    ia, ib = a.action_index("forward"), a.action_index("left")
    H = a.cfg.n_heads
    base = _edge_forward(a, clean, clean, (0, 0), "action head")
    v0 = float(base[ia] - base[ib])
    assert abs(v0 - r.clean_value) < 1e-3 * max(1, abs(v0))
    for s, rec in [((0, 0), (1, H - 1, "q")), ((0, H - 1), (1, 0, "k")), ((0, 1), (1, 1, "v")), ((1, 0), "action head")]:
        lg = _edge_forward(a, clean, corr, s, rec)
        want = float(lg[ia] - lg[ib]) - v0
        si = r.sender_labels.index(f"L{s[0]}H{s[1]}")
        ri = r.receiver_labels.index("action head" if rec == "action head" else f"L{rec[0]}H{rec[1]} {rec[2]}")
        assert abs(r.effects[si, ri] - want) < 2e-4 * max(1, abs(want)), (s, rec, r.effects[si, ri], want)
    assert np.nanmax(np.abs(r.effects)) > 1e-3
    top = r.strongest(3)
    assert len(top) == 3 and abs(top[0][2]) == np.nanmax(np.abs(r.effects))


def _tl_direct_path():
    try:
        from transformer_lens.patching import get_act_patch_direct_path
    except ImportError:
        try:
            from transformer_lens.tools.analysis.direct_path_patching import get_act_patch_direct_path
        except ImportError:
            return None
    return get_act_patch_direct_path


@pytest.mark.parametrize("component", ["q", "k", "v"])
def test_equals_transformer_lens_direct_path_patching(component):
    """TL 3.9 (tools.analysis) linearises through the cached ln1 scale, exact without LayerNorm (scale
    1, given here); TL 4 (patching) is exact but needs a pre-Q/K/V fork its native bridge lacks."""
    get_act_patch_direct_path = _tl_direct_path()
    if get_act_patch_direct_path is None:
        pytest.skip("this TransformerLens has no get_act_patch_direct_path")
    a = make_adapter(**CONFIGS["noLN-gated-gelu-26tok"])
    clean, corr = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4)
    r = path_patching(a, clean, corr, "forward", "left")
    ia, ib = a.action_index("forward"), a.action_index("left")
    bb = a.backbone
    names = lambda n: n.endswith("hook_z")  # noqa: E731
    with torch.no_grad():
        _, c_clean = bb.run_with_cache(a.embed(clean), names_filter=names)
        _, c_corr = bb.run_with_cache(a.embed(corr), names_filter=names)
        P = a.layout.n_tokens
        for c in (c_clean, c_corr):  # no LayerNorm: the scale TL 3.9 divides by is 1
            c.cache_dict["blocks.1.ln1.hook_scale"] = torch.ones(1, P, 1)

        def metric(resid):  # backbone output -> preference at the prediction token
            lg = resid[:, -1] @ a.W_action.T + a.b_action
            return lg[:, ia] - lg[:, ib]

        v_clean = float(metric(bb(a.embed(clean))))
        H = a.cfg.n_heads
        for h in range(H):
            # TL runs its "corrupted" input and adds clean - corrupted: our clean plays its corrupted
            try:
                tl = get_act_patch_direct_path(bb, a.embed(clean), c_corr, c_clean, metric, 0, h, component,
                                               verbose=False)
            except NotImplementedError as e:  # TL 4's native bridge attention has no pre-Q/K/V fork
                assert tl_major() >= 4, e
                pytest.skip(f"TransformerLens {tl_major()}: {str(e)[:120]}")
            for h2 in range(H):
                got = r.effects[r.sender_labels.index(f"L0H{h}"), r.receiver_labels.index(f"L1H{h2} {component}")]
                want = float(tl[1, h2]) - v_clean
                assert abs(got - want) < 2e-4 * max(1, abs(want)), (h, h2, got, want)
