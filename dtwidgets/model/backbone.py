"""The TransformerLens backbone, under TransformerLens 3.x (HookedTransformer) or 4.x (TransformerBridge).

Both are driven the same way: ``backbone(tokens)`` with float token embeddings ``[B, P, d_model]``
adds the learned positional embedding ``W_pos[:P]`` (``hook_pos_embed`` fires), runs the blocks
and returns the final residual stream after ``ln_final`` (the unembed is an identity).
Weights move in and out in the reference work's HookedTransformer layout
(``blocks.{l}.attn.W_Q [H, d_model, d_head]`` ...), whatever the installed major.

TL 4's native gated MLP has no ``b_in``/``b_out``; :class:`GatedMLPBiases` restores them
faithfully with permanent hooks on ``blocks.{l}.mlp.hook_post`` and ``blocks.{l}.mlp.out.hook_out``.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from torch import nn

from ..adapters.hooks import bridge_point, mlp_post
from .config import DTConfig


@functools.cache
def tl_major() -> int:
    """Installed TransformerLens major version (3 or 4+)."""
    from importlib.metadata import version

    return int(version("transformer_lens").split(".")[0])


class _PosEmbedTokens(nn.Module):
    """TL 3.x positional embedding for float token-embedding input: returns ``W_pos[:P]``."""

    def __init__(self, n_ctx: int, d_model: int):
        super().__init__()
        self.W_pos = nn.Parameter(torch.zeros(n_ctx, d_model))

    def forward(self, tokens, past_kv_pos_offset: int = 0, attention_mask=None):
        P = tokens.shape[1]
        return self.W_pos[past_kv_pos_offset: past_kv_pos_offset + P].unsqueeze(0).expand(tokens.shape[0], -1, -1).clone()


def _act_fn(name: str) -> str:
    """TL 4 has no ``gelu_fast``: it is ``gelu_new`` with sqrt(2/pi) written as 0.7978845608 (equal to
    float32 precision), so it runs as ``gelu_new`` there; TL 3.9 runs its own."""
    return "gelu_new" if name == "gelu_fast" and tl_major() >= 4 else name


def _common_cfg(cfg: DTConfig) -> dict:
    return dict(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=cfg.n_ctx, d_head=cfg.d_head, n_heads=cfg.n_heads,
        d_mlp=cfg.d_mlp, d_vocab=cfg.d_model, d_vocab_out=cfg.d_model, act_fn=_act_fn(cfg.act_fn),
        normalization_type=cfg.layer_norm, gated_mlp=cfg.gated_mlp, attention_dir="causal", seed=cfg.seed,
    )


def build_backbone(cfg: DTConfig) -> nn.Module:
    """A randomly initialised TransformerLens backbone for ``cfg``."""
    if tl_major() >= 4:
        from transformer_lens import TransformerBridge, TransformerBridgeConfig

        bb = TransformerBridge.boot_native(TransformerBridgeConfig(attn_only=False, **_common_cfg(cfg)))
        with torch.no_grad():  # logits == final residual: identity unembed, unused token embedding
            bb.unembed.weight.copy_(torch.eye(cfg.d_model))
            bb.unembed.bias.zero_()
            bb.embed.weight.zero_()
        for p in (bb.unembed.weight, bb.unembed.bias, bb.embed.weight):
            p.requires_grad_(False)
        return bb
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ht = HookedTransformer(HookedTransformerConfig(default_prepend_bos=False, **_common_cfg(cfg)))
    ht.embed = nn.Identity()
    ht.unembed = nn.Identity()
    ht.pos_embed = _PosEmbedTokens(cfg.n_ctx, cfg.d_model)
    ht.setup()
    return ht


def _ht_block_keys(cfg: DTConfig, l: int) -> list[str]:
    p = f"blocks.{l}."
    keys = [p + f"attn.{n}" for n in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")]
    keys += [p + f"mlp.{n}" for n in ("W_in", "b_in", "W_out", "b_out")]
    if cfg.gated_mlp:
        keys.append(p + "mlp.W_gate")
    if cfg.layer_norm == "LN":
        keys += [p + f"{ln}.{wb}" for ln in ("ln1", "ln2") for wb in ("w", "b")]
    return keys


def ht_keys(cfg: DTConfig) -> list[str]:
    """The backbone's parameter names in HookedTransformer layout (what checkpoints store)."""
    keys = ["pos_embed.W_pos"]
    for l in range(cfg.n_layers):
        keys += _ht_block_keys(cfg, l)
    if cfg.layer_norm == "LN":
        keys += ["ln_final.w", "ln_final.b"]
    return keys


class GatedMLPBiases(nn.Module):
    """``b_in [L, d_mlp]`` and ``b_out [L, d_model]`` of gated MLPs, added by hooks on a TL 4 bridge."""

    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.b_in = nn.Parameter(torch.zeros(cfg.n_layers, cfg.d_mlp))
        self.b_out = nn.Parameter(torch.zeros(cfg.n_layers, cfg.d_model))

    def attach(self, bridge) -> None:
        for l in range(self.b_in.shape[0]):
            bridge.hook_dict[mlp_post(l)].add_hook(
                functools.partial(_add_bias, bias=self.b_in, layer=l), is_permanent=True)
            bridge.hook_dict[bridge_point(l, "mlp.out.hook_out")].add_hook(
                functools.partial(_add_bias, bias=self.b_out, layer=l), is_permanent=True)


def _add_bias(x, hook, bias, layer):
    if torch.is_inference_mode_enabled() or not torch.is_grad_enabled():
        return x.add_(bias[layer])  # no autograd graph to protect: skip the copy
    return x + bias[layer]


def load_backbone_weights(backbone: Any, cfg: DTConfig, sd: dict, gated_biases: GatedMLPBiases | None) -> None:
    """Load HookedTransformer-layout weights (``ht_keys(cfg)``; extra ``attn.mask``/``attn.IGNORE`` ignored)."""
    expected = ht_keys(cfg)
    missing = [k for k in expected if k not in sd]
    if missing:
        raise KeyError(f"checkpoint is missing backbone weights {missing}")
    sd = {k: sd[k] for k in expected}
    if tl_major() >= 4:
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

        if cfg.gated_mlp:
            assert gated_biases is not None, "a gated MLP under TransformerLens 4 needs its GatedMLPBiases"
            with torch.no_grad():
                gated_biases.b_in.copy_(torch.stack([sd.pop(f"blocks.{l}.mlp.b_in") for l in range(cfg.n_layers)]))
                gated_biases.b_out.copy_(torch.stack([sd.pop(f"blocks.{l}.mlp.b_out") for l in range(cfg.n_layers)]))
        conv = convert_tl_checkpoint(sd, backbone.cfg)
        own = backbone.state_dict()
        for k in ("embed.weight", "unembed.weight", "unembed.bias"):
            conv[k] = own[k]
        backbone.load_state_dict(conv, strict=True)
    else:
        result = backbone.load_state_dict(sd, strict=False)
        unexpected = [k for k in result.unexpected_keys]
        missing = [k for k in result.missing_keys if not k.endswith(("attn.mask", "attn.IGNORE"))]
        if unexpected or missing:
            raise KeyError(f"backbone weights did not match: missing {missing}, unexpected {unexpected}")


def export_backbone_weights(backbone: Any, cfg: DTConfig, gated_biases: GatedMLPBiases | None) -> dict:
    """The backbone's weights in HookedTransformer layout, detached copies."""
    if tl_major() < 4:
        own = backbone.state_dict()
        return {k: own[k].detach().clone() for k in ht_keys(cfg)}
    out = {"pos_embed.W_pos": backbone.W_pos}
    own = backbone.state_dict()
    for l in range(cfg.n_layers):
        p = f"blocks.{l}."
        for n in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out"):
            out[p + ("attn." if n[2] in "QKVO" else "mlp.") + n] = getattr(backbone, n)[l]
        if cfg.gated_mlp:
            assert gated_biases is not None, "a gated MLP under TransformerLens 4 needs its GatedMLPBiases"
            out[p + "mlp.W_gate"] = backbone.W_gate[l]
            out[p + "mlp.b_in"] = gated_biases.b_in[l]
            out[p + "mlp.b_out"] = gated_biases.b_out[l]
        else:
            out[p + "mlp.b_in"] = own[p + "mlp.in.bias"]
            out[p + "mlp.b_out"] = own[p + "mlp.out.bias"]
        if cfg.layer_norm == "LN":
            for ln in ("ln1", "ln2"):
                out[p + f"{ln}.w"] = own[p + f"{ln}.weight"]
                out[p + f"{ln}.b"] = own[p + f"{ln}.bias"]
    if cfg.layer_norm == "LN":
        out["ln_final.w"] = own["ln_final.weight"]
        out["ln_final.b"] = own["ln_final.bias"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}
