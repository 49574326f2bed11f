"""SAE folders read as SAELens 6 reads them, or refused with one error naming the file, the key,
what was expected and what came. Every file here is written by hand (tmp_path); numbers are checked
against plain-torch formulas from the tensors, not the code under test."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from dtwidgets.sae import SAEConfig, SAEFileError, SparseAutoencoder, load_sae, save_sae
from dtwidgets.sae import io as sae_io

D_IN, D_SAE, K = 8, 16, 3


def tensors(seed=0, d_in=D_IN, d_sae=D_SAE) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g) * 0.3,
            "W_dec": torch.randn(d_sae, d_in, generator=g), "b_dec": torch.randn(d_in, generator=g) * 0.3}


def v6_cfg(**over) -> dict:
    cfg = {"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": K, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.0.hook_resid_post"},
           "dtwidgets": {"token": "state"}}
    cfg.update(over)
    return cfg


def write(folder, cfg: dict, w: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors() if w is None else w, str(folder / "sae_weights.safetensors"))
    return folder


def refused(folder, file: str, *parts: str, **kw):
    """load_sae fails with ONE SAEFileError naming the file and every part (key, expected, got)."""
    with pytest.raises(SAEFileError) as e:
        load_sae(folder, **kw)
    msg = str(e.value)
    assert str(folder / file) in msg, msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


def pre(x, w):  # encoder pre-activations, plain torch
    return (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]


def topk_ref(p, k):
    v, i = p.topk(k, dim=-1)
    return torch.zeros_like(p).scatter(-1, i, v.relu())


X = torch.randn(40, D_IN, generator=torch.Generator().manual_seed(5))


# ---- architecture and k -------------------------------------------------------------------------

def test_topk_without_k_is_refused(tmp_path):
    cfg = v6_cfg()
    del cfg["k"]
    refused(write(tmp_path / "s", cfg), "cfg.json", "'k'", "got none", "k=100")


def test_pre6_topk_file_reads_as_topk(tmp_path):
    """SAELens <= 5: architecture 'standard' + activation_fn_str 'topk' + k in activation_fn_kwargs."""
    cfg = {"architecture": "standard", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K},
           "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "hook_name": "blocks.0.hook_resid_post",
           "hook_layer": 0, "hook_head_index": None, "sae_lens_training_version": "3.13.0", "lr": 3e-4,
           "dtwidgets": {"token": "state"}}
    sae = load_sae(write(tmp_path / "s", cfg))
    assert sae.cfg.architecture == "topk" and sae.cfg.k == K and sae.cfg.hook_name == "blocks.0.hook_resid_post"
    w = tensors()
    with torch.no_grad():
        f = sae.encode(X)
    assert torch.allclose(f, topk_ref(pre(X, w), K), atol=1e-6)
    assert int((f > 0).sum(1).max()) <= K < int((pre(X, w) > 0).sum(1).min())  # not a ReLU SAE


@pytest.mark.parametrize("fn, kwargs, part", [("topk", {}, "activation_fn_kwargs"),
                                              ("topk", {"k": None}, "activation_fn_kwargs"),
                                              ("tanh-relu", {}, "activation_fn_str")])
def test_pre6_activation_fn_that_cannot_be_read_is_refused(tmp_path, fn, kwargs, part):
    cfg = {"architecture": "standard", "activation_fn_str": fn, "activation_fn_kwargs": kwargs, "d_in": D_IN,
           "d_sae": D_SAE, "dtype": "float32", "hook_name": "blocks.0.hook_resid_post", "dtwidgets": {"token": "state"}}
    refused(write(tmp_path / "s", cfg), "cfg.json", repr(part), "expected", "got")


def test_pre6_k_disagreeing_with_kwargs_is_refused(tmp_path):
    cfg = {"architecture": "standard", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3}, "k": 4,
           "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "dtwidgets": {"token": "state"}}
    refused(write(tmp_path / "s", cfg), "cfg.json", "'k'", "activation_fn_kwargs.k=3", "got 4")


@pytest.mark.parametrize("arch", ["gated", "batchtopk", "transcoder", None])
def test_unknown_architecture_is_refused(tmp_path, arch):
    cfg = v6_cfg(architecture=arch)
    if arch is None:
        del cfg["architecture"]
    refused(write(tmp_path / "s", cfg), "cfg.json", "'architecture'", "expected", "got")


# ---- integers: no truncation, no OverflowError ------------------------------------------------

@pytest.mark.parametrize("key, value", [("d_sae", 512.7), ("d_sae", "512"), ("d_sae", 16.0), ("d_sae", True),
                                        ("k", 16.9), ("k", True), ("k", "3"), ("k", 0), ("k", D_SAE + 1),
                                        ("d_in", 8.0000001), ("d_in", -8), ("d_in", math.inf), ("k", -math.inf),
                                        ("d_sae", math.nan), ("d_in", None), ("d_sae", [16])])
def test_non_integer_sizes_are_refused(tmp_path, key, value):
    folder = write(tmp_path / "s", v6_cfg(**{key: value}))  # json writes inf / nan as Infinity / NaN
    msg = refused(folder, "cfg.json", repr(key), "expected", "integer")
    assert f"got {value!r}" in msg or f"got {int(value)}" in msg


def test_sizes_are_checked_before_anything_is_allocated(tmp_path, monkeypatch):
    def no_alloc(*a, **k):
        raise AssertionError("SparseAutoencoder built before the file was checked")

    monkeypatch.setattr(sae_io, "SparseAutoencoder", no_alloc)
    refused(write(tmp_path / "a", v6_cfg(d_sae=2**40)), "cfg.json", "'d_sae'", str(2**40))
    with pytest.raises(SAEFileError, match=r"d_in \* d_sae"):
        load_sae(write(tmp_path / "b", v6_cfg(d_in=2**20, d_sae=2**20)))
    # within the limit but not what the file holds: the header is read, no tensor, no SAE
    refused(write(tmp_path / "c", v6_cfg(d_in=4096, d_sae=65536)), "sae_weights.safetensors", "'W_enc'",
            "(4096, 65536)", f"got ({D_IN}, {D_SAE})")


# ---- keys that change the computation ---------------------------------------------------------

def test_apply_b_dec_to_input_false_is_applied(tmp_path):
    sae = load_sae(write(tmp_path / "s", v6_cfg(apply_b_dec_to_input=False)))
    w = tensors()
    with torch.no_grad():
        assert torch.allclose(sae.encode(X), topk_ref(X @ w["W_enc"] + w["b_enc"], K), atol=1e-6)
    back = load_sae(save_sae(sae, tmp_path / "again"))
    assert back.cfg.apply_b_dec_to_input is False
    refused(write(tmp_path / "t", v6_cfg(apply_b_dec_to_input="yes")), "cfg.json", "'apply_b_dec_to_input'", "'yes'")


def test_rescale_acts_by_decoder_norm_is_applied(tmp_path):
    """SAELens TopK: topk(pre * |W_dec|) and decode (f / |W_dec|) @ W_dec + b_dec."""
    sae = load_sae(write(tmp_path / "s", v6_cfg(rescale_acts_by_decoder_norm=True)))
    w = tensors()
    n = w["W_dec"].norm(dim=-1)
    f_ref = topk_ref(pre(X, w) * n, K)
    with torch.no_grad():
        f = sae.encode(X)
        assert torch.allclose(f, f_ref, atol=1e-5)
        assert torch.allclose(sae.decode(f), (f_ref / n) @ w["W_dec"] + w["b_dec"], atol=1e-5)


def test_hook_head_index_is_refused(tmp_path):
    cfg = v6_cfg()
    cfg["metadata"]["hook_head_index"] = 2
    refused(write(tmp_path / "a", cfg), "cfg.json", "'hook_head_index'", "null", "got 2")
    old = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
           "hook_point": "blocks.0.attn.hook_z", "hook_point_head_index": 1, "dtwidgets": {"token": "state"}}
    refused(write(tmp_path / "b", old), "cfg.json", "'hook_head_index'", "got 1")


@pytest.mark.parametrize("value, hook", [("hook_z", "blocks.0.hook_resid_post"), ("bogus", "blocks.0.hook_resid_post"),
                                         (None, "blocks.0.attn.hook_z")])
def test_reshape_activations_that_cannot_apply_are_refused(tmp_path, value, hook):
    cfg = v6_cfg(reshape_activations=value)
    cfg["metadata"]["hook_name"] = hook
    refused(write(tmp_path / "s", cfg), "cfg.json", "'reshape_activations'", repr(value))


def test_reshape_hook_z_on_a_hook_z_sae_reads_flattened_heads(tmp_path):
    cfg = v6_cfg(reshape_activations="hook_z")
    cfg["metadata"]["hook_name"] = "blocks.0.attn.hook_z"
    assert load_sae(write(tmp_path / "s", cfg)).cfg.hook_name == "blocks.0.attn.hook_z"


@pytest.mark.parametrize("value", ["layer_norm", "constant_norm_rescale", "expected_average_only_in",
                                   "covariance_whitening", True])
def test_normalize_activations_is_refused(tmp_path, value):
    cfg = v6_cfg(normalize_activations=value)
    if value is True:  # pre-6 boolean: SAELens reads it as expected_average_only_in
        cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
               "normalize_activations": True, "dtwidgets": {"token": "state"}}
        value = "expected_average_only_in"
    refused(write(tmp_path / "s", cfg), "cfg.json", "'normalize_activations'", "'none'", repr(value))


@pytest.mark.parametrize("dtype", ["bfloat16", "float64", "float16", None, 32])
def test_dtype_other_than_float32_is_refused(tmp_path, dtype):
    cfg = v6_cfg(dtype=dtype)
    if dtype is None:
        del cfg["dtype"]
    refused(write(tmp_path / "s", cfg), "cfg.json", "'dtype'", "'float32'", f"got {dtype!r}")


def test_scaling_factor(tmp_path):
    ones = {**tensors(), "scaling_factor": torch.ones(D_SAE)}
    sae = load_sae(write(tmp_path / "ones", v6_cfg(), ones))  # SAELens drops an all-ones factor
    assert torch.equal(sae.W_dec, tensors()["W_dec"])
    scaled = {**tensors(), "scaling_factor": torch.linspace(0.5, 2, D_SAE)}
    refused(write(tmp_path / "s", v6_cfg(finetuning_scaling_factor=True), scaled), "sae_weights.safetensors",
            "'scaling_factor'", "all ones", "[0.5, 2]")
    refused(write(tmp_path / "f", v6_cfg(finetuning_scaling_factor=True)), "cfg.json", "'finetuning_scaling_factor'",
            "expected false", "got True")


def test_extra_or_missing_tensors_are_refused(tmp_path):
    extra = {**tensors(), "threshold": torch.zeros(D_SAE)}
    refused(write(tmp_path / "a", v6_cfg(), extra), "sae_weights.safetensors", "unexpected: ['threshold']",
            "'topk'")
    missing = tensors()
    del missing["b_enc"]
    refused(write(tmp_path / "b", v6_cfg(), missing), "sae_weights.safetensors", "'b_enc'", "got ['W_dec'")
    refused(write(tmp_path / "c", v6_cfg(architecture="jumprelu")), "sae_weights.safetensors", "'threshold'")


def test_jumprelu_reads_its_threshold(tmp_path):
    thr = torch.linspace(-0.5, 1.5, D_SAE)
    w = {**tensors(), "threshold": thr}
    sae = load_sae(write(tmp_path / "s", v6_cfg(architecture="jumprelu"), w))
    p = pre(X, tensors())
    with torch.no_grad():
        f = sae.encode(X)
    assert torch.allclose(f, p.relu() * (p > thr), atol=1e-6)
    assert ((p > 0) & (p <= thr)).any()  # the threshold removes features ReLU would keep
    back = load_sae(save_sae(sae, tmp_path / "again"))
    assert torch.equal(back.threshold, thr)
    with pytest.raises(ValueError, match="architecture"):
        from dtwidgets.sae import train_sae

        train_sae(X, d_sae=8, architecture="jumprelu", progress=False)


def test_bad_tensors_are_refused(tmp_path):
    w = tensors()
    w["b_dec"] = torch.arange(D_IN, dtype=torch.int32)
    refused(write(tmp_path / "a", v6_cfg(), w), "sae_weights.safetensors", "'b_dec'", "floating-point", "I32")
    w = tensors()
    w["W_dec"][2, 3] = float("inf")
    refused(write(tmp_path / "b", v6_cfg(), w), "sae_weights.safetensors", "'W_dec'", "finite")
    write(tmp_path / "c", v6_cfg())
    (tmp_path / "c" / "sae_weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    refused(tmp_path / "c", "sae_weights.safetensors", "safetensors")


@pytest.mark.parametrize("version", [6, "six", ["6.0.0"]])
def test_bad_sae_lens_version_is_refused(tmp_path, version):
    cfg = v6_cfg()
    cfg["metadata"]["sae_lens_version"] = version
    refused(write(tmp_path / "s", cfg), "cfg.json", "'sae_lens_version'", repr(version))


# ---- layouts: hook names as SAELens finds them ------------------------------------------------

def test_hook_name_is_read_where_saelens_reads_it(tmp_path):
    # 6.x: metadata.hook_name; a top-level one is ignored, as SAELens 6 ignores it
    cfg = v6_cfg(hook_name="blocks.0.hook_resid_pre")
    assert load_sae(write(tmp_path / "a", cfg)).cfg.hook_name == "blocks.0.hook_resid_post"
    # pre-6: the top-level hook_point / hook_name; a metadata object is dropped (SAELens drops it)...
    old = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
           "hook_point": "blocks.0.hook_resid_pre", "metadata": {"hook_name": "blocks.0.hook_mlp_out"}}
    assert load_sae(write(tmp_path / "b", old), token="state").cfg.hook_name == "blocks.0.hook_resid_pre"
    # ... except in our own files written before the 6.x layout (a dtwidgets section, metadata.hook_name)
    ours_old = {"architecture": "topk", "k": K, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
                "metadata": {"hook_name": "blocks.0.hook_mlp_out", "hook_layer": 0}, "dtwidgets": {"token": "rtg"}}
    sae = load_sae(write(tmp_path / "c", ours_old))
    assert (sae.cfg.hook_name, sae.cfg.token, sae.cfg.k) == ("blocks.0.hook_mlp_out", "rtg", K)


def test_saved_cfg_is_the_saelens6_layout(tmp_path):
    sae = SparseAutoencoder(SAEConfig(D_IN, D_SAE, k=K, hook_name="blocks.0.attn.hook_z", token="rtg"))
    cfg = json.loads((save_sae(sae, tmp_path / "s") / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"] == "6.0.0" and cfg["metadata"]["hook_name"] == "blocks.0.attn.hook_z"
    assert cfg["reshape_activations"] == "hook_z" and cfg["rescale_acts_by_decoder_norm"] is False
    assert cfg["dtwidgets"]["token"] == "rtg" and "hook_name" not in cfg and "hook_layer" not in cfg["metadata"]
    assert set(load_file(str(tmp_path / "s" / "sae_weights.safetensors"))) == {"W_enc", "b_enc", "W_dec", "b_dec"}


# ---- the token kind ---------------------------------------------------------------------------

def test_token_kind_must_be_stated_and_agree(tmp_path):
    cfg = v6_cfg()
    del cfg["dtwidgets"]
    folder = write(tmp_path / "s", cfg)
    refused(folder, "cfg.json", "'dtwidgets.token'", "got none", "token=")
    assert load_sae(folder, token="rtg").cfg.token == "rtg"
    refused(folder, "cfg.json", "token", "'next'", token="next")
    stated = write(tmp_path / "t", v6_cfg(dtwidgets={"token": "rtg"}))
    refused(stated, "cfg.json", "'dtwidgets.token'", "'rtg'", "'state'", token="state")
    refused(write(tmp_path / "u", v6_cfg(dtwidgets={"token": "State"})), "cfg.json", "'dtwidgets.token'", "'State'")


def test_sae_config_refuses_non_integers():
    for bad in (dict(d_in=8.5), dict(d_in=True), dict(d_sae="16"), dict(k=2.5), dict(d_in=math.inf)):
        with pytest.raises(ValueError, match="integer"):
            SAEConfig(**{"d_in": 8, "d_sae": 16, "k": 2, **bad})


@pytest.mark.parametrize("bad", [dict(batch_size=256.7), dict(batch_size=0), dict(d_sae=64.5), dict(k=True),
                                 dict(lr=-1e-3), dict(lr=math.nan), dict(epochs=math.inf), dict(seed=1.5),
                                 dict(l1_coefficient=-0.1), dict(dead_after="50")])
def test_training_settings_are_refused_not_truncated(bad):
    from dtwidgets.sae import train_sae

    with pytest.raises(ValueError, match=f"{next(iter(bad))}.*got"):
        train_sae(X, **{"d_sae": 16, "k": 2, "epochs": 1, "progress": False, **bad})
