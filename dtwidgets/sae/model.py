"""A small sparse autoencoder in plain torch, in SAELens' parameter layout.

Shapes (``d_in`` = width of the hooked activation, ``d_sae`` = number of features):
    W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] (unit-norm rows), b_dec [d_in]

``encode(x) = act((x - b_dec) @ W_enc + b_enc)`` (``x @ W_enc + b_enc`` when
``apply_b_dec_to_input`` is false) with ``act`` = ReLU (``"standard"``), "keep the k largest
pre-activations, then ReLU" (``"topk"``) or ``ReLU(pre) * (pre > threshold)`` (``"jumprelu"``,
``threshold [d_sae]``), as SAELens 6's ``StandardSAE`` / ``TopKSAE`` / ``JumpReLUSAE``;
``decode(f) = f @ W_dec + b_dec``. An activation ``x`` splits exactly into
``sum_i f_i W_dec[i] + b_dec + error``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

ARCHITECTURES = ("topk", "standard", "jumprelu")
TOKENS = ("state", "rtg", "action")
# Largest W_enc / W_dec an SAEConfig may describe (elements; 2**30 float32 = 4 GiB), checked before allocating.
MAX_ELEMENTS = 2**30


def check_size(name: str, value, *, lo: int = 1, hi: int = MAX_ELEMENTS, hi_label: str = "") -> int:
    """``value`` as an int in ``[lo, hi]``; a bool, float (even ``512.0``), string or inf is refused."""
    want = f"expected {name} an integer in [{lo}, {hi_label or hi}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{want}, got {value!r} ({type(value).__name__})")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{want}, got {int(value)}")
    return int(value)


@dataclass
class SAEConfig:
    """What an SAE is and where it reads.

    Attributes:
        d_in: activation width; d_sae: number of features.
        architecture: ``"topk"`` (k active features), ``"standard"`` (ReLU, trained with L1) or
            ``"jumprelu"`` (ReLU above a per-feature ``threshold``; loaded, not trained here).
        k: active features per input (TopK only).
        hook_name: TransformerLens hook it was trained on (``blocks.0.hook_resid_post``...).
        token: token kind it reads (``"state"``, ``"rtg"`` or ``"action"``), the last one of that
            kind in each window.
        model_name: a free-form label of the model it was trained on.
        metadata: free-form JSON-serialisable notes (training command, metrics...).
        apply_b_dec_to_input: subtract ``b_dec`` before encoding (SAELens' key of that name).
    """

    d_in: int
    d_sae: int
    architecture: str = "topk"
    k: int = 16
    hook_name: str = ""
    token: str = "state"
    model_name: str = ""
    metadata: dict = field(default_factory=dict)
    apply_b_dec_to_input: bool = True

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"expected architecture in {ARCHITECTURES}, got {self.architecture!r}")
        self.d_in, self.d_sae = check_size("d_in", self.d_in), check_size("d_sae", self.d_sae)
        if self.d_in * self.d_sae > MAX_ELEMENTS:
            raise ValueError(f"expected d_in * d_sae <= {MAX_ELEMENTS}, got {self.d_in} * {self.d_sae}")
        if self.architecture == "topk":
            self.k = check_size("k", self.k, hi=self.d_sae, hi_label=f"d_sae={self.d_sae}")
        if self.token not in TOKENS:
            raise ValueError(f"expected token 'state', 'rtg' or 'action', got {self.token!r}")
        if not isinstance(self.apply_b_dec_to_input, bool):
            raise ValueError(f"expected apply_b_dec_to_input true or false, got {self.apply_b_dec_to_input!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SparseAutoencoder(nn.Module):
    """A TopK, ReLU or JumpReLU SAE over ``[..., d_in]`` activations. See the module docstring for the maths."""

    threshold: torch.Tensor | None

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(int(seed))
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=g, device="cpu")  # the same init on every device
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae, device="cpu"))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in, device="cpu"))
        if cfg.architecture == "jumprelu":
            self.threshold = nn.Parameter(torch.zeros(cfg.d_sae, device="cpu"))
        else:
            self.register_parameter("threshold", None)

    @property
    def weight_names(self) -> tuple[str, ...]:
        """Names of its tensors, as in ``sae_weights.safetensors``."""
        return ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if self.threshold is not None else ())

    def __repr__(self) -> str:
        c = self.cfg
        arch = {"topk": f"topk k={c.k}", "standard": "standard (ReLU)", "jumprelu": "jumprelu"}[c.architecture]
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
        """``[..., d_in] -> [..., d_sae]`` encoder pre-activations ``(x - b_dec) @ W_enc + b_enc``
        (no ``- b_dec`` when ``cfg.apply_b_dec_to_input`` is false)."""
        x = self._check(x)
        return (x - self.b_dec if self.cfg.apply_b_dec_to_input else x) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``[..., d_sae]`` -> feature activations (ReLU, TopK then ReLU, or JumpReLU)."""
        if self.cfg.architecture == "standard":
            return torch.relu(pre)
        if self.threshold is not None:  # jumprelu, as SAELens: relu(pre) * (pre > threshold)
            return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)
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
        if self.threshold is not None:  # the same features stay above threshold (SAELens' fold_W_dec_norm)
            self.threshold.mul_(n)
