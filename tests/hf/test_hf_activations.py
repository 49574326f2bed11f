"""Every ``activation_function`` transformers accepts either equals HF's own forward (on this TL major) or is
refused at load with a clear error; the docs list exactly the supported ones."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from dtwidgets.model import CheckpointError
from dtwidgets.model.hf import load_hf_decision_transformer, save_hf_decision_transformer
from tests.hf.helpers import ENV, hf_model, hf_scores, real_windows

DOC = Path(__file__).resolve().parents[2] / "docs" / "huggingface.md"
# what the docs promise, by hand (not read from the code under test)
SUPPORTED = {"relu", "gelu", "gelu_python", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python_tanh",
             "gelu_accurate", "silu", "swish"}


def _hf_activations() -> list[str]:
    from transformers.activations import ACT2CLS

    return sorted(ACT2CLS)


@pytest.mark.parametrize("act", _hf_activations())
def test_every_hf_activation_equals_hf_or_is_refused(act, tmp_path):
    model = hf_model(seed=21, randomise=True, n_layer=2, activation_function=act, action_tanh=False)
    if act in SUPPORTED:
        with torch.no_grad():  # MLP pre-activations well away from 0 on both sides: the functions differ there
            for blk in model.encoder.h:
                blk.mlp.c_fc.weight.mul_(8.0)
        adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=3)
        w = real_windows(adapter, 24, seed=5)
        torch.testing.assert_close(adapter.forward(w), hf_scores(model, w)[0], atol=1e-5, rtol=0)
        return
    with pytest.raises(CheckpointError, match=rf"field activation_function: expected one of .*got {act!r}"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=3)
    save_hf_decision_transformer(model, tmp_path / "d", env_id=ENV, n_timesteps=3)
    with pytest.raises(CheckpointError, match=rf"config\.json: field activation_function: .*got {act!r}"):
        load_hf_decision_transformer(tmp_path / "d")


def test_activations_differ_so_the_check_can_fail():
    """The forward test above would catch a wrong mapping: e.g. gelu (erf) vs gelu_new (tanh) differ there."""
    a = hf_model(seed=21, randomise=True, activation_function="gelu", action_tanh=False)
    b = hf_model(seed=21, randomise=True, activation_function="gelu_new", action_tanh=False)
    with torch.no_grad():
        for m in (a, b):
            for blk in m.encoder.h:
                blk.mlp.c_fc.weight.mul_(8.0)
    adapter = load_hf_decision_transformer(a, env_id=ENV, n_timesteps=3)
    w = real_windows(adapter, 24, seed=5)
    assert (hf_scores(a, w)[0] - hf_scores(b, w)[0]).abs().max() > 1e-4


def test_docs_list_exactly_the_supported_activations():
    text = DOC.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("| `activation_function`"))
    supported_part, refused_part = line.split("|")[2].split("Every other")
    listed = set(re.findall(r"`([a-z_0-9]+)`", supported_part)) - {"act_fn"}
    assert listed == SUPPORTED
    refused = set(re.findall(r"`([a-z_0-9]+)`", refused_part)) - {"CheckpointError", "activation_function"}
    assert refused and not refused & SUPPORTED and refused <= set(_hf_activations())
