"""Saved-directory round trips and clear errors for bad input."""
from __future__ import annotations

import json

import pytest
import torch

from dtwidgets.adapters import ModelAdapter, check_compatible
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.model.hf import BINDING_FILE, load_hf_decision_transformer, save_hf_decision_transformer
from tests.hf.helpers import ENV, hf_model, hf_scores, real_windows


@pytest.fixture(scope="module")
def model():
    return hf_model(seed=7, randomise=True, action_tanh=False)


@pytest.fixture(scope="module")
def windows(model):
    return real_windows(load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4), 24, seed=6)


def test_saved_directory_round_trip_with_binding(tmp_path, model, windows):
    mean, std = torch.rand(147), torch.rand(147) + 0.5
    d = save_hf_decision_transformer(model, tmp_path / "dt", env_id=ENV, n_timesteps=4, state_mean=mean, state_std=std,
                                     rtg_range=(-1, 1))
    assert (d / "model.safetensors").is_file() and (d / BINDING_FILE).is_file()
    adapter = load_hf_decision_transformer(d)  # everything from the directory
    assert adapter.layout.n_timesteps == 4 and adapter.env_id == ENV
    assert isinstance(adapter, ModelAdapter)
    check_compatible(adapter, MiniGridEnv(ENV))
    torch.testing.assert_close(adapter.forward(windows), hf_scores(model, windows, mean=mean, std=std)[0], atol=1e-5, rtol=0)
    # arguments override the saved binding
    other = load_hf_decision_transformer(d, n_timesteps=2, state_mean=torch.zeros(147), state_std=torch.ones(147))
    assert other.layout.n_timesteps == 2


def test_pytorch_model_bin_is_read_with_weights_only(tmp_path, model, windows):
    d = tmp_path / "bin"
    model.config.save_pretrained(d)
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    adapter = load_hf_decision_transformer(d, env_id=ENV, n_timesteps=4)
    torch.testing.assert_close(adapter.forward(windows), hf_scores(model, windows)[0], atol=1e-5, rtol=0)


def test_missing_files(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hf_decision_transformer(tmp_path / "nope", env_id=ENV, n_timesteps=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_decision_transformer(tmp_path / "empty", env_id=ENV, n_timesteps=4)
    model.config.save_pretrained(tmp_path / "noweights")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf_decision_transformer(tmp_path / "noweights", env_id=ENV, n_timesteps=4)


def test_bad_config_and_weights(tmp_path, model):
    d = tmp_path / "gpt2"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type 'decision_transformer', got 'gpt2'"):
        load_hf_decision_transformer(d, env_id=ENV, n_timesteps=4)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="could not parse"):
        load_hf_decision_transformer(d, env_id=ENV, n_timesteps=4)
    small = hf_model(seed=0, hidden_size=16, n_head=2)
    d2 = tmp_path / "mismatch"
    save_hf_decision_transformer(model, d2, env_id=ENV, n_timesteps=4)
    small.config.save_pretrained(d2)  # config of a smaller model next to these weights
    with pytest.raises(ValueError, match=r"wrong shapes \['embed_action.bias \(32,\) \(expected \(16,\)\)"):
        load_hf_decision_transformer(d2)


def test_state_and_action_dims_must_fit_the_env(model):
    with pytest.raises(ValueError, match=r"state_dim=100 does not fit .*expected 147 .* or 980"):
        load_hf_decision_transformer(hf_model(state_dim=100), env_id=ENV, n_timesteps=4)
    with pytest.raises(ValueError, match=r"act_dim=7 does not match .*3 actions"):
        load_hf_decision_transformer(hf_model(act_dim=7), env_id=ENV, n_timesteps=4)
    with pytest.raises(ValueError, match="unknown MiniGrid environment id"):
        load_hf_decision_transformer(model, env_id="CartPole-v1", n_timesteps=4)


def test_binding_arguments_are_validated(model):
    with pytest.raises(ValueError, match="expected n_timesteps"):
        load_hf_decision_transformer(model, env_id=ENV)
    with pytest.raises(ValueError, match=r"n_timesteps to be an int in \[1, 4096\]"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=0)
    with pytest.raises(ValueError, match="state_mean with 147 finite values"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, state_mean=[0.0] * 10)
    with pytest.raises(ValueError, match="state_std > 0"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, state_std=torch.zeros(147))
    with pytest.raises(ValueError, match="state_layout"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, state_layout="yxc")
    with pytest.raises(ValueError, match="3 action_names"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, action_names=["a", "b"])
    with pytest.raises(TypeError, match="DecisionTransformerModel"):
        load_hf_decision_transformer(torch.nn.Linear(2, 2), env_id=ENV, n_timesteps=4)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        load_hf_decision_transformer(hf_model(scale_attn_by_inverse_layer_idx=True), env_id=ENV, n_timesteps=4)


def test_bad_windows_are_refused(model):
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, rtg_range=(0, 1))
    w = real_windows(adapter, 2, seed=1)
    with pytest.raises(ValueError, match=r"RTG values in \[0.0, 1.0\]"):
        adapter.forward(w.with_rtg(-0.5))
    with pytest.raises(ValueError, match="expected observations"):
        adapter.features(torch.zeros(5, 5, 3))
    with pytest.raises(ValueError, match="timesteps in"):
        adapter.embed_time([500])


def test_float64_model_is_copied_to_float32(windows):
    model = hf_model(seed=8, randomise=True).double()
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4)
    assert adapter.W_action.dtype == torch.float32 and adapter.W_state.dtype == torch.float32
    seen = {}
    handle = model.predict_action[0].register_forward_hook(lambda m, i, o: seen.__setitem__("z", o))
    from tests.hf.helpers import hf_inputs

    kw = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in hf_inputs(windows).items()}
    with torch.no_grad():
        model(**kw)
    handle.remove()
    torch.testing.assert_close(adapter.forward(windows).double(), seen["z"][:, -1], atol=1e-5, rtol=0)


def test_device_argument(model, windows):
    on_cpu = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, device="cpu")
    assert on_cpu.device == torch.device("cpu") and on_cpu.embedding.time.device == torch.device("cpu")
    torch.testing.assert_close(on_cpu.forward(windows), hf_scores(model, windows)[0], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"^device: expected"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^device: .*CUDA is not available"):
            load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4, device="cuda")
