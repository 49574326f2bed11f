"""Shared test fixtures: the real reference checkpoint from ../shared (skipped with a reason when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import shutil
from typing import Any, Iterator

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


# ---- one real browser for every test package (tests/browser, tests/examples) -------------------
@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _browser_unavailable("python package 'playwright' is not installed (pip install playwright; no browser download needed)")
    path = os.environ.get("DTW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _browser_unavailable("no system Chromium found (apt-get install chromium, or set DTW_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        from tests.browser.conftest import CHROMIUM_ARGS

        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()




def _browser_unavailable(reason: str) -> None:
    if os.environ.get("DTW_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests required (DTW_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)
