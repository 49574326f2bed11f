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

from ..adapters.device import resolve_device
from ..adapters.schema import ObservationSchema
from .backbone import build_backbone, load_backbone_weights
from .checkpoint import check_finite
from .config import SIZE_LIMITS, DTConfig
from .hf_adapter import HFDTAdapter, HFEmbedding
from .hf_files import ACT_FNS, check_hf_config, load_hf_model, read_hf_config, read_json

BINDING_FILE = "dtwidgets_binding.json"
STATE_LAYOUTS = ("xyc", "cxy")
N_ONE_HOT = 20
MAX_TIMESTEPS = (SIZE_LIMITS["n_ctx"] + 1) // 3  # context length K: 3K - 1 tokens


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
                                 rtg_scale: float | None = None, rtg_range=None, action_names=None,
                                 device="cpu") -> HFDTAdapter:
    """A ``DecisionTransformerModel`` (object, or a ``save_pretrained`` directory) as an :class:`HFDTAdapter`.

    Args:
        model_or_dir: a ``transformers.DecisionTransformerModel``, or a directory with ``config.json`` and
            ``model.safetensors`` (or ``pytorch_model.bin``, read with ``weights_only=True``). A
            ``dtwidgets_binding.json`` there supplies defaults for the arguments below.
        env_id, n_timesteps, state_mean, state_std, state_layout, rtg_scale, rtg_range, action_names:
            see :class:`HFBinding`. ``env_id`` and ``n_timesteps`` are required (here or in the binding).
        device: where the adapter's weights go (``"cpu"``, ``"cuda"``...; checked first).

    The state input must be a flattened MiniGrid observation of the env's view: ``state_dim`` is
    ``W*H*3`` (raw codes) or ``W*H*20`` (one-hot in :func:`~dtwidgets.model.one_hot_observations` order);
    actions are one-hot over ``act_dim`` = the env's actions. Weights are copied (float32, on ``device``).
    """
    dev = resolve_device(device)
    given = {k: v for k, v in dict(env_id=env_id, n_timesteps=n_timesteps, state_mean=state_mean, state_std=state_std,
                                   state_layout=state_layout, rtg_scale=rtg_scale, rtg_range=rtg_range,
                                   action_names=action_names).items() if v is not None}
    model, cfg, b, schema, names = _open(model_or_dir, given)
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
                       hf_config=cfg, hf_model=model).to(dev)


# ---- opening and checks ----------------------------------------------------------------------------
def _open(model_or_dir, given: dict):
    """``(model, HF config, binding, schema, action names)``; a directory's config, binding and env fit are all
    checked before its weights are read (see :mod:`dtwidgets.model.hf_files`)."""
    if isinstance(model_or_dir, (str, Path)):
        d = Path(model_or_dir)
        if not d.is_dir():
            raise FileNotFoundError(f"expected a directory saved with DecisionTransformerModel.save_pretrained, got "
                                    f"{str(d)!r} ({'a file' if d.exists() else 'does not exist'})")
        cfg = read_hf_config(d)
        saved = read_json(d / BINDING_FILE, "a dtwidgets binding") if (d / BINDING_FILE).is_file() else {}
        b = _binding(saved, given, d / BINDING_FILE)
        schema, names = _env_schema(b, cfg)
        return load_hf_model(d, cfg), cfg, b, schema, names
    model = model_or_dir
    if type(model).__name__ != "DecisionTransformerModel":
        raise TypeError(f"expected a transformers DecisionTransformerModel or a directory path, got {type(model).__name__}")
    check_hf_config(model.config, "the DecisionTransformerModel's config")
    b = _binding({}, given)
    schema, names = _env_schema(b, model.config)
    check_finite(dict(model.named_parameters()), "the DecisionTransformerModel")
    return model, model.config, b, schema, names


def _binding(saved: dict, given: dict, path: Path | None = None) -> HFBinding:
    """The merged binding (arguments override ``saved``, read from ``path``); errors name where a value came from."""
    known = {f.name for f in fields(HFBinding)}
    unknown = sorted(set(saved) - known) + sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown binding keys {unknown}; expected a subset of {sorted(known)}")
    merged = {**saved, **given}
    missing = [k for k in ("env_id", "n_timesteps") if merged.get(k) is None]
    if missing:
        raise ValueError(f"expected {' and '.join(missing)} (argument or {BINDING_FILE}): which MiniGrid env the HF DT "
                         f"plays and its context length in timesteps")

    def where(*keys: str) -> str:
        return f"{path}: " if path is not None and any(k in saved and k not in given for k in keys) else ""

    b = HFBinding(**merged)
    if not isinstance(b.env_id, str):
        raise ValueError(f"{where('env_id')}expected env_id to be a string, got {b.env_id!r}")
    if isinstance(b.n_timesteps, bool) or not isinstance(b.n_timesteps, int) or not 1 <= b.n_timesteps <= MAX_TIMESTEPS:
        raise ValueError(f"{where('n_timesteps')}expected n_timesteps to be an int in [1, {MAX_TIMESTEPS}], got {b.n_timesteps!r}")
    if b.state_layout not in STATE_LAYOUTS:
        raise ValueError(f"{where('state_layout')}expected state_layout in {STATE_LAYOUTS}, got {b.state_layout!r}")
    try:
        b.rtg_scale = float(b.rtg_scale)
        lo, hi = (float(v) for v in b.rtg_range)
    except (TypeError, ValueError):
        raise ValueError(f"{where('rtg_scale', 'rtg_range')}expected a number rtg_scale and a (low, high) rtg_range, "
                         f"got {b.rtg_scale!r}, {b.rtg_range!r}") from None
    if not (math.isfinite(b.rtg_scale) and b.rtg_scale > 0 and math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{where('rtg_scale', 'rtg_range')}expected rtg_scale > 0 and a finite rtg_range low < high, "
                         f"got {b.rtg_scale}, {(lo, hi)}")
    b.rtg_range = (lo, hi)
    if b.action_names is not None and (isinstance(b.action_names, str) or not isinstance(b.action_names, (list, tuple))):
        raise ValueError(f"{where('action_names')}expected action_names as a list of strings, got {b.action_names!r}")
    for k in ("state_mean", "state_std"):
        v = getattr(b, k)
        try:
            setattr(b, k, None if v is None else torch.as_tensor(v.detach() if torch.is_tensor(v) else v, dtype=torch.float64))
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{where(k)}expected {k} as a list of numbers, got {str(v)[:60]!r} ({e})") from None
    return b


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
            torch.as_tensor(v, dtype=torch.float64).reshape(-1)
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
