"""Bind a HuggingFace ``transformers`` ``DecisionTransformerModel`` to the :class:`ModelAdapter` protocol.

``load_hf_decision_transformer(model_or_dir, env_id=..., n_timesteps=...)`` converts the HF model's
GPT-2 blocks into a TransformerLens backbone (``HookedTransformer`` on TL 3.x, ``TransformerBridge``
on TL 4.x) and returns an :class:`~dtwidgets.model.hf_adapter.HFDTAdapter` whose logits equal the HF
forward. Conventions (state vector, actions, padding, ``embed_ln``, ``tanh``) are in
``docs/huggingface.md`` and :mod:`dtwidgets.model.hf_adapter`.

Weight mapping (HF ``Conv1D`` stores ``[in, out]``; TL's GPT-2 conversion, with ``n`` heads of size ``h``)::

    h.{l}.attn.c_attn.weight [d, 3d] -> W_Q, W_K, W_V [n, d, h]     c_attn.bias [3d] -> b_Q, b_K, b_V [n, h]
    h.{l}.attn.c_proj.weight [d, d]  -> W_O [n, h, d]               c_proj.bias -> b_O
    h.{l}.mlp.c_fc / c_proj          -> W_in [d, d_mlp], W_out [d_mlp, d] (no transpose), b_in, b_out
    h.{l}.ln_1, ln_2, ln_f           -> ln1, ln2, ln_final
    wpe.weight[0] + embed_ln.bias    -> every row of W_pos (HF's position ids are all zero)
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from ..adapters.schema import ObservationSchema
from .backbone import build_backbone, load_backbone_weights
from .config import DTConfig
from .hf_adapter import HFDTAdapter, HFEmbedding

BINDING_FILE = "dtwidgets_binding.json"
STATE_LAYOUTS = ("xyc", "cxy")
N_ONE_HOT = 20
# HF activation_function -> TransformerLens act_fn (numerically the same function)
ACT_FNS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_new", "gelu_fast": "gelu_fast",
           "gelu_pytorch_tanh": "gelu_new", "silu": "silu", "swish": "silu"}
TL_LN_EPS = 1e-5


@dataclass
class HFBinding:
    """How a HF DT's continuous inputs relate to a MiniGrid env (saved as ``dtwidgets_binding.json``).

    Attributes:
        env_id: the MiniGrid env id the model was trained on.
        n_timesteps: context length ``K`` in timesteps (windows hold ``3K - 1`` tokens).
        state_layout: flattening order of HF's ``states`` vector: ``"xyc"`` (``obs.reshape(-1)`` of a
            ``[W, H, C]`` array, the default) or ``"cxy"`` (dtwidgets' own feature order).
        state_mean, state_std: ``[state_dim]`` normalisation in HF's state order (``(s - mean) / std``), or None.
        rtg_scale: HF's ``returns_to_go = rtg / rtg_scale``.
        rtg_range: accepted RTGs ``(low, high)`` in reward units.
        action_names: one name per action (default: the env's).
    """

    env_id: str
    n_timesteps: int
    state_layout: str = "xyc"
    state_mean: list | None = None
    state_std: list | None = None
    rtg_scale: float = 1.0
    rtg_range: tuple = (-1.0, 1.0)
    action_names: tuple | None = None


def save_hf_decision_transformer(model, directory, **binding) -> Path:
    """``model.save_pretrained(directory)`` (safetensors) plus ``dtwidgets_binding.json`` from ``binding``
    (:class:`HFBinding` fields) so :func:`load_hf_decision_transformer` needs only the directory."""
    b = _binding({}, binding)
    d = Path(directory)
    model.save_pretrained(d, safe_serialization=True)
    data = asdict(b)
    for k in ("state_mean", "state_std"):
        if data[k] is not None:
            data[k] = [float(v) for v in torch.as_tensor(data[k]).reshape(-1).tolist()]
    (d / BINDING_FILE).write_text(json.dumps(data, indent=1))
    return d


def load_hf_decision_transformer(model_or_dir, *, env_id: str | None = None, n_timesteps: int | None = None,
                                 state_mean=None, state_std=None, state_layout: str | None = None,
                                 rtg_scale: float | None = None, rtg_range=None, action_names=None) -> HFDTAdapter:
    """A ``DecisionTransformerModel`` (object, or a ``save_pretrained`` directory) as an :class:`HFDTAdapter`.

    Args:
        model_or_dir: a ``transformers.DecisionTransformerModel``, or a directory with ``config.json`` and
            ``model.safetensors`` (or ``pytorch_model.bin``, read with ``weights_only=True``). A
            ``dtwidgets_binding.json`` there supplies defaults for the arguments below.
        env_id, n_timesteps, state_mean, state_std, state_layout, rtg_scale, rtg_range, action_names:
            see :class:`HFBinding`. ``env_id`` and ``n_timesteps`` are required (here or in the binding).

    The state input must be a flattened MiniGrid observation of the env's view: ``state_dim`` is
    ``W*H*3`` (raw codes) or ``W*H*20`` (one-hot in :func:`~dtwidgets.model.one_hot_observations` order);
    actions are one-hot over ``act_dim`` = the env's actions. Weights are copied (float32, CPU).
    """
    given = {k: v for k, v in dict(env_id=env_id, n_timesteps=n_timesteps, state_mean=state_mean, state_std=state_std,
                                   state_layout=state_layout, rtg_scale=rtg_scale, rtg_range=rtg_range,
                                   action_names=action_names).items() if v is not None}
    if isinstance(model_or_dir, (str, Path)):
        model, saved = _load_model_dir(Path(model_or_dir))
    else:
        model, saved = model_or_dir, {}
        if type(model).__name__ != "DecisionTransformerModel":
            raise TypeError(f"expected a transformers DecisionTransformerModel or a directory path, got {type(model).__name__}")
    b = _binding(saved, given)
    cfg = model.config
    _check_config(cfg)
    schema, names = _env_schema(b, cfg)
    perm = _feature_permutation(schema, b.state_layout)
    mean, std = _normalisation(b, cfg.state_dim)
    dtcfg = DTConfig(d_model=cfg.hidden_size, n_heads=cfg.n_head, d_mlp=cfg.n_inner or 4 * cfg.hidden_size,
                     n_layers=cfg.n_layer, n_ctx=3 * b.n_timesteps - 1, layer_norm="LN",
                     act_fn=ACT_FNS[cfg.activation_function], obs_shape=(*schema.grid_shape, 3),
                     n_actions=len(names), action_names=names, env_id=b.env_id)
    backbone = build_backbone(dtcfg)
    with torch.no_grad():
        load_backbone_weights(backbone, dtcfg, backbone_state_dict(model, dtcfg.n_ctx), None)
    head = model.predict_action[0]
    return HFDTAdapter(backbone, _embedding(model, perm, mean, std, b.rtg_scale), head.weight, head.bias,
                       torch.stack([blk.mlp.c_proj.bias.detach() for blk in model.encoder.h]), schema=schema,
                       n_timesteps=b.n_timesteps, action_names=names, rtg_range=b.rtg_range, env_id=b.env_id,
                       output_activation="tanh" if cfg.action_tanh else None, state_layout=b.state_layout,
                       hf_config=cfg, hf_model=model)


# ---- loading ---------------------------------------------------------------------------------------
def _load_model_dir(d: Path):
    """``(DecisionTransformerModel, saved binding dict)`` from a ``save_pretrained`` directory; never unpickles."""
    from transformers import DecisionTransformerConfig, DecisionTransformerModel

    if not d.is_dir():
        raise FileNotFoundError(f"expected a directory saved with DecisionTransformerModel.save_pretrained, got {str(d)!r} "
                                f"({'a file' if d.exists() else 'does not exist'})")
    data = _read_json(d / "config.json", "a HF config")
    if data.get("model_type") != "decision_transformer":
        raise ValueError(f"{d / 'config.json'}: expected model_type 'decision_transformer', got {data.get('model_type')!r}")
    try:
        cfg = DecisionTransformerConfig.from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{d / 'config.json'}: not a valid DecisionTransformerConfig: {e}") from None
    sd, source = _read_weights(d)
    model = DecisionTransformerModel(cfg)
    own = model.state_dict()
    unexpected = sorted(k for k in sd if k not in own and not k.endswith(("attn.bias", "attn.masked_bias")))
    missing = sorted(k for k in own if k not in sd)
    wrong = sorted(f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})" for k in own
                   if k in sd and tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        raise ValueError(f"{source}: weights do not match config.json: missing {missing[:8]}, unexpected {unexpected[:8]}, "
                         f"wrong shapes {wrong[:8]}")
    model.load_state_dict({k: sd[k] for k in own}, strict=True)
    binding = _read_json(d / BINDING_FILE, "a dtwidgets binding") if (d / BINDING_FILE).is_file() else {}
    return model.eval(), binding


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"expected {what} at {path}, but the file is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: expected {what} (JSON), could not parse it: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {what} (a JSON object), got {type(data).__name__}")
    return data


def _read_weights(d: Path) -> tuple[dict, Path]:
    from safetensors.torch import load_file

    st, bin_ = d / "model.safetensors", d / "pytorch_model.bin"
    if st.is_file():
        return load_file(str(st)), st
    if (d / "model.safetensors.index.json").is_file():
        index = _read_json(d / "model.safetensors.index.json", "a safetensors index")
        shards = sorted(set(index.get("weight_map", {}).values()))
        if not shards or any(Path(s).name != s for s in shards):
            raise ValueError(f"{d / 'model.safetensors.index.json'}: expected a weight_map of shard file names, got {shards}")
        sd = {}
        for s in shards:
            sd.update(load_file(str(d / s)))
        return sd, d / "model.safetensors.index.json"
    if bin_.is_file():
        try:
            sd = torch.load(bin_, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling refusal becomes one clear error
            raise ValueError(f"{bin_}: could not be read as plain tensors (weights_only=True): {e}") from None
        if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
            raise ValueError(f"{bin_}: expected a state dict of tensors, got {type(sd).__name__}")
        return sd, bin_
    present = sorted(p.name for p in d.iterdir())[:12]
    raise FileNotFoundError(f"{d}: expected model.safetensors (or pytorch_model.bin) next to config.json, found {present}")


# ---- checks ----------------------------------------------------------------------------------------
def _binding(saved: dict, given: dict) -> HFBinding:
    known = {f.name for f in fields(HFBinding)}
    unknown = sorted(set(saved) - known) + sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown binding keys {unknown}; expected a subset of {sorted(known)}")
    merged = {**saved, **given}
    missing = [k for k in ("env_id", "n_timesteps") if merged.get(k) is None]
    if missing:
        raise ValueError(f"expected {' and '.join(missing)} (argument or {BINDING_FILE}): which MiniGrid env the HF DT "
                         f"plays and its context length in timesteps")
    b = HFBinding(**merged)
    if not isinstance(b.env_id, str):
        raise ValueError(f"expected env_id to be a string, got {b.env_id!r}")
    if isinstance(b.n_timesteps, bool) or not isinstance(b.n_timesteps, int) or b.n_timesteps < 1:
        raise ValueError(f"expected n_timesteps to be an int >= 1, got {b.n_timesteps!r}")
    if b.state_layout not in STATE_LAYOUTS:
        raise ValueError(f"expected state_layout in {STATE_LAYOUTS}, got {b.state_layout!r}")
    try:
        b.rtg_scale = float(b.rtg_scale)
        lo, hi = (float(v) for v in b.rtg_range)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number rtg_scale and a (low, high) rtg_range, got {b.rtg_scale!r}, {b.rtg_range!r}") from None
    if not (math.isfinite(b.rtg_scale) and b.rtg_scale > 0 and lo < hi):
        raise ValueError(f"expected rtg_scale > 0 and rtg_range low < high, got {b.rtg_scale}, {(lo, hi)}")
    b.rtg_range = (lo, hi)
    return b


def _check_config(cfg) -> None:
    problems = []
    if cfg.activation_function not in ACT_FNS:
        problems.append(f"activation_function in {sorted(ACT_FNS)}, got {cfg.activation_function!r}")
    if not cfg.scale_attn_weights or cfg.scale_attn_by_inverse_layer_idx:
        problems.append("scale_attn_weights=True and scale_attn_by_inverse_layer_idx=False (standard 1/sqrt(d_head) scaling)")
    if cfg.add_cross_attention:
        problems.append("add_cross_attention=False")
    if abs(cfg.layer_norm_epsilon - TL_LN_EPS) > 1e-12:
        problems.append(f"layer_norm_epsilon {TL_LN_EPS} (the backbone's), got {cfg.layer_norm_epsilon}")
    if cfg.hidden_size % cfg.n_head:
        problems.append(f"hidden_size ({cfg.hidden_size}) divisible by n_head ({cfg.n_head})")
    if problems:
        raise ValueError("unsupported DecisionTransformerConfig: expected " + "; ".join(problems))


def _env_schema(b: HFBinding, cfg) -> tuple[ObservationSchema, tuple[str, ...]]:
    """The env's observation schema (raw or one-hot from ``state_dim``) and action names; clear errors."""
    from ..adapters.minigrid_env import MiniGridEnv

    env = MiniGridEnv(b.env_id, max_steps=1)
    try:
        (W, H), env_names = env.schema.grid_shape, env.action_names
    finally:
        env.close()
    if cfg.state_dim not in (W * H * 3, W * H * N_ONE_HOT):
        raise ValueError(f"HF config state_dim={cfg.state_dim} does not fit {b.env_id}'s {W}x{H} view: expected "
                         f"{W * H * 3} (flattened raw codes [{W}, {H}, 3]) or {W * H * N_ONE_HOT} (one-hot [{W}, {H}, 20])")
    if cfg.act_dim != len(env_names):
        raise ValueError(f"HF config act_dim={cfg.act_dim} does not match {b.env_id}'s {len(env_names)} actions "
                         f"{env_names}: expected one-hot actions over exactly the env's actions")
    names = tuple(env_names if b.action_names is None else (str(n) for n in b.action_names))
    if len(names) != cfg.act_dim:
        raise ValueError(f"expected {cfg.act_dim} action_names (act_dim), got {len(names)}: {names}")
    return ObservationSchema(grid_shape=(W, H), one_hot=cfg.state_dim == W * H * N_ONE_HOT), names


def _feature_permutation(schema: ObservationSchema, layout: str) -> torch.Tensor:
    """``perm [F]``: dtwidgets feature ``f = c*W*H + x*H + y`` is HF state entry ``perm[f]``."""
    (W, H), C = schema.grid_shape, schema.n_channels
    idx = torch.arange(W * H * C)
    return idx.reshape(W, H, C).permute(2, 0, 1).reshape(-1) if layout == "xyc" else idx


def _normalisation(b: HFBinding, state_dim: int):
    out = []
    for name, v, default in (("state_mean", b.state_mean, 0.0), ("state_std", b.state_std, 1.0)):
        t = torch.full((state_dim,), default, dtype=torch.float64) if v is None else \
            torch.as_tensor(v.detach() if torch.is_tensor(v) else v, dtype=torch.float64).reshape(-1)
        if t.numel() != state_dim or not torch.isfinite(t).all():
            raise ValueError(f"expected {name} with {state_dim} finite values (state_dim), got {t.numel()} values"
                             + ("" if torch.isfinite(t).all() else " with non-finite entries"))
        out.append(t)
    if (out[1] <= 0).any():
        raise ValueError(f"expected state_std > 0 everywhere (pass the std your training divided by, e.g. std + 1e-6), "
                         f"got {int((out[1] <= 0).sum())} entries <= 0")
    return out


# ---- conversion ------------------------------------------------------------------------------------
@torch.no_grad()
def backbone_state_dict(model, n_ctx: int) -> dict[str, torch.Tensor]:
    """The HF encoder's weights in HookedTransformer layout (see the module docstring), float32 copies."""
    enc, cfg = model.encoder, model.config
    d, n = cfg.hidden_size, cfg.n_head
    h = d // n
    f = lambda t: t.detach().float().cpu().clone().contiguous()  # noqa: E731
    sd = {"pos_embed.W_pos": f((enc.wpe.weight[0] + model.embed_ln.bias).expand(n_ctx, d))}
    for l, blk in enumerate(enc.h):
        p = f"blocks.{l}."
        for name, w, b in zip("QKV", blk.attn.c_attn.weight.split(d, dim=1), blk.attn.c_attn.bias.split(d)):
            sd[p + f"attn.W_{name}"] = f(w.reshape(d, n, h).permute(1, 0, 2))
            sd[p + f"attn.b_{name}"] = f(b.reshape(n, h))
        sd[p + "attn.W_O"], sd[p + "attn.b_O"] = f(blk.attn.c_proj.weight.reshape(n, h, d)), f(blk.attn.c_proj.bias)
        sd[p + "mlp.W_in"], sd[p + "mlp.b_in"] = f(blk.mlp.c_fc.weight), f(blk.mlp.c_fc.bias)
        sd[p + "mlp.W_out"], sd[p + "mlp.b_out"] = f(blk.mlp.c_proj.weight), f(blk.mlp.c_proj.bias)
        for ln, hf_ln in (("ln1", blk.ln_1), ("ln2", blk.ln_2)):
            sd[p + f"{ln}.w"], sd[p + f"{ln}.b"] = f(hf_ln.weight), f(hf_ln.bias)
    sd["ln_final.w"], sd["ln_final.b"] = f(enc.ln_f.weight), f(enc.ln_f.bias)
    return sd


@torch.no_grad()
def _embedding(model, perm: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, rtg_scale: float) -> HFEmbedding:
    """``embed_state`` and the state normalisation with columns in dtwidgets' feature order (HF's arithmetic)."""
    tensors = {
        "W_state_hf": model.embed_state.weight[:, perm], "b_state": model.embed_state.bias,
        "mean": mean[perm], "std": std[perm],
        "w_rtg": model.embed_return.weight[:, 0], "b_rtg": model.embed_return.bias,
        "W_act": model.embed_action.weight, "b_act": model.embed_action.bias,
        "time": model.embed_timestep.weight, "ln_w": model.embed_ln.weight,
    }
    return HFEmbedding(tensors, eps=model.embed_ln.eps, rtg_scale=rtg_scale)
