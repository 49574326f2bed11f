"""What the per-state fast paths keep between calls is never stale: the weight fingerprint sees every
parameter and buffer and a replaced parameter; the kept default RTG grid is handed out as a copy; the kept
hook names are TransformerLens' own."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.analysis import _common as C
from dtwidgets.analysis.rtg_scan import default_rtgs
from tests.analysis.helpers import CONFIGS, make_adapter


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_weight_fingerprint_covers_every_parameter_and_buffer(config):
    bb = make_adapter(**CONFIGS[config]).backbone
    walked = {id(t) for t in C._tensors(bb) if t is not None}
    assert {id(t) for t in (*bb.parameters(), *bb.buffers())} <= walked


def _owner_of(root: torch.nn.Module, param: torch.Tensor):
    for m in (root, *root.modules(), *getattr(root, "original_model", root).modules()):
        for name, p in m._parameters.items():
            if p is param:
                return m, name
    raise AssertionError("parameter not found")


def test_a_parameter_replaced_in_a_submodule_is_seen_by_the_next_call():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    with C.reuse_weights():
        kept = C.weight(adapter, "W_O")
    o = next(p for n, p in adapter.backbone.named_parameters()  # layer 0's W_O: TL 3 name, TL 4 bridge name
             if n == "blocks.0.attn.W_O" or (n.startswith("layers.0.") and ".o._original_component.weight" in n))
    module, name = _owner_of(adapter.backbone, o)
    setattr(module, name, torch.nn.Parameter(o.detach() * -2.0))  # a new Parameter object, same shape
    with C.reuse_weights():
        after = C.weight(adapter, "W_O")
    torch.testing.assert_close(after, getattr(adapter.backbone, "W_O").detach(), rtol=0, atol=0)
    assert not torch.equal(after, kept)


def test_the_default_rtg_grid_is_the_callers_own_copy():
    adapter = make_adapter(**CONFIGS["raw-2tok-noLN"])
    lo, hi = adapter.rtg_range
    want = np.linspace(max(-1.0, lo), min(1.0, hi), 101, dtype=np.float32)
    first = default_rtgs(adapter)
    np.testing.assert_array_equal(first, want)
    first[:] = 7.0  # a caller editing its grid does not change the next caller's
    np.testing.assert_array_equal(default_rtgs(adapter), want)
    np.testing.assert_array_equal(default_rtgs(adapter, 5), np.linspace(max(-1.0, lo), min(1.0, hi), 5, dtype=np.float32))


def test_the_kept_hook_names_are_transformer_lens_own():
    from transformer_lens.utilities import get_act_name

    from dtwidgets.adapters import hooks as hk

    for l in (0, 1, 11):
        for _ in range(2):  # the second call is answered from the cache
            assert hk.hook_z(l) == get_act_name("z", l) and hk.resid_mid(l) == get_act_name("resid_mid", l)
            assert hk.ln_scale(l, "ln2") == get_act_name("scale", l, "ln2") and hk.mlp_post(l) == get_act_name("post", l)
    assert hk.ln_scale() == get_act_name("scale")
