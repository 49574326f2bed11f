"""Direct path patching with every sender of the residual stream (embeddings, heads, MLPs) against an
independent plain-torch forward from the reference-layout weights (its own embedding, its own blocks;
no dtwidgets code): every edge, the "all senders" patch against replacing the receiver's whole input,
the frozen-LN sum rule, zero for identical runs; heads → heads also against TransformerLens 3.9's
get_act_patch_direct_path."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.model import tl_major
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features

MULTI = ["ln-gated-onehot-26tok", "lnpre-8tok", "ln-3layers-linear-time-5tok", "noLN-gated-gelu-26tok"]


# ---- the independent computation ------------------------------------------------------------------
class Plain:
    """A plain-torch float64 DT forward from the reference checkpoint tensors that records every
    sender's write and can patch one receiver (a head's q/k/v input, or the final residual)."""

    def __init__(self, a):
        self.a, self.cfg = a, a.cfg
        self.sd = {k: v.double() for k, v in state_dict_of(a.model).items()}
        self._emb: dict[int, dict] = {}

    def ln(self, x, pre, scale_of=None):
        if not self.cfg.layer_norm:
            return x
        ref = x if scale_of is None else scale_of
        ref = ref - ref.mean(-1, keepdim=True)
        x = (x - x.mean(-1, keepdim=True)) / torch.sqrt((ref ** 2).mean(-1, keepdim=True) + 1e-5)
        return x * self.sd[pre + ".w"] + self.sd[pre + ".b"] if self.cfg.layer_norm == "LN" else x

    def embeddings(self, w):
        """``{"RTG embed", "state embed", "action embed", "time embed": [P, d]}`` placed at their tokens."""
        sd, T = self.sd, w.observations.shape[1]
        P, d = 3 * T - 1, self.cfg.d_model
        obs = w.observations[0]
        feats = (raw_to_features(obs, self.cfg.one_hot_obs) * (torch.arange(T) >= w.n_pad[0])[:, None]).double()
        ts = w.timesteps[0]
        if self.cfg.time_embedding_type == "embedding":
            time = sd["time_embedding.weight"][ts]
        else:
            time = ts.double()[:, None] * sd["time_embedding.weight"][:, 0] + sd["time_embedding.bias"]
        out = {k: torch.zeros(P, d, dtype=torch.float64) for k in ("RTG embed", "state embed", "action embed", "time embed")}
        out["RTG embed"][0::3] = w.rtgs[0].double()[:, None] * sd["reward_embedding.0.weight"][:, 0]
        out["state embed"][1::3] = feats @ sd["state_embedding.weight"].T
        out["action embed"][2::3] = sd["action_embedding.0.weight"][w.actions[0]]
        out["time embed"] = time[torch.arange(P) // 3]
        return out

    def run(self, w, receiver=None, delta=None, frozen=False, new_input=None):
        """Logits at the prediction token and the writes. ``receiver`` (l, h, "q"|"k"|"v"), (l, None, "mlp")
        or "action head" reads ``x + delta`` (or ``new_input``: its whole input replaced) instead of ``x``."""
        cfg, sd = self.cfg, self.sd
        if id(w) not in self._emb:
            self._emb[id(w)] = self.embeddings(w)
        emb = self._emb[id(w)]
        x = sum(emb.values()) + sd["transformer.pos_embed.W_pos"][:3 * w.observations.shape[1] - 1]
        P = x.shape[0]
        H, dh = cfg.n_heads, cfg.d_model // cfg.n_heads
        writes, resid, self.mid = dict(emb), [], []
        act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu}[cfg.act_fn]
        for l in range(cfg.n_layers):
            p = f"transformer.blocks.{l}."
            resid.append(x)
            qkv = {}
            for c in "QKV":
                qkv[c] = torch.einsum("pd,hde->phe", self.ln(x, p + "ln1"), sd[p + f"attn.W_{c}"]) + sd[p + f"attn.b_{c}"]
                if receiver not in (None, "action head") and receiver[0] == l and receiver[2] == c.lower():
                    h = receiver[1]
                    x_r = new_input if new_input is not None else x + delta
                    x_r = self.ln(x_r, p + "ln1", scale_of=x if frozen else None)
                    qkv[c][:, h] = x_r @ sd[p + f"attn.W_{c}"][h] + sd[p + f"attn.b_{c}"][h]
            s = torch.einsum("qhe,khe->hqk", qkv["Q"], qkv["K"]) / math.sqrt(dh)
            s = s.masked_fill(~torch.tril(torch.ones(P, P, dtype=torch.bool)), float("-inf"))
            z = torch.einsum("hqk,khe->qhe", s.softmax(-1), qkv["V"])
            for h in range(H):
                writes[f"L{l}H{h}"] = z[:, h] @ sd[p + "attn.W_O"][h]
            x = x + torch.einsum("qhe,hed->qd", z, sd[p + "attn.W_O"]) + sd[p + "attn.b_O"]
            self.mid.append(x)
            h2 = self.ln(x, p + "ln2")
            if receiver not in (None, "action head") and receiver[0] == l and receiver[2] == "mlp":
                h2 = self.ln(new_input if new_input is not None else x + delta, p + "ln2", scale_of=x if frozen else None)
            if cfg.gated_mlp:
                post = act(h2 @ sd[p + "mlp.W_gate"]) * (h2 @ sd[p + "mlp.W_in"]) + sd[p + "mlp.b_in"]
            else:
                post = act(h2 @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
            writes[f"L{l}MLP"] = post @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
            x = x + writes[f"L{l}MLP"]
        resid.append(x)
        final = x[-1]
        if receiver == "action head":
            final = new_input[-1] if new_input is not None else x[-1] + delta[-1]
        xf = self.ln(final, "transformer.ln_final", scale_of=x[-1] if frozen else None)
        return xf @ sd["action_predictor.weight"].T + sd["action_predictor.bias"], writes, resid


def _receiver(label):
    if label == "action head":
        return label
    if label.endswith("MLP"):
        return int(label[1:-3]), None, "mlp"
    head, c = label.split()
    l, h = head[1:].split("H")
    return int(l), int(h), c


def _check_edges(a, clean, corr, ln="recompute", senders=None, receivers=None, tol=2e-4):
    """Every (chosen) finite edge of path_patching equals the plain-torch edge forward; returns the result."""
    r = path_patching(a, clean, corr, "forward", "left", ln=ln)
    ia, ib = a.action_index("forward"), a.action_index("left")
    plain = Plain(a)
    lg0, w_clean, _ = plain.run(clean)
    _, w_corr, _ = plain.run(corr)
    v0 = float(lg0[ia] - lg0[ib])
    assert abs(v0 - r.clean_value) < 1e-3 * max(1, abs(v0))
    frozen = ln == "frozen"
    n = 0
    for si, s in enumerate(r.sender_labels):
        if senders is not None and s not in senders:
            continue
        delta = w_corr[s] - w_clean[s]
        for ri, rec in enumerate(r.receiver_labels):
            if (receivers is not None and rec not in receivers) or not np.isfinite(r.effects[si, ri]):
                continue
            lg, _, _ = plain.run(clean, _receiver(rec), delta, frozen)
            want = float(lg[ia] - lg[ib]) - v0
            assert abs(r.effects[si, ri] - want) < tol * max(1, abs(want)), (s, rec, ln, r.effects[si, ri], want)
            n += 1
    assert n > 0
    return r


# ---- tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MULTI + ["raw-2tok-noLN"])
def test_identical_runs_give_zero_everywhere(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=1)
    L, H, T = a.cfg.n_layers, a.cfg.n_heads, a.layout.n_timesteps
    n_embed = 4 if T > 1 else 3
    for ln in ("recompute", "frozen"):
        r = path_patching(a, w, w, "forward", "left", ln=ln)
        assert r.effects.shape == (n_embed + L * (H + 1), L * (H * 3 + 1) + 1)
        finite = r.effects[np.isfinite(r.effects)]
        # embeddings reach every head and MLP; layer l's heads and MLP reach the heads of later layers; layer l's
        # MLP reads the embeddings, the heads of layers <= l and the MLPs before it; all reach the action head
        n_paths = (n_embed * L * H * 3 + sum((H + 1) * H * 3 * (L - 1 - l) for l in range(L))
                   + sum(n_embed + H * (l + 1) + l for l in range(L)) + len(r.sender_labels))
        assert len(finite) == n_paths
        np.testing.assert_allclose(finite, 0, atol=1e-5)
        np.testing.assert_allclose(r.full_input_effects, 0, atol=1e-5)
    assert r.sender_labels[:n_embed] == ["RTG embed", "state embed"] + (["action embed"] if T > 1 else []) + ["time embed"]
    assert r.sender_labels[n_embed:n_embed + H + 1] == [f"L0H{h}" for h in range(H)] + ["L0MLP"]
    assert list(r.sender_stages) == sorted(r.sender_stages) and r.receiver_stages[-1] == 2 * L + 1


@pytest.mark.parametrize("name, ln", [("ln-gated-onehot-26tok", "recompute"), ("ln-gated-onehot-26tok", "frozen"),
                                      ("noLN-gated-gelu-26tok", "recompute")])  # without LN, frozen == recompute
def test_every_edge_of_a_2_layer_gated_mlp_model_equals_plain_torch(name, ln):
    a = make_adapter(**CONFIGS[name])
    r = _check_edges(a, random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4), ln=ln)
    assert np.nanmax(np.abs(r.effects)) > 1e-3
    top = r.strongest(3)
    assert len(top) == 3 and abs(top[0][2]) == np.nanmax(np.abs(r.effects))


@pytest.mark.parametrize("name", ["lnpre-8tok", "ln-3layers-linear-time-5tok"])
def test_edges_of_other_configs_equal_plain_torch(name):
    a = make_adapter(**CONFIGS[name])
    clean, corr = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4)
    L = a.cfg.n_layers
    _check_edges(a, clean, corr, senders={"RTG embed", "state embed", "time embed", "action embed", "L0H1", "L0MLP",
                                          f"L{L - 1}MLP"},
                 receivers={"L0H0 q", "L0H1 v", "L0MLP", f"L{L - 1}H0 k", f"L{L - 1}H1 q", f"L{L - 1}MLP", "action head"})
    _check_edges(a, clean, corr, ln="frozen", senders={"state embed", "L0H0", "L0MLP"},
                 receivers={"L0MLP", f"L{L - 1}H1 k", f"L{L - 1}MLP", "action head"})


def test_left_padded_windows_equal_plain_torch():
    """Short histories (left-padded: zero observation, pad action) as the Explorer sends them."""
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    clean, corr = random_window(a, seed=1, n_steps=3), random_window(a, seed=2, n_steps=2, rtg=-0.4)
    assert int(clean.n_pad[0]) == 6 and int(corr.n_pad[0]) == 7
    _check_edges(a, clean, corr, senders={"RTG embed", "state embed", "action embed", "time embed", "L0H2", "L0MLP"},
                 receivers={"L0H1 k", "L0MLP", "L1H3 v", "L1MLP", "action head"})


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "noLN-gated-gelu-26tok", "lnpre-8tok"])
@pytest.mark.parametrize("ln", ["recompute", "frozen"])
def test_all_senders_together_equal_patching_the_receivers_whole_input(name, ln):
    """``full_input_effects[r]`` (every sender's write added to r's input) equals the plain forward with
    r's input REPLACED by the corrupted run's residual stream: the senders cover the whole stream."""
    a = make_adapter(**CONFIGS[name])
    _check_full_input(a, random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4), ln)


def _check_full_input(a, clean, corr, ln):
    r = path_patching(a, clean, corr, "forward", "left", ln=ln)
    ia, ib = a.action_index("forward"), a.action_index("left")
    plain = Plain(a)
    lg0, _, _ = plain.run(clean)
    _, _, resid_corr = plain.run(corr)
    mid_corr = plain.mid
    v0 = float(lg0[ia] - lg0[ib])
    for ri, rec in enumerate(r.receiver_labels):
        rc = _receiver(rec)
        new = resid_corr[-1] if rc == "action head" else mid_corr[rc[0]] if rc[2] == "mlp" else resid_corr[rc[0]]
        lg, _, _ = plain.run(clean, rc, new_input=new, frozen=ln == "frozen")
        want = float(lg[ia] - lg[ib]) - v0
        assert abs(r.full_input_effects[ri] - want) < 2e-4 * max(1, abs(want)), (rec, r.full_input_effects[ri], want)
    if ln == "recompute":  # the action head's whole input is the corrupted final residual
        assert abs(r.full_input_effects[-1] - (r.corrupted_value - r.clean_value)) < 1e-4 * max(1, abs(want))


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "noLN-gated-gelu-26tok", "ln-3layers-linear-time-5tok"])
def test_direct_effects_sum_to_the_whole_change_with_ln_frozen(name):
    """With the LN scale frozen the action head is linear in the residual: the senders' direct effects
    add up to the full direct change (without LN: to corrupted - clean itself)."""
    a = make_adapter(**CONFIGS[name])
    clean, corr = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4)
    r = path_patching(a, clean, corr, "forward", "left", ln="frozen")
    total = float(np.sum(r.effects[:, -1], dtype=np.float64))
    assert abs(total - r.full_input_effects[-1]) < 1e-4 * max(1, abs(total))
    if not a.cfg.layer_norm:
        assert abs(total - (r.corrupted_value - r.clean_value)) < 1e-4 * max(1, abs(total))
    else:  # recomputed LN is not additive
        rr = path_patching(a, clean, corr, "forward", "left")
        assert abs(float(np.sum(rr.effects[:, -1])) - rr.full_input_effects[-1]) > 1e-4


def test_real_checkpoint_every_edge_and_the_sum_rule(reference_adapter):
    """The reference checkpoint (1 layer, 2 heads, R s layout, no LN): a ball in front of the agent.
    Every edge (embeddings → L0 heads' q/k/v, everything → action head) against plain torch; the direct
    effects sum exactly to corrupted - clean."""
    a = reference_adapter
    rng = np.random.default_rng(0)
    obs = np.stack([rng.integers(0, 3, (7, 7)), np.zeros((7, 7), int), np.zeros((7, 7), int)], -1)
    obs[..., 0] = np.where(obs[..., 0] == 0, 1, obs[..., 0])  # empty / wall cells
    obs[3, 5] = (1, 0, 0)
    ball = obs.copy()
    ball[3, 5] = (6, 2, 0)
    clean, corr = a.make_window(obs, 0.9, [0]), a.make_window(ball, 0.9, [0])
    r = _check_edges(a, clean, corr, tol=1e-4)
    _check_full_input(a, clean, corr, "recompute")
    assert r.sender_labels == ["RTG embed", "state embed", "time embed", "L0H0", "L0H1", "L0MLP"]
    assert r.receiver_labels[-2:] == ["L0MLP", "action head"] and np.isnan(r.effects[3:6, :-2]).all()
    assert np.isfinite(r.effects[3:5, -2]).all() and np.isnan(r.effects[5, -2])  # heads -> MLP, not MLP -> itself
    np.testing.assert_allclose(r.effects[[0, 2]], 0, atol=1e-6)  # same RTG and time: no change to carry
    total = float(np.sum(r.effects[:, -1], dtype=np.float64))
    assert abs(total - (r.corrupted_value - r.clean_value)) < 1e-4 * max(1, abs(total))
    assert abs(r.effects[1, -1]) > 1e-3  # the ball's own embedding has a direct effect


# ---- TransformerLens' own utility -----------------------------------------------------------------
TL_MODEL = "noLN-gated-gelu-26tok"


@pytest.mark.parametrize("component", ["q", "k", "v"])
def test_head_to_head_paths_of_the_tl_comparison_model_equal_plain_torch(component):
    """The numbers TL 3.9's utility is compared with below, against plain torch under every major."""
    a = make_adapter(**CONFIGS[TL_MODEL])
    H = a.cfg.n_heads
    _check_edges(a, random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4),
                 senders={f"L0H{h}" for h in range(H)}, receivers={f"L1H{h} {component}" for h in range(H)})


@pytest.mark.skipif(tl_major() < 4, reason=(
    "TransformerLens 3.9's get_act_patch_direct_path runs on our backbone: it is compared number by number in "
    "test_equals_transformer_lens_39_direct_path_patching"))
def test_tl4_direct_path_utility_cannot_reach_the_native_bridge_attention():
    """Why TL 4's get_act_patch_direct_path is not used: our backbone's attention has no pre-Q/K/V fork.
    If a TL 4 release adds one, this fails: switch the comparison below on for TL 4."""
    from transformer_lens.patching import get_act_patch_direct_path

    a = make_adapter(**CONFIGS[TL_MODEL])
    w = random_window(a, seed=1)
    _, cache = a.backbone.run_with_cache(a.embed(w))
    with pytest.raises((NotImplementedError, ValueError), match="use_split_qkv_input|pre-Q/K/V fork"):
        get_act_patch_direct_path(a.backbone, a.embed(w), cache, cache, lambda x: x.sum(), 0, 0, "q", verbose=False)


@pytest.mark.skipif(tl_major() >= 4, reason=(
    "TransformerLens 4's get_act_patch_direct_path needs use_split_qkv_input, which TL 4's native "
    "TransformerBridge attention (our backbone) does not offer (asserted by "
    "test_tl4_direct_path_utility_cannot_reach_the_native_bridge_attention); under TL 4 the same edges are "
    "checked against plain torch (test_head_to_head_paths_of_the_tl_comparison_model_equal_plain_torch)"))
@pytest.mark.parametrize("component", ["q", "k", "v"])
def test_equals_transformer_lens_39_direct_path_patching(component):
    """TL 3.9 (tools.analysis) linearises through the cached ln1 scale, exact without LayerNorm (scale
    1, given here)."""
    from transformer_lens.tools.analysis.direct_path_patching import get_act_patch_direct_path

    a = make_adapter(**CONFIGS[TL_MODEL])
    clean, corr = random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4)
    r = path_patching(a, clean, corr, "forward", "left")
    ia, ib = a.action_index("forward"), a.action_index("left")
    bb = a.backbone
    names = lambda n: n.endswith("hook_z")  # noqa: E731
    with torch.no_grad():
        _, c_clean = bb.run_with_cache(a.embed(clean), names_filter=names)
        _, c_corr = bb.run_with_cache(a.embed(corr), names_filter=names)
        P = a.layout.n_tokens
        for c in (c_clean, c_corr):  # no LayerNorm: the scale TL 3.9 divides by is 1
            c.cache_dict["blocks.1.ln1.hook_scale"] = torch.ones(1, P, 1)

        def metric(resid):  # backbone output -> preference at the prediction token
            lg = resid[:, -1] @ a.W_action.T + a.b_action
            return lg[:, ia] - lg[:, ib]

        v_clean = float(metric(bb(a.embed(clean))))
        H = a.cfg.n_heads
        for h in range(H):
            # TL runs its "corrupted" input and adds clean - corrupted: our clean plays its corrupted
            tl = get_act_patch_direct_path(bb, a.embed(clean), c_corr, c_clean, metric, 0, h, component, verbose=False)
            for h2 in range(H):
                got = r.effects[r.sender_labels.index(f"L0H{h}"), r.receiver_labels.index(f"L1H{h2} {component}")]
                want = float(tl[1, h2]) - v_clean
                assert abs(got - want) < 2e-4 * max(1, abs(want)), (h, h2, got, want)


def test_validation():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    w = random_window(a, seed=1)
    with pytest.raises(ValueError, match="ln in"):
        path_patching(a, w, w, "forward", ln="fold")
    with pytest.raises(ValueError, match="one-row clean window"):
        path_patching(a, w.repeat(2), w, "forward")
