"""SAE quality: reconstruction metrics on stored activations, and the downstream check with the
reconstruction spliced into the model at the SAE's hook (forward hooks, never a copy of the model)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .hooks import hook_site, replace_hook
from .model import SparseAutoencoder
from .store import ActivationStore, check_activations, check_store


@dataclass
class SAEMetrics:
    """Reconstruction quality over N activations.

    Attributes:
        l0: mean number of active features per input.
        mse: mean squared error per input, ``mean_b ||x - x_hat||^2``.
        fvu: fraction of variance unexplained, ``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``.
        dead_fraction: features that never fire on these inputs.
        dense_fraction: features that fire on more than ``dense_threshold`` of the inputs.
        frequency: ``[d_sae]`` firing frequency of each feature.
        action_agreement, kl: downstream check (None until :func:`spliced_metrics` is run): fraction
            of windows where the spliced model's argmax action equals the clean one, and the mean
            ``KL(clean || spliced)`` of the action distributions, in nats.
    """

    n: int
    l0: float
    mse: float
    fvu: float
    dead_fraction: float
    dense_fraction: float
    dense_threshold: float
    frequency: np.ndarray
    action_agreement: float | None = None
    kl: float | None = None

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "frequency"}
        return d

    def __str__(self) -> str:
        s = (f"SAE metrics on {self.n} activations: L0 {self.l0:.2f}, MSE {self.mse:.4g}, FVU {self.fvu:.4f}, "
             f"dead {self.dead_fraction:.1%}, dense (>{self.dense_threshold:.0%}) {self.dense_fraction:.1%}")
        if self.action_agreement is not None:
            s += f"; spliced: action agreement {self.action_agreement:.1%}, KL {self.kl:.4g} nats"
        return s


@torch.no_grad()
def reconstruction_metrics(sae: SparseAutoencoder, data, *, batch_size: int = 8192,
                           dense_threshold: float = 0.1) -> SAEMetrics:
    """L0, MSE, FVU, dead and dense fractions of ``sae`` on ``data`` (a store or ``[N, d_in]``)."""
    if isinstance(data, ActivationStore):
        check_store(data, sae)
    acts = data.acts if isinstance(data, ActivationStore) else check_activations(data)
    if acts.shape[1] != sae.d_in:
        raise ValueError(f"expected activations with d_in={sae.d_in} (the SAE's), got shape {tuple(acts.shape)}")
    N = acts.shape[0]
    mean = acts.mean(0)
    sq_err = sq_tot = l0 = 0.0
    fired = torch.zeros(sae.d_sae, dtype=torch.float64, device=acts.device)
    for s in range(0, N, batch_size):
        x = acts[s:s + batch_size]
        f = sae.encode(x)
        sq_err += float((x - sae.decode(f)).double().pow(2).sum())
        sq_tot += float((x - mean).double().pow(2).sum())
        active = f > 0
        l0 += float(active.sum())
        fired += active.sum(0).double()
    freq = (fired / N).float().cpu().numpy()
    return SAEMetrics(n=N, l0=l0 / N, mse=sq_err / N, fvu=sq_err / max(sq_tot, 1e-30),
                      dead_fraction=float((freq == 0).mean()), dense_fraction=float((freq > dense_threshold).mean()),
                      dense_threshold=float(dense_threshold), frequency=freq)


@torch.no_grad()
def spliced_logits(adapter, sae: SparseAutoencoder, window, *, positions: str = "token",
                   keep_error: bool = False) -> torch.Tensor:
    """Action logits ``[B, A]`` with the SAE reconstruction replacing the activation at its hook.

    Args:
        positions: ``"token"``: every token of the SAE's kind in the window (default), or
            ``"last"``: only the last one (where the SAE's training activations were read).
        keep_error: add the reconstruction error back (then the logits equal the clean ones up to
            float rounding): a check that splicing itself changes nothing.
    """
    site = hook_site(adapter, sae.cfg.hook_name)
    check_hook(adapter, sae)
    pos = adapter.layout.positions(sae.cfg.token)
    pos = pos[-1:] if positions == "last" else pos

    def recon(x):
        x_hat = sae(x)
        return x_hat + (x - x_hat) if keep_error else x_hat

    return adapter.run_with_hooks(window, [replace_hook(site, pos, recon)])


@torch.no_grad()
def spliced_metrics(adapter, sae: SparseAutoencoder, window, metrics: SAEMetrics | None = None, *,
                    batch_size: int = 2048, positions: str = "token") -> SAEMetrics | dict:
    """Action agreement and ``KL(clean || spliced)`` over a batch ``window``.

    Fills ``metrics.action_agreement`` / ``metrics.kl`` and returns it when given, otherwise returns
    ``{"action_agreement", "kl", "n"}``."""
    agree = kl = 0.0
    B = window.batch_size
    for s in range(0, B, batch_size):
        w = window.index(slice(s, s + batch_size))
        clean = torch.log_softmax(adapter.forward(w).double(), -1)
        spl = torch.log_softmax(spliced_logits(adapter, sae, w, positions=positions).double(), -1)
        agree += float((clean.argmax(-1) == spl.argmax(-1)).sum())
        kl += float((clean.exp() * (clean - spl)).sum(-1).clamp_min(0).sum())
    out = {"action_agreement": agree / B, "kl": kl / B, "n": B}
    if metrics is None:
        return out
    metrics.action_agreement, metrics.kl = out["action_agreement"], out["kl"]
    return metrics


def check_hook(adapter, sae: SparseAutoencoder) -> None:
    """Raise one clear ValueError when ``sae`` does not fit ``adapter`` (unknown hook, d_in mismatch)."""
    name = sae.cfg.hook_name
    if not name:
        raise ValueError("expected an SAE with cfg.hook_name set (where it reads the model), got ''")
    site = hook_site(adapter, name)
    if site.d_in != sae.d_in:
        raise ValueError(f"SAE d_in={sae.d_in} does not fit hook {name!r} of this model, which has width {site.d_in}")
