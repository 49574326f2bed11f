"""A small sparse autoencoder in plain torch, in SAELens' parameter layout.

Shapes (``d_in`` = width of the hooked activation, ``d_sae`` = number of features):
    W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] (unit-norm rows), b_dec [d_in]

``encode(x) = act(((x - b_dec) @ W_enc + b_enc))`` with ``act`` = ReLU (``"standard"``) or
"keep the k largest pre-activations, then ReLU" (``"topk"``), as SAELens' ``StandardSAE`` /
``TopKSAE``; ``decode(f) = f @ W_dec + b_dec``. An activation ``x`` splits exactly into
``sum_i f_i W_dec[i] + b_dec + error``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

ARCHITECTURES = ("topk", "standard")


@dataclass
class SAEConfig:
    """What an SAE is and where it reads.

    Attributes:
        d_in: activation width; d_sae: number of features.
        architecture: ``"topk"`` (k active features) or ``"standard"`` (ReLU, trained with L1).
        k: active features per input (TopK only).
        hook_name: TransformerLens hook it was trained on (``blocks.0.hook_resid_post``...).
        token: token kind it reads (``"state"``, ``"rtg"`` or ``"action"``), the last one of that
            kind in each window.
        model_name: a free-form label of the model it was trained on.
        metadata: free-form JSON-serialisable notes (training command, metrics...).
    """

    d_in: int
    d_sae: int
    architecture: str = "topk"
    k: int = 16
    hook_name: str = ""
    token: str = "state"
    model_name: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.d_in, self.d_sae, self.k = int(self.d_in), int(self.d_sae), int(self.k)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"expected architecture in {ARCHITECTURES}, got {self.architecture!r}")
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError(f"expected d_in >= 1 and d_sae >= 1, got d_in={self.d_in}, d_sae={self.d_sae}")
        if self.architecture == "topk" and not 1 <= self.k <= self.d_sae:
            raise ValueError(f"expected 1 <= k <= d_sae={self.d_sae} for a TopK SAE, got k={self.k}")
        if self.token not in ("state", "rtg", "action"):
            raise ValueError(f"expected token 'state', 'rtg' or 'action', got {self.token!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SparseAutoencoder(nn.Module):
    """A TopK or ReLU SAE over ``[..., d_in]`` activations. See the module docstring for the maths."""

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(int(seed))
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=g)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    def __repr__(self) -> str:
        c = self.cfg
        arch = f"topk k={c.k}" if c.architecture == "topk" else "standard (ReLU)"
        return f"SparseAutoencoder({c.d_in} -> {c.d_sae} features, {arch}, hook {c.hook_name!r}, token {c.token!r})"

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.cfg.d_in:
            raise ValueError(f"expected activations [..., d_in={self.cfg.d_in}], got shape {tuple(x.shape)}")
        return x.to(self.W_enc.dtype)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., d_in] -> [..., d_sae]`` encoder pre-activations ``(x - b_dec) @ W_enc + b_enc``."""
        return (self._check(x) - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``[..., d_sae]`` -> feature activations (ReLU, or TopK then ReLU)."""
        if self.cfg.architecture == "standard":
            return torch.relu(pre)
        top = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Activations ``[..., d_in]`` -> feature activations ``[..., d_sae]`` (>= 0)."""
        return self.activate(self.pre_activations(x))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., d_sae]`` -> reconstruction ``[..., d_in]``."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(x))`` ``[..., d_in]``."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (encoder columns and bias scaled to keep ``f * W_dec``)."""
        n = self.W_dec.norm(dim=1).clamp_min(1e-12)
        self.W_dec.div_(n[:, None])
        self.W_enc.mul_(n[None, :])
        self.b_enc.mul_(n)
