"""The Attribution tab's logit lens and per-neuron list, checked against an independent float64 forward
written here from the reference-layout weights (no dtwidgets code), and its wiring in the Explorer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis.attribution import logit_attribution
from dtwidgets.compositions import Explorer
from dtwidgets.compositions.panels import AnalysisContext, AttributionPanel, assign
from dtwidgets.compositions.panels.attribution import neuron_rows
from dtwidgets.model.checkpoint import state_dict_of
from dtwidgets.widgets import ContributionBars
from tests.analysis.helpers import CONFIGS, counted_window_forwards, make_adapter, random_window
from tests.reference_forward import ACTS, _ln, raw_to_features


def reference_internals(adapter, window) -> dict:
    """Plain-torch float64 forward of row 0 (non-gated MLPs), at the prediction position (the last state
    token): the residual after the embeddings and after each sublayer, every MLP's activations and its
    W_out, and the final residual. Written from the checkpoint tensors like tests/reference_forward.py."""
    cfg = adapter.cfg
    assert not cfg.gated_mlp
    sd = {k: v.double() for k, v in state_dict_of(adapter.model).items()}
    obs, T = window.observations[:1], window.observations.shape[1]
    feats = raw_to_features(obs, cfg.one_hot_obs).double()
    feats = feats * (torch.arange(T)[None] >= window.n_pad[:1, None])[..., None]
    ts, rtg, acts = window.timesteps[0], window.rtgs[0].double(), window.actions[0]
    if cfg.time_embedding_type == "embedding":
        time = sd["time_embedding.weight"][ts]
    else:
        time = ts.double()[:, None] * sd["time_embedding.weight"][:, 0] + sd["time_embedding.bias"]
    P, d, H = 3 * T - 1, cfg.d_model, cfg.n_heads
    x = torch.zeros(P, d, dtype=torch.float64)
    for t in range(T):
        x[3 * t] = rtg[t] * sd["reward_embedding.0.weight"][:, 0] + time[t]
        x[3 * t + 1] = feats[0, t] @ sd["state_embedding.weight"].T + time[t]
        if t < T - 1:
            x[3 * t + 2] = sd["action_embedding.0.weight"][acts[t]] + time[t]
    x = x + sd["transformer.pos_embed.W_pos"][:P]
    mask = torch.tril(torch.ones(P, P, dtype=torch.bool))
    out = {"resid": [x[-1].clone()], "post": [], "W_out": []}

    def norm(v, name):
        if cfg.layer_norm == "LN":
            return _ln(v, sd[name + ".w"], sd[name + ".b"])
        return _ln(v) if cfg.layer_norm == "LNPre" else v

    for l in range(cfg.n_layers):
        p = f"transformer.blocks.{l}."
        h = norm(x, p + "ln1")
        q, k, v = (torch.einsum("pd,hde->phe", h, sd[p + f"attn.W_{n}"]) + sd[p + f"attn.b_{n}"] for n in "QKV")
        s = torch.einsum("qhe,khe->hqk", q, k) / (d // H) ** 0.5
        z = torch.einsum("hqk,khe->qhe", s.masked_fill(~mask, float("-inf")).softmax(-1), v)
        x = x + torch.einsum("qhe,hed->qd", z, sd[p + "attn.W_O"]) + sd[p + "attn.b_O"]
        out["resid"].append(x[-1].clone())
        post = ACTS[cfg.act_fn](norm(x, p + "ln2") @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
        x = x + post @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
        out["resid"].append(x[-1].clone())
        out["post"].append(post[-1])
        out["W_out"].append(sd[p + "mlp.W_out"])
    out["sd"] = sd
    return out


def reference_lens_and_neurons(adapter, window, a: int, b: int):
    """(lens [2L+1], shares [L, d_mlp], activations [L, d_mlp]) from :func:`reference_internals`: the lens
    reads each residual through ln_final with its OWN statistics; a neuron's share is its activation × its
    W_out row, centred and divided by the FINAL residual's scale (the LN the model applied), × ln_final.w."""
    r, ln = reference_internals(adapter, window), adapter.cfg.layer_norm
    sd = r["sd"]
    Wd = sd["action_predictor.weight"][a] - sd["action_predictor.weight"][b]
    bd = float(sd["action_predictor.bias"][a] - sd["action_predictor.bias"][b])
    read = lambda v: _ln(v, sd["transformer.ln_final.w"], sd["transformer.ln_final.b"]) if ln == "LN" else (  # noqa: E731
        _ln(v) if ln == "LNPre" else v)
    lens = np.array([float(read(v) @ Wd) + bd for v in r["resid"]])
    final = r["resid"][-1]
    scale = float(torch.sqrt(((final - final.mean()) ** 2).mean() + 1e-5)) if ln else 1.0
    w_ln = sd["transformer.ln_final.w"] if ln == "LN" else torch.ones_like(Wd)
    shares, acts = [], []
    for post, W_out in zip(r["post"], r["W_out"]):
        rows = W_out - W_out.mean(-1, keepdim=True) if ln else W_out
        shares.append((post * (rows @ (Wd * w_ln)) / scale).numpy())
        acts.append(post.numpy())
    return lens, np.stack(shares), np.stack(acts)


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "lnpre-8tok", "ln-3layers-linear-time-5tok"])
def test_lens_and_neurons_against_plain_torch(name):
    adapter = make_adapter(**CONFIGS[name])
    w = random_window(adapter, seed=5)
    ctx = AnalysisContext(adapter, pair=("forward", "left"))
    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(w))
    a, b = ctx.pair
    lens, shares, acts = reference_lens_and_neurons(adapter, w, a, b)
    L = adapter.cfg.n_layers
    assert panel.lens.labels == ["embeddings"] + [f"L{l} {k}" for l in range(L) for k in ("attn", "MLP")]
    np.testing.assert_allclose(panel.lens.values[0], lens, atol=2e-4, rtol=1e-4)
    assert "forward − left" in panel.lens.title and "logit difference" in panel.lens.title
    assert panel.lens.values[0, -1] == pytest.approx(panel.bars.values[0].sum(), abs=1e-4)  # the DLA total
    # the list: the 30 largest |shares|, each with its activation
    flat = shares.reshape(-1)
    top = np.argsort(-np.abs(flat), kind="stable")[:30]
    want = [f"L{i // shares.shape[1]}N{i % shares.shape[1]}" for i in top]
    got = panel.neurons.row_labels
    assert panel.neurons.values.shape == (2, 30) and len(got) == 30
    assert sorted(got) == sorted(want) or got[:10] == want[:10]  # near-ties may swap in float32
    for j, lab in enumerate(got):
        l, n = map(int, lab[1:].split("N"))
        assert panel.neurons.values[0, j] == pytest.approx(shares[l, n], abs=2e-4)
        assert panel.neurons.values[1, j] == pytest.approx(acts[l, n], abs=2e-4)


def test_lens_follows_the_pair_and_gated_models_run():
    adapter = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    w = random_window(adapter, seed=2)
    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(w))
    first = panel.lens.values.copy()
    with torch.no_grad():
        logits = adapter.forward(w)[0].double().numpy()
    ctx.set_pair(("pickup", "drop"))
    panel.update(ctx.compute(w))
    assert "pickup − drop" in panel.lens.title and not np.allclose(first, panel.lens.values)
    assert panel.lens.values[0, -1] == pytest.approx(logits[3] - logits[4], abs=1e-4)
    # the neurons listed (all of layer l) + b_out of each MLP add up to that MLP's direct share in the bars
    bias = logit_attribution(adapter, w, "pickup", "drop", per_source=False, per_neuron=True).mlp_bias_values
    panel.limit.value = 0
    for l in range(adapter.cfg.n_layers):
        panel.filter.value = f"L{l}N"
        assert len(panel.neurons.row_labels) == adapter.cfg.d_mlp
        mlp = panel.bars.values[0, panel.bars.labels.index(f"L{l}MLP")]
        assert panel.neurons.values[0].astype(np.float64).sum() + bias[l] == pytest.approx(mlp, abs=1e-4)


def test_neuron_list_sort_filter_limit():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    ctx = AnalysisContext(adapter, pair=("forward", "left"))
    panel = AttributionPanel(ctx)
    w = random_window(adapter, seed=1)
    panel.update(ctx.compute(w))
    _, shares, acts = reference_lens_and_neurons(adapter, w, *ctx.pair)  # plain torch
    panel.filter.value = "L1"
    assert panel.neurons.row_labels and all(lab.startswith("L1N") for lab in panel.neurons.row_labels)
    assert "matching “L1”" in panel.neuron_note.value
    panel.sort.value = "act"
    shown = panel.neurons.values[1]
    assert np.all(np.diff(shown) <= 0) and shown[0] == pytest.approx(acts[1].max(), abs=2e-4)
    panel.limit.value = 0
    assert len(panel.neurons.row_labels) == shares.shape[1]  # every L1 neuron
    panel.filter.value = "no such neuron"
    assert panel.neurons.row_labels == [] and "all 0 neurons" in panel.neuron_note.value
    panel.filter.value, panel.limit.value, panel.sort.value = "", 15, "asc"
    assert len(panel.neurons.row_labels) == 15 and panel.neurons.values[0, 0] == pytest.approx(shares.min(), abs=2e-4)


def test_neuron_rows_sort_and_filter():
    v = np.array([[0.5, -2.0, 0.1], [1.0, 0.0, -0.3]])
    act = np.array([[1.0, 2.0, 3.0], [0.5, 9.0, 0.0]])
    assert neuron_rows(v, act, "abs")[0][:3] == ["L0N1", "L1N0", "L0N0"]
    assert neuron_rows(v, act, "desc")[0][0] == "L1N0" and neuron_rows(v, act, "asc")[0][0] == "L0N1"
    labels, vals, acts, n = neuron_rows(v, act, "act", "L1")
    assert labels == ["L1N1", "L1N0", "L1N2"] and list(acts) == [9.0, 0.5, 0.0] and list(vals) == [0.0, 1.0, -0.3]
    assert n == 3 and len(neuron_rows(v, act, limit=2)[0]) == 2 and neuron_rows(v, act, limit=0)[3] == 6
    with pytest.raises(ValueError, match="sort"):
        neuron_rows(v, act, "size")


def test_silent_neurons_are_left_out_of_a_top_n_list():
    """A neuron with activation and share both exactly 0 (a ReLU that is off) takes no part in the
    decision: a "top N" list does not pad itself with such rows; "all" lists them."""
    v = np.array([[0.0, -2.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.25]])
    act = np.array([[0.0, 2.0, 0.0, 0.3], [0.0, 1.0, 0.0, 0.5]])  # L0N3: active, share 0 -> listed
    labels, vals, acts, n = neuron_rows(v, act, "abs", limit=30)
    assert labels == ["L0N1", "L1N1", "L1N3", "L0N3"] and n == 8
    assert neuron_rows(v, act, "abs", limit=0)[0] == ["L0N1", "L1N1", "L1N3", "L0N0", "L0N2", "L0N3", "L1N0", "L1N2"]


def test_assign_changes_values_and_labels_of_a_new_size_together():
    """Regression: a list that grows (limit 15 -> 30) used to fail validation between the two setattrs."""
    bars = ContributionBars(values=np.ones((1, 2), np.float32), labels=["a", "b"], series_names=["s"])
    assign(bars, values=np.ones((1, 3), np.float32), labels=["a", "b", "c"])
    assert bars.labels == ["a", "b", "c"] and bars.values.shape == (1, 3)


def test_explorer_attribution_tab_follows_the_pair_and_circuits2_points_to_it():
    adapter = make_adapter(**CONFIGS["lnpre-8tok"])  # 3 actions, as Dynamic-Obstacles
    e = Explorer(adapter, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"))
    att = e.show_panel("attribution")
    e.press("ArrowLeft")
    assert "forward − right" in att.lens.title
    e.prefs.pair = (0, 2)  # "vs" changed in the preferences widget
    lens, shares, _ = reference_lens_and_neurons(adapter, e.session.window(), 0, 2)
    assert "left − forward" in att.lens.title
    np.testing.assert_allclose(att.lens.values[0], lens, atol=2e-4, rtol=1e-4)
    assert att.neurons.values[0, 0] == pytest.approx(shares.reshape(-1)[np.argmax(np.abs(shares))], abs=2e-4)
    c2 = e.show_panel("circuits2")
    assert not hasattr(c2, "lens") and not hasattr(c2, "neurons")
    assert "Attribution" in c2.pointer.value


def test_attribution_tab_runs_no_forward_of_its_own():
    """The tab reads the lens and the neurons from the shared bundle: one backbone forward of the window
    per state while it is shown (counted at the first block's input, which every forward from the
    embeddings passes once; ablation rows of upper layers run from their own layer and are not a window
    forward), and the bundle adds the lens only while it is shown."""
    from dtwidgets.analysis import logit_lens

    adapter = make_adapter(**CONFIGS["lnpre-8tok"])
    with counted_window_forwards(adapter) as calls:
        e = Explorer(adapter, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"))
        att = e.show_panel("attribution")
        calls.clear()
        logit_lens(adapter, e.session.window(), "forward", "right")  # the counter sees a one-row run
        assert len(calls) == 1
        before = att.lens.values.copy()
        calls.clear()
        e.press("ArrowLeft")  # a key press: the step reuses the analysed logits, the new state costs ONE forward
        assert len(calls) == 1
        assert not np.array_equal(before, att.lens.values)
        calls.clear()
        e.refresh()  # state -> every shown view updated
        assert len(calls) == 1
        lens, _, _ = reference_lens_and_neurons(adapter, e.session.window(), *e.ctx.pair)
        np.testing.assert_allclose(att.lens.values[0], lens, atol=2e-4, rtol=1e-4)
        e.show_panel("ablation")
        w = e.session.window()
        assert e.ctx.compute(w, panels={"ablation"}).state.lens is None
        assert e.ctx.compute(w, panels={"attribution"}).state.lens is not None


def test_attribution_panel_on_data_without_the_lens_computes_it_once():
    """Data computed for another panel lacks the lens and neurons: the panel asks for them (one forward each,
    the forward-shared extras' fallback) and shows the same numbers as data computed with them."""
    adapter = make_adapter(**CONFIGS["raw-2tok-noLN"])
    ctx = AnalysisContext(adapter, pair=("forward", "left"))
    w = random_window(adapter, seed=1)
    late, early = AttributionPanel(ctx), AttributionPanel(ctx)
    data = ctx.compute(w, panels={"ablation"})
    assert data.state.lens is None
    late.update(data)
    early.update(ctx.compute(w, panels=[early]))
    np.testing.assert_allclose(late.lens.values, early.lens.values, atol=1e-5)
    np.testing.assert_allclose(late.neurons.values, early.neurons.values, atol=1e-5)
    with pytest.raises(ValueError, match="expected panels"):
        ctx.compute(random_window(adapter, seed=1), panels={"lenz"})
