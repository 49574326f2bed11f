"""Shared test fixtures: the real reference checkpoint from ../shared, one Chromium for the whole run.

Tests that need a file from the shared folder (``$DTW_SHARED``, default ``../shared`` beside the
repository) get it through :func:`require_shared` (the ``reference_ckpt_path`` fixture does): when
the file is missing they are skipped with the reason, and under ``DTW_REQUIRE_SHARED=1`` (CI) they
FAIL instead, so a CI run can never pass by silently skipping the reference-checkpoint tests.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DTW_SHARED", REPO.parent / "shared"))
REFERENCE_CKPT = SHARED / "models" / "bloom-dynamic-obstacles" / "ReproduceOriginalPostShort.pt"


def require_shared(path: Path, what: str) -> Path:
    """``path`` if it is a file; else skip the test, or fail it under ``DTW_REQUIRE_SHARED=1``."""
    if path.is_file():
        return path
    reason = (f"{what} not found: expected a file at {path} (set DTW_SHARED to the shared/ folder that holds "
              f"{path.relative_to(SHARED) if path.is_relative_to(SHARED) else path.name})")
    if os.environ.get("DTW_REQUIRE_SHARED", "") not in ("", "0"):
        pytest.fail(f"shared test data required (DTW_REQUIRE_SHARED=1) but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def reference_ckpt_path() -> Path:
    """The reference work's checkpoint (skips, or fails under DTW_REQUIRE_SHARED=1, when missing)."""
    return require_shared(REFERENCE_CKPT, "reference checkpoint")


@pytest.fixture(scope="session")
def reference_adapter(reference_ckpt_path):
    from dtwidgets.model import load_checkpoint

    return load_checkpoint(reference_ckpt_path)


# ---- what the kernel sends to the front-end -------------------------------------------------------
@pytest.fixture
def sent_messages(monkeypatch) -> list:
    """Every comm message widgets send, as ``(widget, msg, buffers)``: ipywidgets' ``Widget._send`` is
    replaced for the test, so nothing leaves the process."""
    import ipywidgets

    log: list = []
    monkeypatch.setattr(ipywidgets.Widget, "_send", lambda w, msg, buffers=None: log.append((w, msg, list(buffers or []))))
    return log


@pytest.fixture(scope="module")
def small_dt():
    """A 2-layer, 2-head, 8-token DT adapter with random weights (seed 2)."""
    from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, n_layers=2, seed=2)))


# ---- one real browser for every test package (tests/browser, tests/examples) -------------------
@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _browser_unavailable("python package 'playwright' is not installed (pip install playwright; no browser download needed)")
    from tests.browser.conftest import find_chromium

    path = find_chromium()
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
