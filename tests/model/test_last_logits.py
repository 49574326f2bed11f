"""``DecisionTransformer.last_logits`` (what ``DTAdapter.forward`` runs): the last block's MLP and
``ln_final`` on the prediction position only. It must equal an independent plain-torch forward, keep
gradients, and run the whole sequence whenever a caller's hook is attached."""
from __future__ import annotations

from unittest import mock

import pytest
import torch

from dtwidgets.model import dt as dt_module
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


def _batch(adapter, n=6):
    from dtwidgets.adapters.window import TrajectoryWindow

    wins = [random_window(adapter, seed=s, n_steps=1 + s % adapter.layout.n_timesteps) for s in range(n)]
    return TrajectoryWindow.cat(wins)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_equals_an_independent_forward_and_takes_the_trim(name):
    adapter = make_adapter(**CONFIGS[name])
    win = _batch(adapter)
    with mock.patch.object(dt_module, "keep_last_position", wraps=dt_module.keep_last_position) as trim:
        got = adapter.forward(win)
    assert trim.call_count == 1, "the trimmed path was not taken"
    want = independent_logits(adapter, win)
    torch.testing.assert_close(got.double(), want.double(), atol=2e-4, rtol=1e-4)
    with torch.inference_mode():
        full = adapter.model(win)[:, -1]
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_gradients_equal_the_full_forward():
    adapter = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    model, win = adapter.model, _batch(adapter)
    grads = []
    for run in (lambda: model.last_logits(win), lambda: model(win)[:, -1]):
        model.zero_grad()
        (run() * torch.arange(1, adapter.n_actions + 1)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-5, rtol=1e-4, msg=n)


@pytest.mark.parametrize("where", ["hook_point", "torch_module_hook", "torch_module_pre_hook"])
def test_a_callers_hook_sees_every_position(where):
    """A hook after the trim point that writes position 0 of the last MLP's output: the run must be the
    full one (the hook sees all P positions) and equal the plain forward with the same hook."""
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    model, win = adapter.model, _batch(adapter)
    L, P = adapter.cfg.n_layers, adapter.layout.n_tokens
    seen = []

    def hook(t, hook=None):
        seen.append(t.shape[1])
        t = t.clone()
        t[:, -1] += torch.linspace(-3.0, 3.0, t.shape[-1])  # changes the logits (not a constant: LNPre centres)
        t[:, 0] -= 1.0
        return t

    bb = model.transformer
    if where == "hook_point":
        bb.hook_dict[f"blocks.{L - 1}.hook_mlp_out"].add_hook(hook)
        remove = lambda: bb.hook_dict[f"blocks.{L - 1}.hook_mlp_out"].remove_hooks("fwd")  # noqa: E731
    elif where == "torch_module_pre_hook":  # on the last MLP's input, a module that is not a HookPoint
        handle = bb.blocks[L - 1].mlp.register_forward_pre_hook(lambda mod, args: (hook(args[0]), *args[1:]))
        remove = handle.remove
    else:
        def block_hook(mod, args, out):  # a TL 4 bridge block returns a tuple, a TL 3 block a tensor
            return (hook(out[0]),) + tuple(out[1:]) if isinstance(out, tuple) else hook(out)

        handle = bb.blocks[L - 1].register_forward_hook(block_hook)
        remove = handle.remove
    try:
        got = adapter.forward(win)
        with torch.inference_mode():
            want = model(win)[:, -1]
    finally:
        remove()
    assert seen == [P, P]
    torch.testing.assert_close(got, want)
    with mock.patch.object(dt_module, "keep_last_position", wraps=dt_module.keep_last_position) as trim:
        plain = adapter.forward(win)
    assert trim.call_count == 1, "after the caller's hook is removed the trim is taken again"
    assert (plain - got).abs().max() > 0.05  # the hook matters (far above the 1e-5 tolerance)


def test_analyses_leave_the_trim_available():
    """run_with_cache / run_with_hooks attach and remove their hooks: the trim stays on afterwards."""
    adapter = make_adapter(**CONFIGS["noLN-gated-gelu-26tok"])
    win = _batch(adapter, 2)
    adapter.run_with_cache(win)
    adapter.run_with_hooks(win, [("blocks.0.hook_resid_post", lambda t, hook: t)])
    with mock.patch.object(dt_module, "keep_last_position", wraps=dt_module.keep_last_position) as trim:
        adapter.forward(win)
    assert trim.call_count == 1
