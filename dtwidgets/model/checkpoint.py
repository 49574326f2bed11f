"""Loading and saving Decision Transformers.

* :func:`load_checkpoint` reads the reference work's ``torch.save`` format (a state dict plus JSON
  ``model_config``/``environment_config``/``offline_config`` strings) with ``weights_only=True``:
  a file holding pickled code is refused without running it. No environment needs registering.
* :func:`save_model` / :func:`load_model` store the project's own models as safetensors
  (tensors in the same reference layout, config JSON in the metadata) — no pickle at all.
"""
from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import torch

from .backbone import export_backbone_weights, ht_keys, load_backbone_weights
from .config import DTConfig
from .dt import DecisionTransformer

EMBEDDING_KEYS = (
    "reward_embedding.0.weight", "state_embedding.weight", "action_embedding.0.weight",
    "action_predictor.weight", "action_predictor.bias", "state_predictor.weight", "state_predictor.bias",
    "reward_predictor.weight", "reward_predictor.bias",
)


class UnsafeCheckpointError(RuntimeError):
    """The file holds pickled code (or is not a plain tensor checkpoint) and was not loaded."""


def expected_keys(cfg: DTConfig) -> list[str]:
    """Every tensor a checkpoint of ``cfg`` holds, in reference layout."""
    time = ["time_embedding.weight"] + (["time_embedding.bias"] if cfg.time_embedding_type == "linear" else [])
    return list(EMBEDDING_KEYS) + time + ["transformer." + k for k in ht_keys(cfg)]


def state_dict_of(model: DecisionTransformer) -> dict[str, torch.Tensor]:
    """The model's tensors in reference layout (portable between TransformerLens majors)."""
    own = model.state_dict()
    out = {k: own[k].detach().clone() for k in expected_keys(model.cfg) if not k.startswith("transformer.")}
    bb = export_backbone_weights(model.transformer, model.cfg, model.gated_biases)
    out.update({"transformer." + k: v for k, v in bb.items()})
    return out


def load_state(model: DecisionTransformer, sd: dict[str, torch.Tensor]) -> DecisionTransformer:
    """Load reference-layout tensors into ``model``; missing keys or wrong shapes raise one clear error."""
    want = expected_keys(model.cfg)
    missing = [k for k in want if k not in sd]
    if missing:
        raise KeyError(f"checkpoint is missing keys {missing} (expected {len(want)} tensors for this config)")
    own = model.state_dict()
    shapes = {k: tuple(sd[k].shape) for k in want}
    for k in want:
        target = own.get(k)
        if target is not None and tuple(target.shape) != shapes[k]:
            raise ValueError(f"checkpoint tensor {k}: expected shape {tuple(target.shape)}, got {shapes[k]}")
    with torch.no_grad():
        for k in want:
            if not k.startswith("transformer."):
                own[k].copy_(sd[k])
    tsd = {k[len("transformer."):]: v.float() for k, v in sd.items() if k.startswith("transformer.")}
    load_backbone_weights(model.transformer, model.cfg, tsd, model.gated_biases)
    return model.eval()


def _config_from_reference(sd: dict, model_cfg: dict, env_cfg: dict) -> DTConfig:
    if model_cfg.get("state_embedding_type", "grid") != "grid":
        raise ValueError(f"expected state_embedding_type 'grid', got {model_cfg.get('state_embedding_type')!r}")
    for k in ("state_embedding.weight", "action_predictor.weight", "time_embedding.weight"):
        if k not in sd:
            raise KeyError(f"checkpoint is missing key {k!r} needed to infer the model's shape")
    ln = model_cfg.get("layer_norm", None)
    ln = {False: None, True: "LN", "false": None, "true": "LN", "None": None}.get(ln, ln)
    one_hot = bool(env_cfg.get("one_hot_obs", False))
    n_obs = sd["state_embedding.weight"].shape[1]
    cells = n_obs / (20 if one_hot else 3)
    side = int(round(math.sqrt(cells)))
    if side * side != cells:
        raise ValueError(f"state_embedding takes {n_obs} features: expected C*W*W with C={20 if one_hot else 3}")
    time_type = model_cfg.get("time_embedding_type", "embedding")
    n_actions = sd["action_predictor.weight"].shape[0]
    max_t = sd["time_embedding.weight"].shape[0] - 1 if time_type == "embedding" else int(env_cfg.get("max_steps", 1000))
    return DTConfig(
        d_model=model_cfg["d_model"], n_heads=model_cfg["n_heads"], d_mlp=model_cfg["d_mlp"],
        n_layers=model_cfg["n_layers"], n_ctx=model_cfg["n_ctx"], layer_norm=ln,
        gated_mlp=bool(model_cfg.get("gated_mlp", False)),
        act_fn=model_cfg.get("activation_fn", model_cfg.get("act_fn", "relu")) or "relu",
        obs_shape=(side, side, 3), one_hot_obs=one_hot, n_actions=n_actions, max_timestep=max_t,
        time_embedding_type=time_type, env_id=env_cfg.get("env_id", "unknown"), seed=model_cfg.get("seed", 0),
    )


def read_checkpoint(path) -> dict:
    """``torch.load(path, weights_only=True)`` with a clear error for files holding code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a checkpoint file, got {str(path)!r} (no such file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines()[0][:200]  # torch's message has ANSI codes
        raise UnsafeCheckpointError(
            f"refused to load {path.name}: expected plain tensors and JSON configs, but the file holds "
            f"pickled objects that would run code ({detail})") from None


def load_checkpoint(path) -> "DTAdapter":
    """Load a reference-format checkpoint into a :class:`~dtwidgets.model.DTAdapter`."""
    from .adapter import DTAdapter

    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt or "model_config" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise KeyError(f"expected a checkpoint dict with 'model_state_dict' and 'model_config', got {keys}")
    parse = lambda v: json.loads(v) if isinstance(v, str) else dict(v or {})  # noqa: E731
    model_cfg, env_cfg = parse(ckpt["model_config"]), parse(ckpt.get("environment_config"))
    sd = ckpt["model_state_dict"]
    cfg = _config_from_reference(sd, model_cfg, env_cfg)
    model = load_state(DecisionTransformer(cfg), sd)
    return DTAdapter(model, metadata={"source": str(path), "model_config": model_cfg,
                                      "environment_config": env_cfg, "offline_config": parse(ckpt.get("offline_config"))})


def save_model(model, path) -> Path:
    """Save a model (or adapter) as safetensors: reference-layout tensors + ``DTConfig`` JSON."""
    from safetensors.torch import save_file

    model = getattr(model, "model", model)
    path = Path(path)
    save_file({k: v.contiguous() for k, v in state_dict_of(model).items()}, str(path),
              metadata={"dtwidgets_format": "1", "config": model.cfg.to_json()})
    return path


def load_model(path) -> DecisionTransformer:
    """Load a model saved by :func:`save_model`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a .safetensors model file, got {str(path)!r} (no such file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise ValueError(f"expected a safetensors file written by dtwidgets.save_model, could not read {path.name}: {e}") from None
    if meta.get("dtwidgets_format") != "1" or "config" not in meta:
        raise ValueError(f"expected dtwidgets_format '1' metadata with a config in {path.name}, got {sorted(meta)}")
    return load_state(DecisionTransformer(DTConfig.from_json(meta["config"])), sd)
