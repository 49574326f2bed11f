"""Shipped demo Decision Transformers for MiniGrid-Dynamic-Obstacles-8x8-v0 (see README.md here).

* ``"post"`` — the reference post's setting: 1 layer, 2 heads, d_model 128, d_mlp 256, n_ctx 2
  (RTG + state), raw 7x7x3 observations, no LayerNorm.
* ``"onehot"`` — one-hot observations, n_ctx 8 (3 timesteps), 2 layers, LayerNorm, d_model 96.

Retrain with ``python -m dtwidgets.training.demo --variant post|onehot --out ...``.
"""
from __future__ import annotations

import json
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
VARIANTS = ("post", "onehot")


def demo_path(variant: str = "post") -> Path:
    """Path of a shipped demo checkpoint (``.safetensors``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r}; expected one of {VARIANTS}")
    path = DEMO_DIR / f"{variant}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"demo checkpoint {path.name} is missing from {DEMO_DIR} (a broken install?); "
                                f"retrain it with: python -m dtwidgets.training.demo --variant {variant} --out {path}")
    return path


def demo_calibration(variant: str = "post") -> dict:
    """The shipped calibration report of a demo model (what ``dtwidgets.training.demo`` measured), as a dict."""
    path = demo_path(variant).with_name(f"{variant}.calibration.json")
    if not path.is_file():
        raise FileNotFoundError(f"no calibration report {path.name} in {DEMO_DIR}")
    return json.loads(path.read_text())


def load_demo(variant: str = "post", seed: int | None = 0, device="cpu"):
    """``(DTAdapter, MiniGridEnv)`` for a shipped demo model (its weights on ``device``, as
    :func:`dtwidgets.load`) and its environment (reset with ``seed``)."""
    from ..adapters.minigrid_env import MiniGridEnv
    from ..model import DTAdapter, load_model

    model = load_model(demo_path(variant))
    adapter = DTAdapter(model, metadata={"source": f"dtwidgets demo {variant!r}", "variant": variant}).to(device)
    env = MiniGridEnv(model.cfg.env_id, max_steps=model.cfg.max_timestep, seed=seed)
    return adapter, env


__all__ = ["load_demo", "demo_path", "demo_calibration", "VARIANTS", "DEMO_DIR"]
