"""Hostile HuggingFace model directories: each is refused with one clear error naming the file and field,
checked before anything is allocated (no ``DecisionTransformerModel`` is built for a bad config)."""
from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import dtwidgets
from dtwidgets.model import CheckpointError, UnsafeCheckpointError
from dtwidgets.model.hf import load_hf_decision_transformer, save_hf_decision_transformer
from tests.hf.helpers import ENV, hf_model, hf_scores, real_windows

ST, INDEX, BIN = "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid saved directory (config.json + model.safetensors + binding) to break copies of."""
    d = tmp_path_factory.mktemp("good") / "dt"
    save_hf_decision_transformer(hf_model(seed=11, randomise=True), d, env_id=ENV, n_timesteps=3)
    return d


def _copy(good, tmp_path, name="dt"):
    d = tmp_path / name
    shutil.copytree(good, d)
    return d


def _edit_config(d, **fields):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(fields)
    (d / "config.json").write_text(json.dumps(cfg))


def _edit_tensors(d, fn, name=ST):
    sd = load_file(str(d / name))
    fn(sd)
    save_file(sd, str(d / name), metadata={"format": "pt"})


@pytest.fixture
def no_model_built(monkeypatch):
    """Fail the test if a DecisionTransformerModel is constructed at all (even on the meta device)."""
    import transformers

    def refuse(self, *a, **k):
        raise AssertionError("a DecisionTransformerModel was built before the config was validated")

    monkeypatch.setattr(transformers.DecisionTransformerModel, "__init__", refuse)


# ---- NaN / Inf weights --------------------------------------------------------------------------------
@pytest.mark.parametrize("key,value", [("predict_action.0.weight", float("nan")),
                                       ("encoder.h.1.attn.c_attn.weight", float("inf")),
                                       ("embed_timestep.weight", -float("inf"))])
def test_non_finite_weights_in_a_directory_are_refused(good, tmp_path, key, value):
    d = _copy(good, tmp_path)
    _edit_tensors(d, lambda sd: sd[key].view(-1).__setitem__(3, value))
    with pytest.raises(CheckpointError, match=rf"{ST}: tensor {key} .*expected finite weights, got [01] NaN and [01] Inf"):
        dtwidgets.load(d)


def test_non_finite_weights_in_a_model_object_and_a_bin_are_refused(tmp_path):
    model = hf_model(seed=3)
    with torch.no_grad():
        model.embed_state.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"tensor embed_state.weight .*got 1 NaN and 0 Inf"):
        load_hf_decision_transformer(model, env_id=ENV, n_timesteps=2)
    d = tmp_path / "bin"
    model.config.save_pretrained(d)
    torch.save(model.state_dict(), d / BIN)
    with pytest.raises(CheckpointError, match=rf"{BIN}: tensor embed_state.weight .*got 1 NaN"):
        load_hf_decision_transformer(d, env_id=ENV, n_timesteps=2)


# ---- config.json: types, ranges, sizes before allocation --------------------------------------------
BAD_CONFIGS = {
    "n_positions 1e10": (dict(n_positions=10**10), "n_positions", r"in \[1, "),
    "max_position_embeddings alias": (dict(max_position_embeddings=10**10), "n_positions", r"in \[1, "),
    "max_ep_len 1e10": (dict(max_ep_len=10**10), "max_ep_len", r"in \[1, 1,000,001\]"),
    "hidden_size 1e6": (dict(hidden_size=10**6), "hidden_size", r"in \[1, 16,384\]"),
    "n_layer 1e6": (dict(n_layer=10**6), "n_layer", r"in \[1, 512\]"),
    "num_hidden_layers alias": (dict(num_hidden_layers=10**6), "n_layer", r"in \[1, 512\]"),
    "n_head 0": (dict(n_head=0), "n_head", r"in \[1, 512\]"),
    "n_head -4": (dict(n_head=-4), "n_head", r"in \[1, 512\]"),
    "hidden_size -32": (dict(hidden_size=-32), "hidden_size", r"in \[1, 16,384\]"),
    "n_inner 1e9": (dict(n_inner=10**9), "n_inner", r"None or an integer in \[1, 65,536\]"),
    "vocab_size 1e9": (dict(vocab_size=10**9), "vocab_size", r"in \[0, "),
    "state_dim 1e9": (dict(state_dim=10**9), "state_dim", r"in \[1, "),
    "act_dim 0": (dict(act_dim=0), "act_dim", r"in \[1, "),
    "n_layer float": (dict(n_layer=2.0), "n_layer", r"an integer.*got float 2.0"),
    "n_layer string": (dict(n_layer="2"), "n_layer", r"an integer.*got str '2'"),
    "n_layer bool": (dict(n_layer=True), "n_layer", r"an integer.*got bool True"),
    "n_head null": (dict(n_head=None), "n_head", r"an integer.*got NoneType None"),
    "action_tanh string": (dict(action_tanh="yes"), "action_tanh", r"true or false.*got str 'yes'"),
    "add_cross_attention int": (dict(add_cross_attention=0), "add_cross_attention", r"true or false.*got int 0"),
    "epsilon string": (dict(layer_norm_epsilon="x"), "layer_norm_epsilon", r"a number.*got str 'x'"),
    "epsilon nan": (dict(layer_norm_epsilon=float("nan")), "layer_norm_epsilon", r"1e-05.*got nan"),
    "activation int": (dict(activation_function=7), "activation_function", r"one of .*got int 7"),
    "activation unknown": (dict(activation_function="bogus"), "activation_function", r"one of .*got 'bogus'"),
    "hidden_size % n_head": (dict(hidden_size=30, n_head=4), "hidden_size", r"an integer divisible by n_head \(4\), got 30"),
    "scale_attn_weights off": (dict(scale_attn_weights=False), "scale_attn_weights", r"true"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_refused_before_any_model_is_built(good, tmp_path, no_model_built, case):
    fields, field, expected = BAD_CONFIGS[case]
    d = _copy(good, tmp_path)
    _edit_config(d, **fields)
    with pytest.raises(CheckpointError, match=rf"config\.json: field {field}( \(as \w+\))?: expected (an integer )?{expected}") as e:
        dtwidgets.load(d)
    assert str(d / "config.json") in str(e.value)


def test_parameter_budget_from_the_config(good, tmp_path):
    """Every size in range, but in all more than MAX_PARAMETERS; and a config larger than its weight file."""
    d = _copy(good, tmp_path)
    _edit_config(d, hidden_size=4096, n_head=8, n_layer=512)
    with pytest.raises(CheckpointError, match=r"config\.json: expected at most 2,000,000,000 parameters, got "
                                              r"10[0-9,]+ \(hidden_size 4096, n_layer 512"):
        dtwidgets.load(d)
    d = _copy(good, tmp_path, "big")
    _edit_config(d, hidden_size=512, n_head=8, n_layer=8)  # ~25M parameters; the file holds ~0.1M
    with pytest.raises(CheckpointError, match=rf"config\.json declares [0-9,]+ parameters, .*at least [0-9,]+ bytes.*"
                                              rf"{ST} hold[s]? only [0-9,]+ bytes"):
        dtwidgets.load(d)


# ---- model.safetensors ----------------------------------------------------------------------------------
def _header_file(path, header: dict, data: bytes = b"") -> None:
    h = json.dumps(header).encode()
    path.write_bytes(len(h).to_bytes(8, "little") + h + data)


PAD = b"\0" * 400_000  # more than the 2 bytes per parameter the config needs: the parser, not the size check, refuses
BAD_WEIGHT_FILES = {
    "garbage": (lambda p: p.write_bytes(b"hello world, not a tensor file " * 20_000), "could not read it"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size * 3 // 4]), "could not read it"),
    "empty": (lambda p: p.write_bytes(b""), r"holds only 0 bytes"),
    "header only": (lambda p: p.write_bytes(p.read_bytes()[: 8 + int.from_bytes(p.read_bytes()[:8], "little")]),
                    r"holds only [0-9,]+ bytes"),
    "huge shape in header": (lambda p: _header_file(p, {"embed_state.weight": {
        "dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4 * 10**10]}}, PAD), "could not read it"),
    "huge header length": (lambda p: p.write_bytes((10**15).to_bytes(8, "little") + b"{" + PAD), "could not read it"),
    "json array header": (lambda p: _header_file(p, [1, 2, 3], PAD), "could not read it"),  # type: ignore[arg-type]
    "offsets overlap": (lambda p: _header_file(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, PAD),
                        "could not read it"),
}


@pytest.mark.parametrize("case", sorted(BAD_WEIGHT_FILES))
def test_unreadable_safetensors_is_one_checkpoint_error(good, tmp_path, case):
    make, msg = BAD_WEIGHT_FILES[case]
    d = _copy(good, tmp_path)
    make(d / ST)
    with pytest.raises(CheckpointError, match=rf"{ST}.*{msg}|{msg}.*{ST}") as e:
        dtwidgets.load(d)
    assert str(d) in str(e.value)


TENSOR_EDITS = {
    "int dtype": (lambda sd: sd.__setitem__("predict_action.0.weight", sd["predict_action.0.weight"].to(torch.int32)),
                  r"tensor predict_action.0.weight: expected a float dtype \(F16, BF16, F32, F64\), got I32"),
    "bool dtype": (lambda sd: sd.__setitem__("embed_ln.weight", sd["embed_ln.weight"] > 0),
                   r"tensor embed_ln.weight: expected a float dtype .*got BOOL"),
    "missing tensor": (lambda sd: sd.pop("encoder.ln_f.bias"), r"missing \['encoder.ln_f.bias'\]"),
    "extra tensor": (lambda sd: sd.__setitem__("encoder.h.2.ln_1.weight", torch.ones(32)),
                     r"unexpected \['encoder.h.2.ln_1.weight'\]"),
    "state_dim of another model": (lambda sd: sd.__setitem__("embed_state.weight", torch.zeros(32, 980)),
                                   r"embed_state.weight \(32, 980\) \(expected \(32, 147\)\)"),
    "act_dim of another model": (lambda sd: sd.__setitem__("predict_action.0.weight", torch.zeros(7, 32)),
                                 r"predict_action.0.weight \(7, 32\) \(expected \(3, 32\)\)"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_EDITS))
def test_tensors_that_do_not_match_the_config(good, tmp_path, case):
    edit, msg = TENSOR_EDITS[case]
    d = _copy(good, tmp_path)
    _edit_tensors(d, edit)
    with pytest.raises(CheckpointError, match=rf"{ST}: .*{msg}"):
        dtwidgets.load(d)


def test_float16_weights_load_as_float32_and_equal_hf(good, tmp_path):
    d = _copy(good, tmp_path)
    _edit_tensors(d, lambda sd: sd.update({k: v.half() for k, v in sd.items()}))
    adapter = dtwidgets.load(d)
    from transformers import DecisionTransformerModel

    ref = DecisionTransformerModel.from_pretrained(d).float().eval()
    w = real_windows(adapter, 12, seed=2)
    torch.testing.assert_close(adapter.forward(w), hf_scores(ref, w)[0], atol=1e-5, rtol=0)


# ---- sharded index --------------------------------------------------------------------------------------
def _shard(d, index, shards=("s1.safetensors",)):
    """Replace model.safetensors by an index (and copies of it as the named shards)."""
    for s in shards:
        shutil.copy(d / ST, d / s)
    (d / ST).unlink()
    (d / INDEX).write_text(index if isinstance(index, str) else json.dumps(index))


def _all_to(d, shard):
    return {"weight_map": {k: shard for k in load_file(str(d / ST))}}


BAD_INDEXES = {
    "list weight_map": (lambda d: {"weight_map": ["s1.safetensors"]}, r"expected weight_map to be a JSON object"),
    "string weight_map": (lambda d: {"weight_map": "s1.safetensors"}, r"expected weight_map to be a JSON object"),
    "no weight_map": (lambda d: {"metadata": {}}, r"expected weight_map to be a JSON object"),
    "index is a list": (lambda d: [1, 2], r"expected a safetensors index \(a JSON object\), got list"),
    "not json": (lambda d: "{oops", r"could not parse"),
    "empty weight_map": (lambda d: {"weight_map": {}}, r"expected a non-empty weight_map"),
    "non-string shard": (lambda d: {"weight_map": {"x": 5}}, r"shard file names .*got 5"),
    "missing shard": (lambda d: _all_to(d, "model-00001-of-00002.safetensors"),
                      r"shard 'model-00001-of-00002.safetensors' .*missing"),
    "traversal": (lambda d: _all_to(d, "../good/dt/model.safetensors"), r"plain file names .*'\.\./good"),
    "absolute": (lambda d: _all_to(d, str((d / ST).resolve())), r"plain file names .*'/"),
    "dot-dot": (lambda d: _all_to(d, ".."), r"plain file names .*'\.\.'"),
    "key not in its shard": (lambda d: {"weight_map": {**_all_to(d, "s1.safetensors")["weight_map"], "extra.w": "s1.safetensors"}},
                             r"s1.safetensors: expected the tensors the index assigns to it, missing \['extra.w'\]"),
    "shard holds unlisted tensors": (lambda d: {"weight_map": {"embed_ln.weight": "s1.safetensors"}},
                                     r"s1.safetensors: .*holds tensors the index does not assign to it"),
}


@pytest.mark.parametrize("case", sorted(BAD_INDEXES))
def test_bad_sharded_index_is_one_checkpoint_error(good, tmp_path, case):
    make, msg = BAD_INDEXES[case]
    d = _copy(good, tmp_path)
    _shard(d, make(d))
    with pytest.raises(CheckpointError, match=msg) as e:
        dtwidgets.load(d)
    assert str(d) in str(e.value)


def test_garbage_shard_and_good_two_shard_index(good, tmp_path):
    d = _copy(good, tmp_path)
    sd = load_file(str(d / ST))
    keys = sorted(sd)
    save_file({k: sd[k] for k in keys[:10]}, str(d / "a.safetensors"))
    save_file({k: sd[k] for k in keys[10:]}, str(d / "b.safetensors"))
    (d / ST).unlink()
    (d / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": {k: ("a" if i < 10 else "b") + ".safetensors"
                                                                      for i, k in enumerate(keys)}}))
    adapter = dtwidgets.load(d)  # a good two-shard directory loads and equals the single-file one
    w = real_windows(adapter, 8, seed=1)
    torch.testing.assert_close(adapter.forward(w), dtwidgets.load(good).forward(w), atol=0, rtol=0)
    (d / "b.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"b\.safetensors"):
        dtwidgets.load(d)


# ---- pytorch_model.bin: never unpickled -----------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def _bin_dir(tmp_path, obj, raw: bytes | None = None):
    d = tmp_path / "bin"
    hf_model(seed=0).config.save_pretrained(d)
    if raw is not None:
        (d / BIN).write_bytes(raw)
    else:
        torch.save(obj, d / BIN)
    return d


def test_bin_with_code_is_refused_unread(tmp_path, capsys):
    d = _bin_dir(tmp_path, None, pickle.dumps({"x": _Evil(), "pad": PAD}))
    with pytest.raises(UnsafeCheckpointError, match=rf"{BIN}: refused to load {BIN}: .*pickled objects"):
        load_hf_decision_transformer(d, env_id=ENV, n_timesteps=2)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize("obj,raw,msg", [
    (None, b"PK\x03\x04" + PAD, r"truncated or corrupted"),
    (None, b"", r"holds only 0 bytes"),
    ([torch.zeros(100_000)], None, r"expected a state dict \(tensor names to tensors\), got list"),
    ({"embed_ln.weight": 3, "pad": torch.zeros(100_000)}, None, r"expected a state dict .*'embed_ln.weight' is int"),
    ({"embed_ln.weight": torch.zeros(100_000, dtype=torch.int32)}, None, r"tensor embed_ln.weight: expected a float dtype"),
    ({"embed_ln.weight": torch.zeros(100_000)}, None, r"missing \['embed_action.bias'"),
])
def test_bad_bin_is_one_checkpoint_error(tmp_path, obj, raw, msg):
    """(Garbage that is not a zip is read as a legacy pickle and refused as unsafe, see the test above.)"""
    d = _bin_dir(tmp_path, obj, raw)
    with pytest.raises(CheckpointError, match=msg) as e:
        load_hf_decision_transformer(d, env_id=ENV, n_timesteps=2)
    assert BIN in str(e.value)


# ---- the binding file -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fields,msg", [
    (dict(n_timesteps=10**9), r"n_timesteps to be an int in \[1, 4096\], got 1000000000"),
    (dict(n_timesteps=2.5), r"n_timesteps to be an int"),
    (dict(state_mean="abc"), r"state_mean as a list of numbers"),
    (dict(state_mean=[[0.0, 1.0], [0.0]]), r"state_mean as a list of numbers"),
    (dict(state_std=[1.0] * 146 + [float("inf")]), r"state_std with 147 finite values"),
    (dict(rtg_range=[0, 1, 2]), r"rtg_range"),
    (dict(rtg_range=[float("-inf"), 1]), r"finite rtg_range"),
    (dict(action_names=5), r"action_names as a list of strings"),
    (dict(env_id=7), r"env_id to be a string"),
])
def test_bad_binding_file_values(good, tmp_path, fields, msg):
    d = _copy(good, tmp_path)
    b = json.loads((d / "dtwidgets_binding.json").read_text())
    b.update(fields)
    (d / "dtwidgets_binding.json").write_text(json.dumps(b))
    with pytest.raises(ValueError, match=msg) as e:
        dtwidgets.load(d)
    if "state_std with" not in msg:
        assert str(d / "dtwidgets_binding.json") in str(e.value)
