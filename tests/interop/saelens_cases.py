"""Cases for ``saelens_check.py``, written in the project's environment by dtwidgets itself.

Each case is an SAE folder plus inputs and what dtwidgets computes from them: the shipped demo SAE,
SAEs freshly trained and saved by ``train_sae`` / ``save_sae`` (TopK, ReLU, a hook_z SAE, one with
``apply_b_dec_to_input`` false, a JumpReLU one), and SAELens-style files written by hand that our
reader must read as SAELens does (a pre-6 TopK file, ``rescale_acts_by_decoder_norm``, an all-ones
``scaling_factor``). dtwidgets' numbers come from ``load_sae`` on the same folder (and, for trained
SAEs, equal the in-memory SAE's bit for bit).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from dtwidgets.sae import SAEConfig, SparseAutoencoder, load_sae, save_sae, train_sae

HOOK = "blocks.0.hook_resid_post"


def _inputs(d_in: int, b_dec: torch.Tensor, seed: int, n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return b_dec + 2.0 * torch.randn(n, d_in, generator=g)


def _finish(case: Path, x: torch.Tensor, expect: dict, *, reference: SparseAutoencoder | None = None,
            atol: float = 1e-6, n_heads: int | None = None) -> None:
    """Compute dtwidgets' encode / decode with ``load_sae`` on ``case/sae`` and write the case."""
    sae = load_sae(case / "sae")
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f)
        if reference is not None:  # the file gives exactly the SAE that was saved
            assert torch.equal(reference.encode(x), f) and torch.equal(reference.decode(f), x_hat)
    np.save(case / "x.npy", x.numpy())
    np.save(case / "encode.npy", f.numpy())
    np.save(case / "decode.npy", x_hat.numpy())
    (case / "case.json").write_text(json.dumps({"expect": expect, "atol": atol, "n_heads": n_heads}))


def _trained(root: Path, name: str, arch: str, hook: str = HOOK, **kw) -> SparseAutoencoder:
    g = torch.Generator().manual_seed(len(name))
    basis = torch.randn(48, 32, generator=g)
    codes = torch.rand(3000, 48, generator=g) * (torch.rand(3000, 48, generator=g) < 0.08)
    sae, _ = train_sae(codes @ basis, d_sae=64, architecture=arch, k=4, epochs=1, batch_size=256, seed=1,
                       threads=1, progress=False, hook_name=hook, model_name=f"interop {name}", **kw)
    save_sae(sae, root / name / "sae")
    return sae


def _hand_written(case: Path, cfg: dict, tensors: dict) -> None:
    (case / "sae").mkdir(parents=True)
    (case / "sae" / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(case / "sae" / "sae_weights.safetensors"))


def _random_tensors(d_in: int, d_sae: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5, "b_enc": 0.1 * torch.randn(d_sae, generator=g),
            "W_dec": torch.randn(d_sae, d_in, generator=g), "b_dec": torch.randn(d_in, generator=g)}


def write_cases(root) -> list[str]:
    """Write every case under ``root``; returns their names."""
    from dtwidgets.demo import DEMO_DIR

    root = Path(root)
    shutil.copytree(DEMO_DIR / "post_sae", root / "shipped_post" / "sae")
    demo = load_sae(root / "shipped_post" / "sae")
    _finish(root / "shipped_post", _inputs(demo.d_in, demo.b_dec.detach(), 0),
            {"architecture": "topk", "k": 16, "hook_name": HOOK, "d_in": 128, "d_sae": 512})
    for name, arch, k in (("trained_topk", "topk", 4), ("trained_standard", "standard", None)):
        sae = _trained(root, name, arch, l1_coefficient=1e-3)
        _finish(root / name, _inputs(32, sae.b_dec.detach(), 1), {"architecture": arch, "k": k, "hook_name": HOOK},
                reference=sae)
    z = _trained(root, "trained_hook_z", "topk", hook="blocks.0.attn.hook_z")
    _finish(root / "trained_hook_z", _inputs(32, z.b_dec.detach(), 2),
            {"architecture": "topk", "hook_name": "blocks.0.attn.hook_z"}, reference=z, n_heads=4)
    no_b = SparseAutoencoder(SAEConfig(32, 64, k=5, hook_name=HOOK, apply_b_dec_to_input=False), seed=3)
    with torch.no_grad():
        no_b.b_dec.copy_(torch.randn(32))
    save_sae(no_b, root / "no_b_dec_input" / "sae")
    _finish(root / "no_b_dec_input", _inputs(32, no_b.b_dec.detach(), 3),
            {"architecture": "topk", "apply_b_dec_to_input": False}, reference=no_b)
    jr = SparseAutoencoder(SAEConfig(32, 64, architecture="jumprelu", hook_name=HOOK), seed=4)
    with torch.no_grad():
        jr.threshold.copy_(torch.linspace(0.0, 1.0, 64))
        jr.b_enc.copy_(0.3 * torch.randn(64))
    save_sae(jr, root / "jumprelu" / "sae")
    _finish(root / "jumprelu", _inputs(32, jr.b_dec.detach(), 4), {"architecture": "jumprelu"}, reference=jr)
    _hand_written_cases(root)
    return sorted(p.name for p in root.iterdir() if (p / "case.json").is_file())


def _hand_written_cases(root: Path) -> None:
    w = _random_tensors(24, 40, 5)
    pre6 = {"architecture": "standard", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 6}, "d_in": 24,
            "d_sae": 40, "dtype": "float32", "device": "cpu", "hook_name": HOOK, "hook_layer": 0,
            "hook_head_index": None, "apply_b_dec_to_input": True, "normalize_activations": "none",
            "finetuning_scaling_factor": False, "sae_lens_training_version": "3.13.0", "dtwidgets": {"token": "state"}}
    _hand_written(root / "pre6_topk", pre6, w)
    _finish(root / "pre6_topk", _inputs(24, w["b_dec"], 5), {"architecture": "topk", "k": 6, "hook_name": HOOK})
    v6 = {"architecture": "topk", "k": 6, "rescale_acts_by_decoder_norm": True, "d_in": 24, "d_sae": 40,
          "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
          "reshape_activations": "none", "metadata": {"sae_lens_version": "6.54.12", "hook_name": HOOK},
          "dtwidgets": {"token": "state"}}
    _hand_written(root / "rescale_decoder_norm", v6, w)
    _finish(root / "rescale_decoder_norm", _inputs(24, w["b_dec"], 6), {"architecture": "topk", "k": 6}, atol=1e-5)
    ones = {**v6, "rescale_acts_by_decoder_norm": False}
    _hand_written(root / "scaling_factor_ones", ones, {**w, "scaling_factor": torch.ones(40)})
    _finish(root / "scaling_factor_ones", _inputs(24, w["b_dec"], 7), {"architecture": "topk", "hook_name": HOOK})
