"""Shared test fixtures: the real reference checkpoint from ../shared (skipped with a reason when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DTW_SHARED", REPO.parent / "shared"))
REFERENCE_CKPT = SHARED / "models" / "bloom-dynamic-obstacles" / "ReproduceOriginalPostShort.pt"


@pytest.fixture(scope="session")
def reference_ckpt_path() -> Path:
    if not REFERENCE_CKPT.is_file():
        pytest.skip(f"reference checkpoint not found at {REFERENCE_CKPT} (set DTW_SHARED to the shared/ folder)")
    return REFERENCE_CKPT


@pytest.fixture(scope="session")
def reference_adapter(reference_ckpt_path):
    from dtwidgets.model import load_checkpoint

    return load_checkpoint(reference_ckpt_path)
