"""The example notebooks: executed headless with nbclient, then their exported pages opened in Chromium.

Each notebook runs top to bottom in a ``python3`` kernel with ``examples/`` as its working directory
and ``DTW_EXPORT_DIR`` pointing at a temporary folder. Every cell must succeed and the notebook's
last cell must have written ``<notebook stem>.html`` there. The browser part (marked ``browser``)
opens each page from ``file://`` in system Chromium (helpers from ``tests/browser/conftest.py``) and
checks that every widget draws a canvas, no request leaves the machine and no JS error occurs.

Notebooks 01 and 02 need the shipped demo model (``dtwidgets.load_demo``); they are skipped with
the reason when its checkpoint is missing. Notebook 02 also uses the reference checkpoint from
``$DTW_SHARED`` / ``../shared`` when present and skips that model otherwise.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from tests.browser.conftest import LOCAL_SCHEMES, PageRecorder

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Every notebook in examples/ runs; MIN_WIDGETS lists how many widgets its exported page must draw.
MIN_WIDGETS = {"01_quickstart": 5, "02_reproduce_post": 10, "03_bring_your_own_dt": 7,
               "04_sparse_autoencoder": 2, "05_probes_and_training_dynamics": 8,
               "06_policy_maps_and_steering": 8, "07_huggingface_dt": 3, "09_circuits_and_behaviour": 5,
               "10_patching_and_shift": 6, "08_your_environment": 4}
NOTEBOOKS = tuple(sorted(p.stem for p in EXAMPLES.glob("*.ipynb")))
NEEDS_DEMO = {"01_quickstart", "02_reproduce_post", "04_sparse_autoencoder", "05_probes_and_training_dynamics",
              "06_policy_maps_and_steering", "09_circuits_and_behaviour",
              "10_patching_and_shift"}
# Extra environment per notebook: small episode counts keep the runs short (the notebooks' defaults are larger).
NOTEBOOK_ENV = {"08_your_environment": {"DTW_N_EPISODES": "10", "DTW_TRAIN_STEPS": "20"},
                "09_circuits_and_behaviour": {"DTW_N_EPISODES": "10"}, "10_patching_and_shift": {"DTW_N_EPISODES": "6"}}
CELL_TIMEOUT_S = 600

# JS: per exported widget host, whether any of its canvases has a non-transparent pixel.
DRAWN_JS = """() => Array.from(document.querySelectorAll('.dtw-x-widget')).map(h => ({
  module: h.dataset.widget,
  canvases: h.querySelectorAll('canvas').length,
  drawn: Array.from(h.querySelectorAll('canvas')).some(c => {
    if (!c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
    return false;
  }),
}))"""

_RUNS: dict[str, dict] = {}


def _demo_missing() -> str | None:
    try:
        from dtwidgets.demo import demo_path

        demo_path("post")
    except (FileNotFoundError, ImportError, AttributeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


_EXECUTE = """
import sys, nbformat, nbclient
src, dst, timeout, cwd = sys.argv[1:5]
nb = nbformat.read(src, as_version=4)
err = ""
try:
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=int(timeout), resources={"metadata": {"path": cwd}}).execute()
except Exception as e:
    err = f"{type(e).__name__}: {e}".replace("\\n", " ")
nbformat.write(nb, dst)
print("DTW_ERROR:" + err)
"""


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("notebook-exports")


def run_notebook(name: str, export_dir: pathlib.Path) -> dict:
    """Execute ``examples/<name>.ipynb`` once per session; returns ``{"nb", "elapsed_s", "error"}``."""
    if name in _RUNS:
        return _RUNS[name]
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    if name in NEEDS_DEMO and (why := _demo_missing()):
        pytest.skip(f"{name} needs the shipped demo model, which is missing: {why}")
    env = {**os.environ, **NOTEBOOK_ENV.get(name, {}), "DTW_EXPORT_DIR": str(export_dir), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out = export_dir / f"{name}.executed.ipynb"
    t0 = time.perf_counter()
    # nbclient runs in a subprocess: its asyncio loop must not leak into this process, where
    # Playwright's sync API later refuses to start inside a running loop.
    proc = subprocess.run([sys.executable, "-c", _EXECUTE, str(EXAMPLES / f"{name}.ipynb"), str(out),
                           str(CELL_TIMEOUT_S), str(EXAMPLES)], env=env, capture_output=True, text=True)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("DTW_ERROR:")]
    error = marker[-1][len("DTW_ERROR:"):] if marker else f"executor crashed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    error = error or None
    nb = nbformat.read(out, as_version=4) if out.is_file() else nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    _RUNS[name] = {"nb": nb, "elapsed_s": time.perf_counter() - t0, "error": error}
    return _RUNS[name]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"{name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_exports(name: str, export_dir: pathlib.Path) -> None:
    run = run_notebook(name, export_dir)
    assert run["error"] is None, f"{name} failed after {run['elapsed_s']:.0f} s:\n{run['error']}"
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(run["nb"].cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    page = export_dir / f"{name}.html"
    assert page.is_file(), f"{name} did not export {page.name} to DTW_EXPORT_DIR"
    assert page.stat().st_size > 10_000
    if name == "02_reproduce_post":
        numbers = json.loads((export_dir / "02_reproduce_post.numbers.json").read_text())
        assert "demo" in numbers["models"] and numbers["table"]
        if os.environ.get("DTW_REQUIRE_SHARED", "") not in ("", "0"):  # CI: the reference model may not be skipped
            assert "reference" in numbers["models"], ("DTW_REQUIRE_SHARED=1 but notebook 02 skipped the reference "
                                                      "checkpoint (not found under $DTW_SHARED, ../../shared or ../shared)")
    if name == "09_circuits_and_behaviour":
        numbers = json.loads((export_dir / "09_circuits_and_behaviour.numbers.json").read_text())
        assert numbers["n_episodes"] == 10 and [c["claim"] for c in numbers["claims"]["demo"]] == ["A", "B", "C"]
        if os.environ.get("DTW_REQUIRE_SHARED", "") not in ("", "0"):  # CI: the reference model may not be skipped
            assert "reference" in numbers["models"], "DTW_REQUIRE_SHARED=1 but notebook 09 skipped the reference checkpoint"
    if name == "10_patching_and_shift":
        numbers = json.loads((export_dir / "10_patching_and_shift.numbers.json").read_text())
        assert numbers["n_episodes"] == 6 and "demo" in numbers["models"]
        assert [r["environment"] for r in numbers["shift"]["demo"]][0] == "train"
        if os.environ.get("DTW_REQUIRE_SHARED", "") not in ("", "0"):  # CI: the reference model may not be skipped
            assert "reference" in numbers["models"], "DTW_REQUIRE_SHARED=1 but notebook 10 skipped the reference checkpoint"
    print(f"{name}: executed in {run['elapsed_s']:.1f} s")


@pytest.mark.browser
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_exported_page_renders_offline(name: str, export_dir: pathlib.Path, browser) -> None:
    run = run_notebook(name, export_dir)
    if run["error"] is not None:
        pytest.fail(f"{name} did not execute, so its export cannot be checked: {run['error'][:500]}")
    path = export_dir / f"{name}.html"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-dtw-ready]", timeout=30_000)
        assert page.get_attribute("body", "data-dtw-ready") == "1", rec.errors
        hosts = page.locator(".dtw-x-widget")
        assert hosts.count() >= MIN_WIDGETS.get(name, 1)
        try:  # drawing may happen on the next animation frame
            page.wait_for_function(f"() => ({DRAWN_JS})().every(w => w.drawn)", timeout=15_000, polling=200)
        except Exception:  # noqa: BLE001 - the assertion below names the widgets
            pass
        widgets = page.evaluate(DRAWN_JS)
        blank = [(i, w["module"]) for i, w in enumerate(widgets) if not (w["canvases"] and w["drawn"])]
        assert blank == [], f"{name}: widgets without a drawn canvas: {blank}"
        for i in range(hosts.count()):
            host = hosts.nth(i)
            assert host.locator(".dtw-x-error").count() == 0, f"{name}: widget {i} failed to render"
            assert not host.locator(".dtw-error").is_visible(), f"{name}: widget {i} shows an error box"
            assert not host.locator(".dtw-nodata").is_visible(), f"{name}: widget {i} shows no data"
        assert rec.foreign == [], f"{name}: requests that would leave the machine: {rec.foreign}"
        assert not [u for u in rec.requests if u.startswith(("http:", "https:", "ws:", "wss:"))]
        assert rec.errors == [], f"{name}: JS errors: {rec.errors}"
    finally:
        page.close()
