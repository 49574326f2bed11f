"""Training an SAE on a ``[N, d_in]`` activation store: Adam, unit-norm decoder rows, AuxK loss for dead features.

Loss per batch (``x`` activations, ``x_hat`` reconstruction, ``f`` feature activations)::

    mse   = mean_b ||x - x_hat||^2 / mean_b ||x - mean(x)||^2      (normalised: 1.0 = predicting the mean)
    l1    = l1_coefficient * mean_b sum_i f_i                       ("standard" only; decoder rows have norm 1)
    auxk  = aux_coefficient * ||e - x_hat_dead||^2 / ||e - mean e||^2  (dead features reconstruct the error e)

A feature is *dead* when it has not fired on the last ``dead_after`` training inputs; the AuxK term
(Gao et al. 2024) lets the ``d_in // 2`` largest dead pre-activations reconstruct the residual error,
which revives them. Everything is seeded: the same data and config give bit-identical weights.
The loop is :class:`~dtwidgets.training.loop.Trainer` (Adam, :class:`~dtwidgets.training.schedules.LinearDecay`
over the last 20 % of the steps), with the decoder-norm constraint as a callback.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import torch

from ..training.loop import Callback, Trainer, torch_threads
from ..training.schedules import LinearDecay
from .model import SAEConfig, SparseAutoencoder, check_size
from .store import ActivationStore, check_activations


@dataclass
class SAETrainConfig:
    """Hyper-parameters of :func:`train_sae` (defaults fit d_in 64-256 on CPU)."""

    d_sae: int = 512
    architecture: str = "topk"
    k: int = 16
    l1_coefficient: float = 3e-3
    lr: float = 2e-3
    batch_size: int = 4096
    epochs: float = 5.0
    aux_coefficient: float = 1 / 32
    dead_after: int = 50_000
    seed: int = 0
    threads: int | None = None

    def __post_init__(self):
        for name, lo in (("batch_size", 1), ("dead_after", 1), ("seed", 0)):
            check_size(f"SAETrainConfig.{name}", getattr(self, name), lo=lo, hi=2**62)
        if self.threads is not None:
            check_size("SAETrainConfig.threads", self.threads, hi=4096)
        for name, positive in (("lr", True), ("epochs", True), ("l1_coefficient", False), ("aux_coefficient", False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (positive and v == 0):
                raise ValueError(f"expected SAETrainConfig.{name} a finite number {'> 0' if positive else '>= 0'}, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainHistory:
    """Per-step ``loss``, ``mse`` (normalised), ``dead_fraction``; ``seconds`` of wall time."""

    loss: list = field(default_factory=list)
    mse: list = field(default_factory=list)
    dead_fraction: list = field(default_factory=list)
    seconds: float = 0.0
    n_steps: int = 0


def train_sae(data, cfg: SAETrainConfig | None = None, *, hook_name: str | None = None, token: str | None = None,
              model_name: str = "", progress: bool = True, **overrides) -> tuple[SparseAutoencoder, TrainHistory]:
    """Train a TopK or ReLU+L1 SAE.

    Args:
        data: an :class:`~dtwidgets.sae.ActivationStore` or a ``[N, d_in]`` tensor / array (finite).
        cfg: a :class:`SAETrainConfig`; keyword ``overrides`` replace its fields (``d_sae=2048``...).
        hook_name, token: recorded in the SAE's config (taken from the store when ``data`` is one).
        progress: a tqdm bar over steps showing loss, normalised MSE and the dead fraction.

    Returns:
        ``(sae, history)``, the SAE in eval mode.
    """
    cfg = SAETrainConfig(**{**(cfg.to_dict() if cfg else {}), **overrides})
    if cfg.architecture not in ("topk", "standard"):
        raise ValueError(f"expected train_sae architecture 'topk' or 'standard', got {cfg.architecture!r}")
    if isinstance(data, ActivationStore):
        acts, hook_name, token = data.acts, hook_name or data.hook_name, token or data.token
    else:
        acts = check_activations(data, "train_sae data")
    N, d_in = acts.shape
    if N < 2:
        raise ValueError(f"expected at least 2 activations to train on, got {N}")
    with torch_threads(cfg.threads):
        sae_cfg = SAEConfig(d_in, cfg.d_sae, cfg.architecture, cfg.k, hook_name or "", token or "state", model_name,
                            metadata={"train": cfg.to_dict(), "n_train": int(N)})
        sae = SparseAutoencoder(sae_cfg, seed=cfg.seed).to(acts.device)  # trains where the activations are
        hist = _fit(sae, acts, cfg, progress)
    return sae.eval(), hist


class _UnitDecoder(Callback):
    """Keeps every decoder row at unit norm: the gradient along each row is removed before the step,
    and the rows are renormalised after it."""

    def __init__(self, sae: SparseAutoencoder):
        self.sae = sae

    def on_backward(self, trainer: Trainer, step: int) -> None:
        _remove_parallel_grad(self.sae)

    @torch.no_grad()
    def on_step(self, trainer: Trainer, step: int) -> None:
        self.sae.W_dec.div_(self.sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))


class _Postfix(Callback):
    """Progress-bar text (loss, normalised MSE, dead fraction) every 20 steps and at the last step."""

    def on_step(self, trainer: Trainer, step: int) -> None:
        if step % 20 == 0 or step == trainer.n_steps - 1:
            h = trainer.history
            trainer.bar.set_postfix(loss=f"{h['loss'][-1]:.4f}", fvu=f"{h['mse'][-1]:.4f}",
                                    dead=f"{h['dead_fraction'][-1]:.1%}", refresh=False)


class _Batches:
    """``[bs, d_in]`` batches of ``acts`` without replacement, reshuffled (with ``generator``) when the
    rest of the current permutation is shorter than a batch."""

    def __init__(self, acts: torch.Tensor, bs: int, generator: torch.Generator):
        self.acts, self.bs, self.g = acts, bs, generator
        self.perm, self.cursor = torch.randperm(acts.shape[0], generator=generator, device="cpu"), 0  # CPU draws: one order

    def next(self) -> torch.Tensor:
        N = self.acts.shape[0]
        if self.cursor + self.bs > N:
            self.perm, self.cursor = torch.randperm(N, generator=self.g, device="cpu"), 0
        x = self.acts[self.perm[self.cursor:self.cursor + self.bs].to(self.acts.device)]
        self.cursor += self.bs
        return x


def _fit(sae: SparseAutoencoder, acts: torch.Tensor, cfg: SAETrainConfig, progress: bool) -> TrainHistory:
    N = acts.shape[0]
    g = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0))
        var = (acts - acts.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
    bs = int(min(cfg.batch_size, N))
    n_steps = max(1, int(round(cfg.epochs * N / bs)))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long, device=acts.device)
    batches = _Batches(acts, bs, g)

    def loss_fn(step):
        x = batches.next()
        dead = since_fired >= cfg.dead_after
        loss, mse, fired = _loss(sae, x, var, cfg, dead)
        since_fired.add_(bs)  # counts inputs since each feature last fired (this batch included)
        since_fired[fired] = 0
        return loss, {"mse": mse, "dead_fraction": dead.float().mean()}

    trainer = Trainer(opt, LinearDecay(cfg.lr, n_steps, 0.2), n_steps, threads=cfg.threads,
                      callbacks=[_UnitDecoder(sae), _Postfix()], progress=progress,
                      desc=f"train SAE {cfg.architecture} {sae.d_in}->{sae.d_sae}")
    h = trainer.run(loss_fn)
    return TrainHistory(h["loss"], h["mse"], h["dead_fraction"], trainer.seconds, n_steps)


def _loss(sae: SparseAutoencoder, x: torch.Tensor, var: torch.Tensor, cfg: SAETrainConfig, dead: torch.Tensor):
    """``(loss, normalised mse, fired [d_sae] bool)`` of one batch."""
    if cfg.architecture == "standard":
        f = sae.encode(x)
        err = x - sae.decode(f)
        mse = err.pow(2).sum(1).mean() / var
        loss = mse + cfg.l1_coefficient * f.sum(1).mean()
        with torch.no_grad():
            pre = sae.pre_activations(x) if dead.any() else None
        fired = (f > 0).any(0)
    else:  # TopK: choose the k features without grad, then recompute only those with grad (sparse)
        with torch.no_grad():
            pre = sae.pre_activations(x)
            idx = pre.topk(sae.cfg.k, dim=-1).indices
        vals = _sparse_pre(sae, x, idx, pre).relu()
        err = x - (_sparse_decode(sae, idx, vals) + sae.b_dec)
        mse = err.pow(2).sum(1).mean() / var
        loss = mse
        fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=x.device)
        fired[idx[vals.detach() > 0]] = True
    n_dead = int(dead.sum())
    if n_dead and cfg.aux_coefficient > 0:
        k_aux = min(sae.d_in // 2, n_dead)
        assert pre is not None  # computed above whenever a feature is dead
        with torch.no_grad():
            idx_aux = torch.where(dead[None], pre, torch.full_like(pre, -torch.inf)).topk(k_aux, dim=-1).indices
        e = err.detach()
        e_hat = _sparse_decode(sae, idx_aux, _sparse_pre(sae, x, idx_aux, pre).relu())
        aux = (e - e_hat).pow(2).sum(1).mean() / (e - e.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
        loss = loss + cfg.aux_coefficient * min(1.0, n_dead / k_aux) * aux
    return loss, mse.detach(), fired


def _sparse_pre(sae: SparseAutoencoder, x: torch.Tensor, idx: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """Pre-activations of the features ``idx [B, k]`` only, ``[B, k]``, taken from the grad-free
    ``pre [B, d_sae]`` with a sparse backward (O(B k d_in) instead of a dense ``[B, d_sae]`` gradient)."""
    return _SparsePre.apply(x - sae.b_dec, sae.W_enc, sae.b_enc, idx, pre.gather(1, idx))


class _SparsePre(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_c, W_enc, b_enc, idx, vals):
        ctx.save_for_backward(x_c, W_enc, idx)
        return vals.clone()

    @staticmethod
    def backward(ctx, g):
        x_c, W_enc, idx = ctx.saved_tensors
        B, k = idx.shape
        F = W_enc.shape[1]
        with warnings.catch_warnings():  # CSR is "beta" in torch; 5x faster than COO here
            warnings.simplefilter("ignore", UserWarning)
            G = torch.sparse_csr_tensor(torch.arange(0, B * k + 1, k, device=idx.device), idx.reshape(-1), g.reshape(-1).contiguous(),
                                        (B, F))
            grad_x = G @ W_enc.t()  # [B, d_in]
            grad_W = (G.t().to_sparse_csr() @ x_c).t()  # [d_in, F]
        grad_b = torch.zeros(F, dtype=g.dtype, device=g.device).index_add_(0, idx.reshape(-1), g.reshape(-1))
        return grad_x, grad_W, grad_b, None, None


def _sparse_decode(sae: SparseAutoencoder, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    """``sum_j vals[b, j] W_dec[idx[b, j]]`` -> ``[B, d_in]`` (no decoder bias)."""
    return torch.nn.functional.embedding_bag(idx, sae.W_dec, per_sample_weights=vals, mode="sum")


@torch.no_grad()
def _remove_parallel_grad(sae: SparseAutoencoder) -> None:
    """Project out the gradient component along each (unit) decoder row, so steps keep the norm."""
    g = sae.W_dec.grad
    if g is not None:
        g -= (g * sae.W_dec).sum(1, keepdim=True) * sae.W_dec
