"""Saving and loading SAEs as SAELens does: a folder with ``cfg.json`` and ``sae_weights.safetensors``.

Weights: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``
(float32). ``cfg.json`` holds SAELens 6's inference-config keys (``architecture``, ``d_in``,
``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``, ``normalize_activations``,
``reshape_activations``, ``k`` for TopK, and ``metadata`` with ``hook_name`` / ``hook_layer`` /
``model_name``) plus a ``dtwidgets`` section (token kind, training notes). Loading reads JSON and
safetensors only, and checks every shape and value.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .model import ARCHITECTURES, SAEConfig, SparseAutoencoder

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"


class SAEFileError(ValueError):
    """An SAE folder could not be read (missing files, wrong keys, shapes or values)."""


def save_sae(sae: SparseAutoencoder, folder) -> Path:
    """Write ``folder/cfg.json`` and ``folder/sae_weights.safetensors``; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    m = re.match(r"^blocks\.(\d+)\.", c.hook_name)
    cfg = {"architecture": c.architecture, "d_in": c.d_in, "d_sae": c.d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "hook_z" if c.hook_name.endswith("attn.hook_z") else "none",
           "metadata": {"model_name": c.model_name, "hook_name": c.hook_name,
                        "hook_layer": int(m.group(1)) if m else None, "hook_head_index": None},
           "dtwidgets": {"token": c.token, "notes": c.metadata}}
    if c.architecture == "topk":
        cfg["k"] = c.k
    tensors = {n: getattr(sae, n).detach().float().contiguous().clone() for n in ("W_enc", "b_enc", "W_dec", "b_dec")}
    save_file(tensors, str(folder / WEIGHTS_FILENAME), metadata={"format": "sae_lens", "library": "dtwidgets"})
    (folder / CFG_FILENAME).write_text(json.dumps(cfg, indent=1))
    return folder


def load_sae(folder, adapter=None) -> SparseAutoencoder:
    """Read an SAE folder (ours or SAELens' ``topk`` / ``standard``); with ``adapter``, also check that
    its hook exists in that model and its ``d_in`` matches the hook's width."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / CFG_FILENAME, folder / WEIGHTS_FILENAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"expected an SAE folder with {CFG_FILENAME} and {WEIGHTS_FILENAME}, "
                                    f"{str(folder)!r} has no {p.name}")
    try:
        raw = json.loads(cfg_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise SAEFileError(f"expected JSON in {cfg_path}: {e}") from None
    cfg = _config(raw, cfg_path)
    try:
        w = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise SAEFileError(f"expected a safetensors file at {w_path}: {e}") from None
    want = {"W_enc": (cfg.d_in, cfg.d_sae), "b_enc": (cfg.d_sae,), "W_dec": (cfg.d_sae, cfg.d_in), "b_dec": (cfg.d_in,)}
    for name, shape in want.items():
        if name not in w:
            raise SAEFileError(f"expected tensor {name!r} in {w_path.name}, got keys {sorted(w)}")
        if tuple(w[name].shape) != shape:
            raise SAEFileError(f"expected {name} of shape {shape} (d_in={cfg.d_in}, d_sae={cfg.d_sae}) in {w_path.name}, "
                               f"got {tuple(w[name].shape)}")
        if not w[name].dtype.is_floating_point or not torch.isfinite(w[name]).all():
            raise SAEFileError(f"expected finite floating-point {name} in {w_path.name}")
    sae = SparseAutoencoder(cfg)
    with torch.no_grad():
        for name in want:
            getattr(sae, name).copy_(w[name].float())
    if adapter is not None:
        from .metrics import check_hook

        check_hook(adapter, sae)
    return sae.eval()


def _config(raw, path: Path) -> SAEConfig:
    if not isinstance(raw, dict):
        raise SAEFileError(f"expected a JSON object in {path}, got {type(raw).__name__}")
    arch = raw.get("architecture", "standard")
    if arch not in ARCHITECTURES:
        raise SAEFileError(f"expected architecture in {ARCHITECTURES} in {path}, got {arch!r}")
    if raw.get("normalize_activations", "none") not in ("none", None):
        raise SAEFileError(f"expected normalize_activations 'none' in {path} (fold the scaling first), "
                           f"got {raw.get('normalize_activations')!r}")
    if raw.get("apply_b_dec_to_input", True) is not True:
        raise SAEFileError(f"expected apply_b_dec_to_input true in {path}, got {raw.get('apply_b_dec_to_input')!r}")
    meta = raw.get("metadata") or raw.get("meta") or {}
    ours = raw.get("dtwidgets") or {}
    try:
        return SAEConfig(d_in=raw["d_in"], d_sae=raw["d_sae"], architecture=arch, k=raw.get("k", 1),
                         hook_name=str(meta.get("hook_name") or raw.get("hook_name") or ""),
                         token=str(ours.get("token", "state")), model_name=str(meta.get("model_name") or ""),
                         metadata=dict(ours.get("notes") or {}))
    except (KeyError, TypeError, ValueError) as e:
        raise SAEFileError(f"invalid SAE config in {path}: {e}") from None
