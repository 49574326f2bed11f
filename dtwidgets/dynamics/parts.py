"""Per-checkpoint measurements of :func:`dtwidgets.dynamics.dynamics` (each returns a JSON-able dict).

Every part is a pure function ``part(adapter, ctx) -> dict`` of the model and a
:class:`~dtwidgets.dynamics.compute.DynamicsContext`, reaching the model only through the
ModelAdapter protocol (the loss needs the adapter's ``forward`` on every window row).
"""
from __future__ import annotations

import numpy as np
import torch

from ..analysis import _common as C
from ..analysis.ablation import ablation_hooks
from ..analysis.attribution import attribution_hooks, direct_contributions


@torch.inference_mode()
def loss_part(adapter, ctx) -> dict:
    """Cross-entropy (nats) and accuracy of the action at the last state token of the eval windows."""
    traj, steps = ctx.traj, ctx.loss_steps
    rtgs = np.clip(traj.rtg(), *adapter.rtg_range)
    total, correct = 0.0, 0
    for s in range(0, len(steps), 1024):
        win, targets = traj.windows(steps[s:s + 1024], adapter.layout.n_timesteps, adapter.pad_action, rtgs=rtgs)
        logits = adapter.forward(win).float()
        y = targets[:, -1]
        total += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
    return {"loss": total / len(steps), "accuracy": correct / len(steps)}


def calibration_part(adapter, ctx) -> dict:
    """RTG asked vs return achieved (:func:`dtwidgets.data.calibrate`)."""
    from ..data.calibration import calibrate

    c = ctx.calibration
    res = calibrate(adapter, ctx.traj.env_id, rtgs=c["rtgs"], n_episodes=c["n_episodes"], n_envs=c["n_envs"],
                    max_steps=c["max_steps"], seed=c["seed"], progress=False)
    d = res.to_dict()
    return {k: d[k] for k in ("rtgs", "mean_return", "return_low", "return_high", "outcome_labels", "outcome_counts",
                              "n_finished")}


@torch.inference_mode()
def attribution_part(adapter, ctx) -> dict:
    """Direct logit attribution of ``a - b`` for every scenario: ``values [S, N]``, labels and the
    ``pair_label`` ``"a − b"``."""
    win = ctx.scenario_window(adapter)
    a, b = ctx.pair
    _, cache = adapter.run_with_cache(win, names_filter=attribution_hooks(adapter, per_source=False))
    vals, labels, kinds = direct_contributions(adapter, cache, adapter.layout.prediction_position, a, b)
    return {"values": C.np32(vals.T).tolist(), "labels": labels, "kinds": kinds,
            "pair_label": C.pair_label(adapter, a, b)}


@torch.inference_mode()
def ablation_part(adapter, ctx) -> dict:
    """Single-component zero ablations: ``delta [S, K]`` change of ``logit[a] - logit[b]`` per scenario,
    every (scenario, component) pair in ONE batched forward (row ``s * K + k`` ablates component ``k``)."""
    win = ctx.scenario_window(adapter)
    a, b = ctx.pair
    comps = C.head_labels(adapter) + C.mlp_labels(adapter)
    S, K = win.batch_size, len(comps)
    rows = [(s * K + k, comp) for s in range(S) for k, comp in enumerate(comps)]
    logits = adapter.run_with_hooks(win.repeat(K), fwd_hooks=ablation_hooks(adapter, rows, S * K)).float()
    base = adapter.forward(win).float()
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)

    def diff(lg):
        return lg[..., ia] - (lg[..., ib] if ib is not None else 0)

    delta = diff(logits).reshape(S, K) - diff(base)[:, None]
    return {"delta": C.np32(delta).tolist(), "labels": comps}


def probes_part(adapter, ctx) -> dict:
    """Probe metrics ``[C, K]`` (concepts x sites) on the eval trajectories."""
    from ..probes import site_activations, probe_concepts

    table = ctx.concept_table()
    acts = site_activations(adapter, ctx.traj, hooks=ctx.probe_hooks, positions=ctx.probe_positions)
    suite = probe_concepts(table=table, activations=acts, control=ctx.probe_control, n_splits=ctx.probe_splits)
    return {"concepts": suite.concepts, "sites": suite.site_labels, "undefined": suite.undefined,
            **{m: _nan_to_none(suite.matrix(m)) for m in suite.metric_names()}}


def _nan_to_none(a: np.ndarray) -> list:
    """Nested lists with NaN as None (JSON null), so cached records compare equal."""
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]


@torch.inference_mode()
def sae_part(adapter, ctx) -> dict:
    """Reconstruction quality of ``ctx.sae`` (any object with ``encode`` / ``decode``) at ``ctx.sae_hook``:
    MSE, explained variance and L0 (mean non-zero codes)."""
    from ..probes import site_activations

    acts = site_activations(adapter, ctx.traj, hooks=[ctx.sae_hook])
    dev = C.device(adapter)
    x = torch.as_tensor(acts.values[(ctx.sae_hook, "state")], device=dev)
    code = torch.as_tensor(ctx.sae.encode(x), device=dev)
    x_hat = torch.as_tensor(ctx.sae.decode(code), device=dev).float()
    err = ((x - x_hat) ** 2).sum(-1)
    var = ((x - x.mean(0)) ** 2).sum(-1)
    return {"mse": float(err.mean() / x.shape[1]), "explained_variance": float(1 - err.sum() / var.sum()),
            "l0": float((code != 0).float().sum(-1).mean())}


PARTS = {"loss": loss_part, "calibration": calibration_part, "attribution": attribution_part,
         "ablation": ablation_part, "probes": probes_part, "sae": sae_part}
