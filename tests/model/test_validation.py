"""Hostile and broken model inputs: every one raises one clear error naming the file or argument,
what was expected and what came, and nothing runs on a wrong value (no silent wrong answers)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig, load_checkpoint, load_model, save_model
from dtwidgets.model.checkpoint import CheckpointError, UnsafeCheckpointError, state_dict_of

SMALL = dict(d_model=16, n_heads=2, d_mlp=32, n_ctx=5, max_timestep=20)


@pytest.fixture(scope="module", params=[False, True], ids=["raw", "one_hot"])
def adapter(request):
    return DTAdapter(DecisionTransformer(DTConfig(**SMALL, one_hot_obs=request.param)))


def valid_obs(n=2) -> np.ndarray:
    o = np.zeros((n, 7, 7, 3), np.float32)
    o[..., 0] = 1  # empty
    return o


# ---- observation codes (raw and one-hot models) ----------------------------------------------
@pytest.mark.parametrize("value, channel, why", [
    (99, 0, r"object code 99(\.0)? \(too large: object codes are 0\.\.10\)"),
    (200, 1, r"colour code 200(\.0)? \(too large: colour codes are 0\.\.5\)"),
    (3, 2, r"state code 3(\.0)? \(too large: state codes are 0\.\.2\)"),
    (-1, 0, r"object code -1(\.0)? \(negative\)"),
    (2.5, 1, r"colour code 2\.5 \(not a whole number\)"),
    (float("nan"), 2, r"state code nan \(not a finite number\)"),
])
def test_invalid_observation_codes_name_value_and_cell(adapter, value, channel, why):
    o = valid_obs()
    o[1, 3, 5, channel] = value
    w = adapter.make_window(o, [0.5, 0.5], [0, 1], [0])
    with pytest.raises(ValueError, match=rf"observations: expected integer MiniGrid codes .*got {why} "
                                         rf"at cell \[x=3, y=5, channel {channel}\] of observation \[0, 1\]"):
        adapter.forward(w)
    with pytest.raises(ValueError, match=r"at cell \[x=3, y=5"):
        adapter.features(o)


def test_valid_codes_of_every_dtype_are_accepted(adapter):
    """Whole-number floats, uint8 and int64 codes give the same logits (no truncation surprises)."""
    rng = np.random.default_rng(0)
    o = np.stack([rng.integers(0, 11, (2, 7, 7)), rng.integers(0, 6, (2, 7, 7)), rng.integers(0, 3, (2, 7, 7))], -1)
    outs = [adapter.forward(adapter.make_window(o.astype(dt), [0.5, 0.5], [0, 1], [0])) for dt in
            (np.uint8, np.int64, np.float32, np.float64)]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=0, rtol=0)


def test_one_hot_input_must_be_zero_or_one():
    a = DTAdapter(DecisionTransformer(DTConfig(**SMALL, one_hot_obs=True)))
    o = np.zeros((1, 7, 7, 20), np.float32)
    o[0, 2, 6, 8] = 0.5
    with pytest.raises(ValueError, match=r"expected one-hot features of 0 or 1, got 0\.5 at cell \[x=2, y=6, channel 8 "
                                         r"\(object=goal\)\]"):
        a.features(o)


# ---- config values -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    (dict(rtg_range=(1.0, -1.0)), r"rtg_range \(low, high\) finite with low < high, got \(1\.0, -1\.0\)"),
    (dict(rtg_range=(float("nan"), 1.0)), r"rtg_range \(low, high\) finite with low < high, got \(nan, 1\.0\)"),
    (dict(rtg_range=(0.0, float("inf"))), r"finite with low < high, got \(0\.0, inf\)"),
    (dict(rtg_range=(0.0,)), r"rtg_range as two numbers \(low, high\), got \(0\.0,\)"),
    (dict(max_timestep=10**12), r"max_timestep in \[0, 1,000,000\], got 1,000,000,000,000"),
    (dict(max_timestep=1e12), r"max_timestep to be an integer, got float 1000000000000\.0"),
    (dict(d_model="128"), r"d_model to be an integer, got str '128'"),
    (dict(n_layers=0), r"n_layers in \[1, 512\], got 0"),
    (dict(gated_mlp="yes"), r"gated_mlp to be true or false, got 'yes'"),
    (dict(obs_shape=(7, 7, 3, 1)), r"obs_shape \(W, H, 3\) .*got \(7, 7, 3, 1\)"),
    (dict(n_actions=3, action_names=("a", "a", "b")), r"distinct action_names, got \('a', 'a', 'b'\)"),
    (dict(d_model=4096, d_mlp=65536, n_layers=200), r"at most 2,000,000,000 parameters, got [\d,]+"),
])
def test_config_values_are_validated_before_allocation(kw, msg):
    with pytest.raises(ValueError, match=r"invalid DTConfig: expected .*" + msg):
        DTConfig(**kw)


def test_huge_max_timestep_in_a_file_raises_without_allocating(tmp_path):
    path = save_model(DecisionTransformer(DTConfig(**SMALL)), tmp_path / "m.safetensors")
    from safetensors.torch import load_file, save_file

    cfg = json.loads(DTConfig(**SMALL).to_json())
    cfg["max_timestep"] = 10**12
    save_file(load_file(str(path)), str(path), metadata={"dtwidgets_format": "1", "config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match=r"m\.safetensors \(config metadata\): invalid DTConfig: expected "
                                              r"max_timestep in \[0, 1,000,000\], got 1,000,000,000,000"):
        load_model(path)


# ---- files ---------------------------------------------------------------------------------------
def reference_file(path, model_config=None, sd=None, **extra):
    """A tiny reference-format checkpoint (the layout of the reference work's torch.save files)."""
    m = DecisionTransformer(DTConfig(**SMALL))
    mcfg = {"d_model": 16, "n_heads": 2, "d_mlp": 32, "n_layers": 1, "n_ctx": 5} if model_config is None else model_config
    ckpt = {"model_state_dict": state_dict_of(m) if sd is None else sd,
            "model_config": mcfg if isinstance(mcfg, str) else json.dumps(mcfg),
            "environment_config": json.dumps({"env_id": "MiniGrid-Dynamic-Obstacles-8x8-v0"}), **extra}
    torch.save(ckpt, path)
    return path


def test_reference_file_loads(tmp_path):
    a = load_checkpoint(reference_file(tmp_path / "ok.pt"))
    assert a.cfg.d_model == 16 and a.layout.n_timesteps == 2


def test_zero_byte_checkpoint(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"expected a torch checkpoint file \(\.pt\), got an empty file 'empty\.pt' \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"got an empty file 'empty\.safetensors' \(0 bytes\)"):
        load_model(tmp_path / "empty.safetensors")


def test_truncated_checkpoint_names_the_file(tmp_path):
    data = reference_file(tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"could not read cut\.pt \(\d+ bytes\): expected a complete torch checkpoint "
                                              r".*got a truncated or corrupted file"):
        load_checkpoint(tmp_path / "cut.pt")


def test_garbage_checkpoint_is_not_called_pickled_code(tmp_path):
    """Random bytes are "not a torch checkpoint", not "pickled objects other than tensors" (the old message)."""
    import pickle

    (tmp_path / "noise.pt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match=r"could not read noise\.pt \(2048 bytes\): expected a torch checkpoint "
                                              r"\(a zip archive written by torch\.save\), got a file that is not one") as e:
        load_checkpoint(tmp_path / "noise.pt")
    assert not isinstance(e.value, UnsafeCheckpointError)
    # a legacy (non-zip) pickle that references code is still refused as unsafe
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"model_config": Evil()}))
    with pytest.raises(UnsafeCheckpointError, match=r"legacy\.pt.*system"):
        load_checkpoint(tmp_path / "legacy.pt")


def test_directory_passed_as_a_checkpoint(tmp_path):
    (tmp_path / "model_dir").mkdir()
    with pytest.raises(CheckpointError, match=r"expected a torch checkpoint file \(\.pt\), got a directory '.*model_dir'"):
        load_checkpoint(tmp_path / "model_dir")
    with pytest.raises(CheckpointError, match=r"expected a \.safetensors model file, got a directory"):
        load_model(tmp_path / "model_dir")


def test_config_missing_a_field(tmp_path):
    path = reference_file(tmp_path / "nod.pt", model_config={"n_heads": 2, "d_mlp": 32, "n_layers": 1, "n_ctx": 5})
    with pytest.raises(CheckpointError, match=r"nod\.pt: model_config is missing fields \['d_model'\]; expected all of "
                                              r"\['d_model', .*\], got \['d_mlp', 'n_ctx', 'n_heads', 'n_layers'\]"):
        load_checkpoint(path)
    with pytest.raises(KeyError):  # still a KeyError for callers that catch one
        load_checkpoint(path)


def test_config_not_json(tmp_path):
    path = reference_file(tmp_path / "nojson.pt", model_config="{d_model: 16,")
    with pytest.raises(CheckpointError, match=r"nojson\.pt: expected model_config to be a JSON object, got text that is "
                                              r"not JSON \(.*\): '\{d_model: 16,'"):
        load_checkpoint(path)


def test_safetensors_config_missing_a_field_or_not_json(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_model(DecisionTransformer(DTConfig(**SMALL, layer_norm="LN")), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    cfg = json.loads(DTConfig(**SMALL, layer_norm="LN").to_json())
    del cfg["layer_norm"]  # would silently load as a model without LayerNorm
    save_file(tensors, str(path), metadata={"dtwidgets_format": "1", "config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match=r"m\.safetensors \(config metadata\): the DTConfig is missing fields "
                                              r"\['layer_norm'\]"):
        load_model(path)
    save_file(tensors, str(path), metadata={"dtwidgets_format": "1", "config": "not json"})
    with pytest.raises(CheckpointError, match=r"m\.safetensors \(config metadata\): expected a DTConfig as a JSON object, "
                                              r"got text that is not JSON"):
        load_model(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    sd = state_dict_of(DecisionTransformer(DTConfig(**SMALL)))
    sd["transformer.blocks.0.attn.W_Q"][0, 0, 0] = bad
    path = reference_file(tmp_path / "nan.pt", sd=sd)
    n_nan, n_inf = (1, 0) if bad != bad else (0, 1)
    with pytest.raises(CheckpointError, match=rf"nan\.pt: tensor transformer\.blocks\.0\.attn\.W_Q \(2, 16, 8\): expected "
                                              rf"finite weights, got {n_nan} NaN and {n_inf} Inf values"):
        load_checkpoint(path)
    out = save_model(DecisionTransformer(DTConfig(**SMALL)), tmp_path / "nan.safetensors")
    from safetensors.torch import load_file, save_file

    t = load_file(str(out))
    t["action_predictor.bias"][1] = bad
    save_file(t, str(out), metadata={"dtwidgets_format": "1", "config": DTConfig(**SMALL).to_json()})
    with pytest.raises(CheckpointError, match=r"nan\.safetensors: tensor action_predictor\.bias \(3,\): expected finite"):
        load_model(out)


def test_inverted_rtg_range_in_a_file_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_model(DecisionTransformer(DTConfig(**SMALL)), tmp_path / "r.safetensors")
    cfg = json.loads(DTConfig(**SMALL).to_json())
    cfg["rtg_range"] = [1, -1]
    save_file(load_file(str(path)), str(path), metadata={"dtwidgets_format": "1", "config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match=r"r\.safetensors .*rtg_range \(low, high\) finite with low < high, got \(1, -1\)"):
        load_model(path)


def test_unsafe_checkpoint_message_is_complete(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    path = reference_file(tmp_path / "evil.pt", payload=Evil())
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert msg.startswith("refused to load evil.pt: expected plain tensors")
    assert "system" in msg and msg.endswith(".") and "do those steps" not in msg and "\x1b" not in msg


# ---- one load(path) ------------------------------------------------------------------------------
def test_load_returns_an_adapter_for_every_format(tmp_path):
    import dtwidgets
    from dtwidgets.adapters import ModelAdapter

    pt = reference_file(tmp_path / "ref.bin")  # the kind is read from the bytes, not the name
    st = save_model(DecisionTransformer(DTConfig(**SMALL, layer_norm="LN")), tmp_path / "own.weights")
    w = None
    for path, direct in ((pt, load_checkpoint(pt)), (st, DTAdapter(load_model(st)))):
        a = dtwidgets.load(path)
        assert isinstance(a, DTAdapter) and isinstance(a, ModelAdapter)
        w = a.make_window(valid_obs(), [0.5, 0.5], [0, 1], [0])
        torch.testing.assert_close(a.forward(w), direct.forward(w), atol=0, rtol=0)
    assert dtwidgets.load(st).cfg.layer_norm == "LN"


def test_load_refuses_anything_else(tmp_path):
    import dtwidgets

    (tmp_path / "notes.txt").write_text("hello, not a model")
    with pytest.raises(CheckpointError, match=r"expected a model file: a torch checkpoint \(\.pt, a zip archive\), a "
                                              r"dtwidgets \.safetensors file or a HuggingFace model directory, got "
                                              r"'notes\.txt' \(18 bytes starting b'hello, n'\)"):
        dtwidgets.load(tmp_path / "notes.txt")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "weights.npz").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"HuggingFace model directory with a config\.json, got the directory "
                                              r"'.*d' holding \['weights\.npz'\]"):
        dtwidgets.load(tmp_path / "d")
    (tmp_path / "d" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match=r"config\.json: expected model_type 'decision_transformer' .*got 'gpt2'"):
        dtwidgets.load(tmp_path / "d")
    with pytest.raises(FileNotFoundError, match=r"no such file"):
        dtwidgets.load(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match=r"options \['env_id'\] apply to HuggingFace model directories only"):
        dtwidgets.load(reference_file(tmp_path / "r.pt"), env_id="MiniGrid-Empty-5x5-v0")


def test_load_dispatches_a_huggingface_directory(tmp_path):
    import importlib.util

    import dtwidgets

    transformers = pytest.importorskip("transformers")
    cfg = transformers.DecisionTransformerConfig(state_dim=147, act_dim=3, hidden_size=16, n_layer=1, n_head=2,
                                                 max_ep_len=64)
    transformers.DecisionTransformerModel(cfg).save_pretrained(tmp_path / "hf")
    opts = dict(env_id="MiniGrid-Dynamic-Obstacles-8x8-v0", n_timesteps=2)
    if importlib.util.find_spec("dtwidgets.model.hf") is None:
        with pytest.raises(CheckpointError, match=r"holds a HuggingFace DecisionTransformerModel, which needs "
                                                  r"dtwidgets\.model\.hf"):
            dtwidgets.load(tmp_path / "hf", **opts)
        return
    from dtwidgets.adapters import ModelAdapter
    from dtwidgets.model.hf import load_hf_decision_transformer

    a, direct = dtwidgets.load(tmp_path / "hf", **opts), load_hf_decision_transformer(tmp_path / "hf", **opts)
    assert isinstance(a, ModelAdapter)
    w = a.make_window(valid_obs(), [0.5, 0.5], [0, 1], [0])
    torch.testing.assert_close(a.forward(w), direct.forward(w), atol=0, rtol=0)
