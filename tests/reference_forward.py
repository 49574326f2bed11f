"""An independent plain-torch Decision Transformer forward written from the raw checkpoint tensors.

It follows the reference work's token layout and TransformerLens-1.x block equations and shares
no code with dtwidgets, so tests can compare the package against it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ACTS = {"relu": F.relu, "gelu": lambda x: F.gelu(x), "silu": F.silu,
        "gelu_new": lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
        "gelu_fast": lambda x: 0.5 * x * (1 + torch.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)))}


def raw_to_features(obs: torch.Tensor, one_hot: bool) -> torch.Tensor:
    """[..., W, H, 3] integer codes -> [..., C*W*H] with flat index c*W*H + x*H + y."""
    if one_hot:
        o = obs.long()
        obs = torch.cat([F.one_hot(o[..., 0], 11), F.one_hot(o[..., 1], 6), F.one_hot(o[..., 2], 3)], -1)
    W, H, C = obs.shape[-3:]
    out = torch.zeros(*obs.shape[:-3], C * W * H)
    for c in range(C):
        for x in range(W):
            for y in range(H):
                out[..., c * W * H + x * H + y] = obs[..., x, y, c].float()
    return out


def _ln(x, w=None, b=None, eps=1e-5):
    x = x - x.mean(-1, keepdim=True)
    x = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps)
    return x if w is None else x * w + b


def reference_logits(sd, mcfg, feats, rtgs, timesteps, actions, act_fn="relu", layer_norm=None, gated=False,
                     time_type="embedding", step=("R", "s", "a")):
    """Action logits at every state token, [B, T, n_actions].

    feats [B,T,n_obs] (zeros for padded steps), rtgs [B,T], timesteps [B,T], actions [B,T-1];
    ``step``: the tokens of one timestep (``("R", "s", "a")``, ``("s", "a")`` or ``("R", "s")``).
    """
    return reference_run(sd, mcfg, feats, rtgs, timesteps, actions, act_fn=act_fn, layer_norm=layer_norm,
                         gated=gated, time_type=time_type, step=step)[0]


def reference_run(sd, mcfg, feats, rtgs, timesteps, actions, act_fn="relu", layer_norm=None, gated=False,
                  time_type="embedding", edits=None, step=("R", "s", "a")):
    """``(logits [B, T, n_actions], cache)``: the forward of :func:`reference_logits`, with every
    activation recorded under its TransformerLens 3.9 hook name (shapes as TL 3.9 gives them:
    ``[B, P, d]`` residual / embedding terms, ``[B, P, H, d_head]`` q/k/v/z, ``[B, H, Q, K]`` scores
    (masked with -inf) / pattern, ``[B, P, 1]`` LayerNorm scales, ``[B, T(-1), d]`` the DT's own
    ``dt.hook_*``; ``hook_mlp_in`` as TL 3.9 with ``use_hook_mlp_in``: the MLP's input, not the
    residual stream), float64. ``edits`` ``{name: fn}``: the activation at ``name`` is replaced by
    ``fn(activation)`` where it is computed, and every later computation reads the edited value
    (the cache holds the edited value). ``step``: the tokens of one timestep in order, written out
    here token by token (the last timestep stops at its state token)."""
    edits = dict(edits or {})
    cache = {}

    def h(name, x):
        if name in edits:
            x = edits[name](x)
        cache[name] = x
        return x

    sd = {k: v.double() for k, v in sd.items()}
    feats, rtgs = feats.double(), rtgs.double()
    B, T, _ = feats.shape
    d = mcfg["d_model"]
    H = mcfg["n_heads"]
    dh = d // H
    if time_type == "embedding":
        time = sd["time_embedding.weight"][timesteps]
    else:
        time = timesteps.double()[..., None] * sd["time_embedding.weight"][:, 0] + sd["time_embedding.bias"]
    time = h("dt.hook_time_embed", time)
    if "R" in step:
        R = h("dt.hook_rtg_embed", rtgs[..., None] * sd["reward_embedding.0.weight"][:, 0]) + time
    S = h("dt.hook_state_embed", feats @ sd["state_embedding.weight"].T) + time
    if T > 1 and "a" in step:
        A = h("dt.hook_action_embed", sd["action_embedding.0.weight"][actions]) + time[:, :-1]
    seq, state_at = [], []
    for t in range(T):
        for kind in step:
            if kind == "R":
                seq.append(R[:, t])
            elif kind == "s":
                state_at.append(len(seq))
                seq.append(S[:, t])
            elif t < T - 1:  # the last step's action is the one predicted
                seq.append(A[:, t])
            if t == T - 1 and kind == "s":
                break
    P = len(seq)
    x = h("dt.hook_tokens", torch.stack(seq, 1))
    x = x + h("hook_pos_embed", sd["transformer.pos_embed.W_pos"][:P].expand(B, P, d))
    mask = torch.tril(torch.ones(P, P, dtype=torch.bool))
    act = ACTS[act_fn]

    def norm(v, name, w=None, b=None):
        if layer_norm not in ("LN", "LNPre"):
            return v
        v = v - v.mean(-1, keepdim=True)
        v = h(f"{name}.hook_normalized", v / h(f"{name}.hook_scale", torch.sqrt((v ** 2).mean(-1, keepdim=True) + 1e-5)))
        return v * sd[w] + sd[b] if layer_norm == "LN" else v

    for l in range(mcfg["n_layers"]):
        p = f"transformer.blocks.{l}."
        n = f"blocks.{l}."
        x = h(n + "hook_resid_pre", x)
        h1 = norm(x, n + "ln1", p + "ln1.w", p + "ln1.b")
        q = h(n + "attn.hook_q", torch.einsum("bpd,hde->bphe", h1, sd[p + "attn.W_Q"]) + sd[p + "attn.b_Q"])
        k = h(n + "attn.hook_k", torch.einsum("bpd,hde->bphe", h1, sd[p + "attn.W_K"]) + sd[p + "attn.b_K"])
        v = h(n + "attn.hook_v", torch.einsum("bpd,hde->bphe", h1, sd[p + "attn.W_V"]) + sd[p + "attn.b_V"])
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(dh)
        scores = h(n + "attn.hook_attn_scores", scores.masked_fill(~mask, float("-inf")))
        pattern = h(n + "attn.hook_pattern", torch.nan_to_num(scores.softmax(-1), nan=0.0))
        z = h(n + "attn.hook_z", torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        attn_out = h(n + "hook_attn_out", torch.einsum("bqhe,hed->bqd", z, sd[p + "attn.W_O"]) + sd[p + "attn.b_O"])
        x = h(n + "hook_resid_mid", x + attn_out)
        h2 = norm(h(n + "hook_mlp_in", x), n + "ln2", p + "ln2.w", p + "ln2.b")  # the MLP's input only
        if gated:
            pre = h(n + "mlp.hook_pre", h2 @ sd[p + "mlp.W_gate"])
            lin = h(n + "mlp.hook_pre_linear", h2 @ sd[p + "mlp.W_in"])
            post = h(n + "mlp.hook_post", act(pre) * lin + sd[p + "mlp.b_in"])
        else:
            post = h(n + "mlp.hook_post", act(h(n + "mlp.hook_pre", h2 @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])))
        mlp_out = h(n + "hook_mlp_out", post @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"])
        x = h(n + "hook_resid_post", x + mlp_out)
    x = norm(x, "ln_final", "transformer.ln_final.w", "transformer.ln_final.b")
    return (x[:, state_at] @ sd["action_predictor.weight"].T + sd["action_predictor.bias"]).float(), cache


def random_reference_checkpoint(path, *, d_model=32, n_heads=4, d_mlp=64, n_layers=2, n_ctx=26, layer_norm=None,
                                gated=False, one_hot=False, n_actions=7, view=7, max_steps=100, time_type="embedding",
                                act_fn="relu", seed=0):
    """Write a reference-format checkpoint (state dict + JSON configs) with random weights; returns (sd, cfgs)."""
    import json

    g = torch.Generator().manual_seed(seed)
    def r(*s):  # roughly unit-variance outputs: scale matrices by 1/sqrt(fan_in)
        fan_in = s[-2] if len(s) >= 2 else 9
        return 0.5 * torch.randn(*s, generator=g) / math.sqrt(fan_in)
    d, H, dh = d_model, n_heads, d_model // n_heads
    n_obs = (20 if one_hot else 3) * view * view
    sd = {
        "reward_embedding.0.weight": r(d, 1), "state_embedding.weight": r(d, n_obs),
        "action_embedding.0.weight": r(n_actions + 1, d),
        "action_predictor.weight": r(n_actions, d), "action_predictor.bias": r(n_actions),
        "state_predictor.weight": r(n_obs, d), "state_predictor.bias": r(n_obs),
        "reward_predictor.weight": r(1, d), "reward_predictor.bias": r(1),
        "transformer.pos_embed.W_pos": r(n_ctx, d),
    }
    if time_type == "embedding":
        sd["time_embedding.weight"] = r(max_steps + 1, d)
    else:
        sd["time_embedding.weight"], sd["time_embedding.bias"] = r(d, 1) * 0.01, r(d)
    for l in range(n_layers):
        p = f"transformer.blocks.{l}."
        for n in ("W_Q", "W_K", "W_V"):
            sd[p + "attn." + n] = r(H, d, dh)
        sd[p + "attn.W_O"] = r(H, dh, d)
        for n in ("b_Q", "b_K", "b_V"):
            sd[p + "attn." + n] = r(H, dh)
        sd[p + "attn.b_O"] = r(d)
        sd[p + "attn.mask"] = torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool))
        sd[p + "attn.IGNORE"] = torch.tensor(-1e5)
        sd[p + "mlp.W_in"], sd[p + "mlp.b_in"] = r(d, d_mlp), r(d_mlp)
        sd[p + "mlp.W_out"], sd[p + "mlp.b_out"] = r(d_mlp, d), r(d)
        if gated:
            sd[p + "mlp.W_gate"] = r(d, d_mlp)
        if layer_norm == "LN":
            for ln in ("ln1", "ln2"):
                sd[p + ln + ".w"], sd[p + ln + ".b"] = 1 + r(d), r(d)
    if layer_norm == "LN":
        sd["transformer.ln_final.w"], sd["transformer.ln_final.b"] = 1 + r(d), r(d)
    mcfg = {"d_model": d, "n_heads": H, "d_mlp": d_mlp, "n_layers": n_layers, "n_ctx": n_ctx,
            "layer_norm": layer_norm if layer_norm else False, "state_embedding_type": "grid",
            "time_embedding_type": time_type, "seed": seed, "gated_mlp": gated, "activation_fn": act_fn}
    ecfg = {"env_id": "MiniGrid-MemoryS7FixedStart-v0", "one_hot_obs": one_hot, "max_steps": max_steps,
            "view_size": view, "fully_observed": False}
    torch.save({"model_state_dict": sd, "model_config": json.dumps(mcfg), "environment_config": json.dumps(ecfg),
                "offline_config": json.dumps({"batch_size": 1})}, path)
    return sd, mcfg
