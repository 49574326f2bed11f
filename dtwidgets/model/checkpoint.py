"""Loading and saving Decision Transformers.

* :func:`load_checkpoint` reads the reference work's ``torch.save`` format (a state dict plus JSON
  ``model_config``/``environment_config``/``offline_config`` strings) with ``weights_only=True``:
  a file holding pickled code is refused without running it. No environment needs registering.
* :func:`save_model` / :func:`load_model` store the project's own models as safetensors
  (tensors in the same reference layout, config JSON in the metadata) — no pickle at all.
* :func:`load` (``dtwidgets.load``) is the one way to open a model for analysis: any of the above,
  or a HuggingFace ``DecisionTransformerModel`` directory, as a ModelAdapter.

Return types: :func:`load` and :func:`load_checkpoint` return an adapter (:class:`DTAdapter`);
:func:`load_model` returns the bare :class:`DecisionTransformer` module (for training; wrap it with
``DTAdapter(model)`` or use :func:`load` for analysis). Every unreadable or malformed file raises
one :class:`CheckpointError` (a ValueError) naming the file, what was expected and what came.
"""
from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..adapters.device import resolve_device
from .backbone import export_backbone_weights, ht_keys, load_backbone_weights
from .config import DTConfig
from .dt import DecisionTransformer

if TYPE_CHECKING:
    from .adapter import DTAdapter

EMBEDDING_KEYS = (
    "reward_embedding.0.weight", "state_embedding.weight", "action_embedding.0.weight",
    "action_predictor.weight", "action_predictor.bias", "state_predictor.weight", "state_predictor.bias",
    "reward_predictor.weight", "reward_predictor.bias",
)


class UnsafeCheckpointError(RuntimeError):
    """The file holds pickled code (or is not a plain tensor checkpoint) and was not loaded."""


class CheckpointError(ValueError):
    """A model file could not be used: not a file, empty, truncated, malformed config or tensors.

    The message names the file, what was expected and what was found.
    """


class CheckpointKeyError(CheckpointError, KeyError):
    """A checkpoint lacks required entries (a :class:`KeyError` too, for ``except KeyError`` callers)."""

    __str__ = BaseException.__str__  # no repr-quoting of the message


REFERENCE_CONFIG_FIELDS = ("d_model", "n_heads", "d_mlp", "n_layers", "n_ctx")


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


def load_state(model: DecisionTransformer, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> DecisionTransformer:
    """Load reference-layout tensors into ``model``; missing keys, wrong shapes or dtypes and NaN/Inf
    values raise one :class:`CheckpointError` naming ``source`` and the tensor."""
    want = expected_keys(model.cfg)
    missing = [k for k in want if k not in sd]
    if missing:
        raise CheckpointKeyError(f"{source} is missing keys {missing} (expected {len(want)} tensors for this config)")
    own = model.state_dict()
    for k in want:
        t = sd[k]
        if not isinstance(t, torch.Tensor) or t.is_complex():
            raise CheckpointError(f"{source}: tensor {k}: expected a real-valued tensor, got {type(t).__name__}"
                                  f"{'' if not isinstance(t, torch.Tensor) else ' of dtype ' + str(t.dtype)}")
        target = own.get(k)
        if target is not None and tuple(target.shape) != tuple(t.shape):
            raise CheckpointError(f"{source}: tensor {k}: expected shape {tuple(target.shape)}, got {tuple(t.shape)}")
    check_finite({k: sd[k] for k in want}, source)
    with torch.no_grad():
        for k in want:
            if not k.startswith("transformer."):
                own[k].copy_(sd[k])
    tsd = {k[len("transformer."):]: v.float() for k, v in sd.items() if k.startswith("transformer.")}
    load_backbone_weights(model.transformer, model.cfg, tsd, model.gated_biases)
    return model.eval()


def check_finite(tensors: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming the first tensor holding NaN or Inf (a model with such a
    weight returns NaN logits: a silent wrong answer)."""
    for k, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise CheckpointError(f"{source}: tensor {k} {tuple(t.shape)}: expected finite weights, got {n_nan} NaN "
                                  f"and {n_inf} Inf values; refusing to load a model that would return NaN")


def _config_from_reference(sd: dict, model_cfg: dict, env_cfg: dict, source: str = "checkpoint") -> DTConfig:
    if model_cfg.get("state_embedding_type", "grid") != "grid":
        raise CheckpointError(f"{source}: expected state_embedding_type 'grid', got {model_cfg.get('state_embedding_type')!r}")
    missing = [k for k in REFERENCE_CONFIG_FIELDS if k not in model_cfg]
    if missing:
        raise CheckpointKeyError(f"{source}: model_config is missing fields {missing}; expected all of "
                                 f"{list(REFERENCE_CONFIG_FIELDS)}, got {sorted(model_cfg)}")
    for k in ("state_embedding.weight", "action_predictor.weight", "time_embedding.weight"):
        if k not in sd:
            raise CheckpointKeyError(f"{source} is missing key {k!r} needed to infer the model's shape")
        if not isinstance(sd[k], torch.Tensor) or sd[k].ndim != 2:
            raise CheckpointError(f"{source}: tensor {k}: expected a 2-d tensor, got "
                                  f"{tuple(sd[k].shape) if isinstance(sd[k], torch.Tensor) else type(sd[k]).__name__}")
    ln = model_cfg.get("layer_norm", None)
    ln = {False: None, True: "LN", "false": None, "true": "LN", "None": None}.get(ln, ln)
    one_hot = bool(env_cfg.get("one_hot_obs", False))
    n_obs = sd["state_embedding.weight"].shape[1]
    cells = n_obs / (20 if one_hot else 3)
    side = int(round(math.sqrt(cells)))
    if side * side != cells:
        raise CheckpointError(f"{source}: state_embedding takes {n_obs} features: expected C*W*W with C={20 if one_hot else 3}")
    time_type = model_cfg.get("time_embedding_type", "embedding")
    n_actions = sd["action_predictor.weight"].shape[0]
    max_t = sd["time_embedding.weight"].shape[0] - 1 if time_type == "embedding" else int(env_cfg.get("max_steps", 1000))
    kw = dict(
        d_model=model_cfg["d_model"], n_heads=model_cfg["n_heads"], d_mlp=model_cfg["d_mlp"],
        n_layers=model_cfg["n_layers"], n_ctx=model_cfg["n_ctx"], layer_norm=ln,
        gated_mlp=bool(model_cfg.get("gated_mlp", False)),
        act_fn=model_cfg.get("activation_fn", model_cfg.get("act_fn", "relu")) or "relu",
        obs_shape=(side, side, 3), one_hot_obs=one_hot, n_actions=n_actions, max_timestep=max_t,
        time_embedding_type=time_type, env_id=env_cfg.get("env_id", "unknown"), seed=model_cfg.get("seed", 0),
    )
    try:
        return DTConfig(**kw)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def check_model_file(path, what: str = "a checkpoint file") -> Path:
    """``path`` as a Path if it is a non-empty file; else one clear error naming it."""
    path = Path(path)
    if path.is_dir():
        hint = " (it holds a config.json: a HuggingFace model directory? open it with dtwidgets.load)" \
            if (path / "config.json").is_file() else ""
        raise CheckpointError(f"expected {what}, got a directory {str(path)!r}{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"expected {what}, got {str(path)!r} (no such file)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"expected {what}, got an empty file {path.name!r} (0 bytes)")
    return path


_REFUSED = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def _is_zip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


_CODE_OPS = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def _pickled_code_reference(path) -> str | None:
    """For a legacy (non-zip) file that parses as a pickle stream referencing callables: the first
    ``module.name`` it references (or ``"a callable"``); None for anything else. Parsed with
    :mod:`pickletools` (opcodes only, nothing is run or imported)."""
    import pickletools

    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(f):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name == "GLOBAL" or op.name == "INST":
                    return str(arg).replace(" ", ".")
                if op.name == "STACK_GLOBAL":
                    return ".".join(strings[-2:]) if len(strings) >= 2 else "a callable"
                if op.name in _CODE_OPS:
                    return "a callable"
    except Exception:  # noqa: BLE001  not a pickle stream at all
        return None
    return None


def read_checkpoint(path) -> dict:
    """``torch.load(path, weights_only=True)`` with one clear error for files holding code, empty,
    truncated or corrupted files, and directories."""
    path = check_model_file(path, "a torch checkpoint file (.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # torch's message has ANSI codes
        if "Weights only load failed" not in text:
            raise CheckpointError(f"could not read {path.name} ({path.stat().st_size} bytes): expected a torch "
                                  f"checkpoint, got a file that is not one (or is corrupted)") from None
        m = _REFUSED.search(text)
        ref = m.group(1) if m else None if _is_zip(path) else _pickled_code_reference(path)
        if ref is None and not _is_zip(path):
            raise CheckpointError(f"could not read {path.name} ({path.stat().st_size} bytes): expected a torch "
                                  f"checkpoint (a zip archive written by torch.save), got a file that is not one "
                                  f"(it does not start with a zip header; garbage or another format)") from None
        what = f"pickled objects (a reference to {ref})" if ref else "pickled objects other than tensors"
        raise UnsafeCheckpointError(
            f"refused to load {path.name}: expected plain tensors and JSON config strings, but the file holds "
            f"{what}; unpickling it could run arbitrary code, so it was not loaded. Re-save the model's "
            f"state dict with plain tensors (or use dtwidgets.save_model) from a copy you trust.") from None
    except Exception as e:  # noqa: BLE001  torch raises RuntimeError/EOFError/KeyError for damaged files
        first = f"{type(e).__name__}: " + (re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split(". ")[0].strip() or "no message")
        raise CheckpointError(f"could not read {path.name} ({path.stat().st_size} bytes): expected a complete torch "
                              f"checkpoint (a zip archive written by torch.save), got a truncated or corrupted "
                              f"file ({first})") from None


def load_checkpoint(path, device="cpu") -> "DTAdapter":
    """Load a reference-format checkpoint; returns a :class:`~dtwidgets.model.DTAdapter` on ``device``
    (see :func:`load`)."""
    from .adapter import DTAdapter

    dev = resolve_device(device)
    ckpt = read_checkpoint(path)
    name = Path(path).name
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt or "model_config" not in ckpt:
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointKeyError(f"{name}: expected a checkpoint dict with 'model_state_dict' and 'model_config', got {keys}")
    model_cfg = _config_dict(ckpt["model_config"], "model_config", name)
    env_cfg = _config_dict(ckpt.get("environment_config"), "environment_config", name)
    sd = ckpt["model_state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{name}: expected model_state_dict to be a dict of tensors, got {type(sd).__name__}")
    cfg = _config_from_reference(sd, model_cfg, env_cfg, name)
    model = load_state(DecisionTransformer(cfg), sd, name)
    return DTAdapter(model, metadata={"source": str(path), "model_config": model_cfg, "environment_config": env_cfg,
                                      "offline_config": _config_dict(ckpt.get("offline_config"), "offline_config", name)}
                     ).to(dev)


def _config_dict(value, field: str, source: str) -> dict:
    """A checkpoint's config entry (a JSON string or a dict; None -> {}) as a dict, or a clear error."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise CheckpointError(f"{source}: expected {field} to be a JSON object, got text that is not JSON "
                                  f"({e}): {value[:80]!r}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: expected {field} to be a JSON object, got {type(value).__name__}")
    return dict(value)


def save_model(model, path) -> Path:
    """Save a model (or adapter) as safetensors: reference-layout tensors + ``DTConfig`` JSON."""
    from safetensors.torch import save_file

    model = getattr(model, "model", model)
    path = Path(path)
    save_file({k: v.contiguous() for k, v in state_dict_of(model).items()}, str(path),
              metadata={"dtwidgets_format": "1", "config": model.cfg.to_json()})
    return path


def load_model(path) -> DecisionTransformer:
    """Load a model saved by :func:`save_model`; returns the bare :class:`DecisionTransformer` module
    (for training). For analysis use :func:`load`, which returns a :class:`DTAdapter`."""
    from safetensors import safe_open

    path = check_model_file(path, "a .safetensors model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise CheckpointError(f"expected a safetensors file written by dtwidgets.save_model, could not read {path.name}: {e}") from None
    if meta.get("dtwidgets_format") != "1" or "config" not in meta:
        raise CheckpointError(f"expected dtwidgets_format '1' metadata with a config in {path.name}, got {sorted(meta)}")
    try:
        cfg = DTConfig.from_json(meta["config"], source=f"{path.name} (config metadata)")
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    return load_state(DecisionTransformer(cfg), sd, path.name)


def load(path, device="cpu", **hf_options):
    """Open any supported model as a :class:`~dtwidgets.adapters.ModelAdapter` (the one way to load),
    its weights on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a :class:`torch.device`;
    an unknown device or an accelerator this machine lacks raises a ValueError naming ``device``).
    Every analysis then runs there (``adapter.device``); results come back as numpy arrays.

    * a reference-format torch checkpoint (``.pt``, read with ``weights_only=True``) -> :func:`load_checkpoint`;
    * a ``.safetensors`` file written by :func:`save_model` -> a :class:`DTAdapter`;
    * a directory holding a HuggingFace ``DecisionTransformerModel`` (``config.json`` with ``model_type``
      ``"decision_transformer"``) -> ``dtwidgets.model.hf.load_hf_decision_transformer(path, **hf_options)``.

    The kind is read from the file's first bytes (a zip archive or a safetensors header), not from
    its name. ``hf_options`` (``env_id``, ``n_timesteps``, ...) apply to HuggingFace directories only.
    Anything else raises one :class:`CheckpointError` naming the path and what was expected.
    (:func:`load_model` returns the bare :class:`DecisionTransformer` module, for training.)
    """
    from .adapter import DTAdapter

    dev = resolve_device(device)
    path = Path(path)
    if path.is_dir():
        return _load_hf_dir(path, hf_options).to(dev)
    if hf_options:
        raise TypeError(f"load({path.name!r}): options {sorted(hf_options)} apply to HuggingFace model directories only")
    kind = _sniff(check_model_file(path, "a model file (.pt, .safetensors) or a HuggingFace model directory"))
    if kind == "torch":
        return load_checkpoint(path, dev)
    if kind == "safetensors":
        try:
            return DTAdapter(load_model(path), metadata={"source": str(path)}).to(dev)
        except CheckpointError as e:
            if (path.parent / "config.json").is_file():
                raise CheckpointError(f"{e} (a HuggingFace model? pass its directory {str(path.parent)!r})") from None
            raise
    raise CheckpointError(f"expected a model file: a torch checkpoint (.pt, a zip archive), a dtwidgets .safetensors "
                          f"file or a HuggingFace model directory, got {path.name!r} ({path.stat().st_size} bytes "
                          f"starting {path.read_bytes()[:8]!r})")


def _sniff(path: Path) -> str | None:
    """``"torch"`` (zip archive), ``"safetensors"`` (8-byte header length + JSON) or None, from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        return "torch"
    if len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8:
        return "safetensors"
    return None


def _load_hf_dir(path: Path, hf_options: dict):
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        shown = sorted(p.name for p in path.iterdir())[:8]
        raise CheckpointError(f"expected a model file or a HuggingFace model directory with a config.json, got the "
                              f"directory {str(path)!r} holding {shown}")
    try:
        model_type = json.loads(cfg_file.read_text()).get("model_type")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_file}: expected a JSON object (a HuggingFace config), could not read it: {e}") from None
    if model_type != "decision_transformer":
        raise CheckpointError(f"{cfg_file}: expected model_type 'decision_transformer' (a HuggingFace "
                              f"DecisionTransformerModel), got {model_type!r}")
    try:
        from .hf import load_hf_decision_transformer
    except ImportError as e:
        raise CheckpointError(f"{str(path)!r} holds a HuggingFace DecisionTransformerModel, which needs "
                              f"dtwidgets.model.hf and the transformers package: {e}") from None
    return load_hf_decision_transformer(path, **hf_options)
