"""Backbone weights kept across analysis calls are never stale: an in-place edit, a replaced parameter
or a dtype change of the backbone is seen by the next call, which then equals plain torch on the edited
weights."""
from __future__ import annotations

import torch

from dtwidgets.analysis import _common as C
from dtwidgets.analysis import logit_attribution
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


def _fresh(adapter, name):
    return getattr(adapter.backbone, name).detach()


def test_kept_weights_follow_in_place_edits_and_replaced_parameters():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    w = random_window(adapter, seed=3)
    before = logit_attribution(adapter, w, "forward", "right", per_source=False)
    with C.reuse_weights():
        kept = C.weight(adapter, "W_O")
    torch.testing.assert_close(kept, _fresh(adapter, "W_O"), rtol=0, atol=0)
    o = next(p for n, p in adapter.backbone.named_parameters()  # layer 0's W_O: TL 3 name, TL 4 bridge name
             if n == "blocks.0.attn.W_O" or (n.startswith("layers.0.") and ".o._original_component.weight" in n))
    with torch.no_grad():
        o.mul_(-2.0)  # in place: the parameter's version counter moves
    with C.reuse_weights():
        after_edit = C.weight(adapter, "W_O")
    torch.testing.assert_close(after_edit, _fresh(adapter, "W_O"), rtol=0, atol=0)
    assert not torch.equal(after_edit, kept)
    edited = logit_attribution(adapter, w, "forward", "right", per_source=False)
    assert abs(edited.logit_diff - before.logit_diff) > 1e-3, "the edit moves the model's own logits"
    # the decomposition (read with the kept W_O) still sums to the forward's logit difference (new W_O)
    assert abs(edited.total - edited.logit_diff) < 1e-4 * max(1.0, abs(edited.logit_diff))
    adapter.backbone.double()  # every parameter replaced by a float64 copy
    assert C.weight(adapter, "W_O").dtype == torch.float64


def test_a_weight_kept_in_inference_mode_is_not_handed_to_autograd():
    """Analyses run under ``torch.inference_mode``; edge attribution patching runs a backward: the weight it
    reads must be a normal tensor (an inference tensor cannot be saved for backward)."""
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    with torch.inference_mode(), C.reuse_weights():
        assert C.weight(adapter, "W_O").is_inference()
    with C.reuse_weights():
        w = C.weight(adapter, "W_O")
    assert not w.is_inference()
    x = torch.ones(w.shape[-1], requires_grad=True)
    (w @ x).sum().backward()  # raised "Inference tensors cannot be saved for backward" with one shared cache
    assert x.grad is not None
