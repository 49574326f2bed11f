"""Reading and validating a HuggingFace ``DecisionTransformerModel`` directory (``save_pretrained``) before
anything is allocated; one :class:`~dtwidgets.model.CheckpointError` naming the file, field, expected and got.

Order (nothing large exists until the last step):

1. ``config.json``: JSON object, ``model_type``, every size field's type and range (the bounds are
   :data:`dtwidgets.model.config.SIZE_LIMITS`, the ones our own configs obey), ``hidden_size % n_head``,
   the supported architecture (:func:`check_hf_config`, also run on a model object);
2. the parameter count of that config, from a ``DecisionTransformerModel`` built on the meta device
   (shapes only, no memory), against :data:`~dtwidgets.model.config.MAX_PARAMETERS` and against the
   bytes the weight files hold;
3. the weight files' headers (``model.safetensors``, a sharded ``model.safetensors.index.json`` with
   plain shard file names inside the folder, or ``pytorch_model.bin`` read by
   :func:`~dtwidgets.model.checkpoint.read_checkpoint`, ``weights_only=True``: never unpickled):
   names, shapes and float dtypes against the config; then the tensors, finite
   (:func:`~dtwidgets.model.checkpoint.check_finite`), assigned into the meta model as float32.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import torch

from .checkpoint import CheckpointError, UnsafeCheckpointError, check_finite, read_checkpoint
from .config import GRID_SIDE_LIMIT, MAX_PARAMETERS, SIZE_LIMITS

# HF activation_function -> TransformerLens act_fn computing the same function (to float rounding) on both
# TL majors. The tanh-approximate GELUs differ only in how the formula is written (gelu_fast's constant
# 0.7978845608 is sqrt(2/pi) to 10 digits). Every other HF activation is refused at load.
ACT_FNS = {"relu": "relu", "gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_new", "gelu_fast": "gelu_new",
           "gelu_pytorch_tanh": "gelu_new", "gelu_python_tanh": "gelu_new", "gelu_accurate": "gelu_new",
           "silu": "silu", "swish": "silu"}
TL_LN_EPS = 1e-5
TABLE_ROWS_LIMIT = 1_000_000  # wpe (n_positions) and the unused wte (vocab_size) rows
#: integer fields: (low, high) inclusive; ``n_inner`` may also be None (4 * hidden_size)
INT_FIELDS = {
    "state_dim": (1, GRID_SIDE_LIMIT * GRID_SIDE_LIMIT * 20), "act_dim": (1, SIZE_LIMITS["n_actions"]),
    "hidden_size": (1, SIZE_LIMITS["d_model"]), "n_head": (1, SIZE_LIMITS["n_heads"]),
    "n_layer": (1, SIZE_LIMITS["n_layers"]), "n_inner": (1, SIZE_LIMITS["d_mlp"]),
    "max_ep_len": (1, SIZE_LIMITS["max_timestep"] + 1), "n_positions": (1, TABLE_ROWS_LIMIT),
    "vocab_size": (0, TABLE_ROWS_LIMIT),
}
BOOL_FIELDS = ("action_tanh", "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "add_cross_attention",
               "reorder_and_upcast_attn")
ALIASES = {"n_positions": "max_position_embeddings", "n_head": "num_attention_heads", "n_layer": "num_hidden_layers"}
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
INDEX_FILE, ST_FILE, BIN_FILE = "model.safetensors.index.json", "model.safetensors", "pytorch_model.bin"


def _got(v) -> str:
    return f"{type(v).__name__} {v!r}"


def _field_problem(name: str, v) -> str | None:
    """What is wrong with config field ``name`` = ``v`` (types and ranges), or None."""
    if name in INT_FIELDS:
        lo, hi = INT_FIELDS[name]
        if name == "n_inner" and v is None:
            return None
        what = f"{'None or ' if name == 'n_inner' else ''}an integer in [{lo}, {hi:,}]"
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            return f"{what}, got {_got(v)}"
        return None if lo <= int(v) <= hi else f"{what}, got {int(v):,}"
    if name in BOOL_FIELDS:
        return None if isinstance(v, bool) else f"true or false, got {_got(v)}"
    if name == "layer_norm_epsilon":
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            return f"a number ({TL_LN_EPS}, the backbone's), got {_got(v)}"
        return None if abs(float(v) - TL_LN_EPS) <= 1e-12 else f"{TL_LN_EPS} (the backbone's), got {v}"
    if name == "activation_function":
        if v in ACT_FNS:
            return None
        return (f"one of {sorted(ACT_FNS)} (each equals HF's function on both TransformerLens majors; the others "
                f"are not supported), got {v!r}" if isinstance(v, str) else f"one of {sorted(ACT_FNS)}, got {_got(v)}")
    return None


def _raw_problems(data: dict) -> list[str]:
    """Problems of the fields present in a config.json dict (aliases included), before transformers reads it."""
    out = []
    for name in (*INT_FIELDS, *BOOL_FIELDS, "layer_norm_epsilon", "activation_function"):
        for key in (name, ALIASES.get(name)):
            if key is not None and key in data and (p := _field_problem(name, data[key])):
                out.append(f"field {name}{f' (as {key})' if key != name else ''}: expected {p}")
    return out


def check_hf_config(cfg, source: str) -> None:
    """Types, ranges and the supported architecture of a ``DecisionTransformerConfig``; one CheckpointError."""
    problems = [f"field {n}: expected {p}" for n in (*INT_FIELDS, *BOOL_FIELDS, "layer_norm_epsilon", "activation_function")
                if (p := _field_problem(n, getattr(cfg, n, None)))]
    if not problems:
        if cfg.hidden_size % cfg.n_head:
            problems.append(f"field hidden_size: expected an integer divisible by n_head ({cfg.n_head}), "
                            f"got {cfg.hidden_size}")
        if not cfg.scale_attn_weights:
            problems.append("field scale_attn_weights: expected true (standard 1/sqrt(d_head) scaling), got false")
        if cfg.scale_attn_by_inverse_layer_idx:
            problems.append("field scale_attn_by_inverse_layer_idx: expected false, got true")
        if cfg.add_cross_attention:
            problems.append("field add_cross_attention: expected false (no cross-attention), got true")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))


def read_hf_config(d: Path):
    """The ``DecisionTransformerConfig`` of directory ``d``, fully validated (nothing is built)."""
    from transformers import DecisionTransformerConfig

    path = d / "config.json"
    data = read_json(path, "a HF config")
    if data.get("model_type") != "decision_transformer":
        raise CheckpointError(f"{path}: expected model_type 'decision_transformer', got {data.get('model_type')!r}")
    problems = _raw_problems(data)
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))
    try:
        cfg = DecisionTransformerConfig.from_dict(data)
    except Exception as e:  # noqa: BLE001 - transformers' own (strict dataclass) validation, any field
        raise CheckpointError(f"{path}: expected a valid DecisionTransformerConfig, got {type(e).__name__}: {e}") from None
    check_hf_config(cfg, str(path))
    return cfg


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; FileNotFoundError when missing, CheckpointError when not a JSON object."""
    if not path.is_file():
        raise FileNotFoundError(f"expected {what} at {path}, but the file is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: expected {what} (JSON), could not parse it: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected {what} (a JSON object), got {type(data).__name__}")
    return data


# ---- weights ---------------------------------------------------------------------------------------
def load_hf_model(d: Path, cfg):
    """The ``DecisionTransformerModel`` of ``d`` (float32, eval) for a config from :func:`read_hf_config`."""
    from transformers import DecisionTransformerModel

    with torch.device("meta"):
        model = DecisionTransformerModel(cfg)  # shapes only: no memory, no initialisation
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    n_params = sum(math.prod(s) for s in shapes.values())
    if n_params > MAX_PARAMETERS:
        raise CheckpointError(f"{d / 'config.json'}: expected at most {MAX_PARAMETERS:,} parameters, got {n_params:,} "
                              f"(hidden_size {cfg.hidden_size}, n_layer {cfg.n_layer}, n_inner {cfg.n_inner}, "
                              f"max_ep_len {cfg.max_ep_len}, n_positions {cfg.n_positions}, vocab_size {cfg.vocab_size})")
    source, plan = _weight_files(d)
    files = [d / name for name in plan]
    held = sum(f.stat().st_size for f in files)
    if held < 2 * n_params:
        raise CheckpointError(f"{d / 'config.json'} declares {n_params:,} parameters, which need at least "
                              f"{2 * n_params:,} bytes (float16), but {', '.join(f.name for f in files)} hold"
                              f"{'s' if len(files) == 1 else ''} only {held:,} bytes: a truncated file or the "
                              f"config of another model")
    sd = _read_bin(source, shapes) if source.name == BIN_FILE else _read_safetensors(d, source, plan, shapes)
    model.load_state_dict(sd, strict=True, assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:  # a transformers version with buffers outside the state dict: never run on uninitialised memory
        raise RuntimeError(f"{d}: DecisionTransformerModel has tensors no weight file sets: {left[:8]}")
    return model.eval()


def _weight_files(d: Path) -> tuple[Path, dict[str, list[str] | None]]:
    """``(the file to name in errors, {weight file name: tensor names an index assigns to it, or None}}``."""
    if (d / ST_FILE).is_file():
        return d / ST_FILE, {ST_FILE: None}
    if (d / INDEX_FILE).is_file():
        return d / INDEX_FILE, dict(_shard_map(d))
    if (d / BIN_FILE).is_file():
        return d / BIN_FILE, {BIN_FILE: None}
    present = sorted(p.name for p in d.iterdir())[:12]
    raise FileNotFoundError(f"{d}: expected {ST_FILE} (or {INDEX_FILE}, {BIN_FILE}) next to config.json, found {present}")


def _shard_map(d: Path) -> dict[str, list[str]]:
    """``{shard file name: [tensor names]}`` from the index; shards are plain file names present in ``d``."""
    path = d / INDEX_FILE
    index = read_json(path, "a safetensors index")
    wm = index.get("weight_map")
    if not isinstance(wm, dict):
        raise CheckpointError(f"{path}: expected weight_map to be a JSON object (tensor name -> shard file name), "
                              f"got {_got(wm)[:120]}")
    if not wm:
        raise CheckpointError(f"{path}: expected a non-empty weight_map, got {{}}")
    shards: dict[str, list[str]] = {}
    for key, s in wm.items():
        if not isinstance(s, str) or not s or Path(s).name != s or s in (".", "..") or "\\" in s:
            raise CheckpointError(f"{path}: expected shard file names as plain file names inside {d} (no folders, "
                                  f"no absolute paths), got {s!r} for tensor {key!r}")
        shards.setdefault(s, []).append(key)
    for s in shards:
        if not (d / s).is_file():
            raise CheckpointError(f"{path}: names shard {s!r} ({len(shards[s])} tensors), but {d / s} is missing")
    return shards


def _check_dtypes(path, header: dict[str, tuple[tuple, str]]) -> None:
    for k, (_, dtype) in header.items():
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{path}: tensor {k}: expected a float dtype ({', '.join(FLOAT_DTYPES)}), got {dtype}")


def _check_shapes(source, header: dict[str, tuple[tuple, str]], shapes: dict[str, tuple]) -> None:
    """Names and shapes (``header[name] = (shape, dtype)``) against the config's ``shapes``."""
    missing = sorted(k for k in shapes if k not in header)
    unexpected = sorted(k for k in header if k not in shapes)
    wrong = sorted(f"{k} {header[k][0]} (expected {shapes[k]})" for k in shapes if k in header and header[k][0] != shapes[k])
    if missing or unexpected or wrong:
        raise CheckpointError(f"{source}: weights do not match config.json: missing {missing[:8]}, unexpected "
                              f"{unexpected[:8]}, wrong shapes {wrong[:8]}")


def _without_old_buffers(header: dict) -> dict:
    return {k: v for k, v in header.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # old GPT-2 buffers


def _open_safetensors(path: Path):
    """``(header {name: (shape, dtype)}, the open file)``; one CheckpointError for anything unreadable."""
    from safetensors import safe_open

    try:
        f = safe_open(str(path), framework="pt")
        header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path}: expected a complete safetensors file, could not read it "
                              f"({path.stat().st_size:,} bytes; {type(e).__name__}: {e})") from None
    return _without_old_buffers(header), f


def _read_safetensors(d: Path, source: Path, plan: dict, shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Headers of every file checked first (names, shapes, dtypes, the index's assignment); then the tensors."""
    header: dict[str, tuple[tuple, str]] = {}
    opened = {}
    for name, listed in plan.items():
        h, opened[name] = _open_safetensors(d / name)
        if listed is not None:
            absent, extra = sorted(set(listed) - set(h)), sorted(set(h) - set(listed))
            if absent:
                raise CheckpointError(f"{d / name}: expected the tensors the index assigns to it, missing {absent[:8]} "
                                      f"({source})")
            if extra:
                raise CheckpointError(f"{d / name}: holds tensors the index does not assign to it: {extra[:8]} ({source})")
        _check_dtypes(d / name, h)
        header.update(h)
    _check_shapes(source, header, shapes)
    sd: dict[str, torch.Tensor] = {}
    for name, f in opened.items():
        try:
            part = {k: f.get_tensor(k).float() for k in plan[name] or shapes if k in shapes}
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{d / name}: could not read its tensors ({type(e).__name__}: {e})") from None
        check_finite(part, str(d / name))
        sd.update(part)
    return sd


def _read_bin(path: Path, shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """``pytorch_model.bin`` through :func:`read_checkpoint` (``weights_only=True``: code is refused unrun)."""
    try:
        sd = read_checkpoint(path)
    except (CheckpointError, UnsafeCheckpointError) as e:
        raise type(e)(f"{path}: {e}") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a state dict (tensor names to tensors), got {type(sd).__name__}")
    bad = next((k for k, v in sd.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: expected a state dict (tensor names to tensors), but {bad!r} is "
                              f"{type(sd[bad]).__name__}")
    header = _without_old_buffers({k: (tuple(v.shape), _dtype_name(v)) for k, v in sd.items()})
    _check_dtypes(path, header)
    _check_shapes(path, header, shapes)
    out = {k: sd[k].float() for k in shapes}
    check_finite(out, str(path))
    return out


def _dtype_name(t: torch.Tensor) -> str:
    names = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64"}
    return names.get(t.dtype, str(t.dtype).replace("torch.", "").upper())
