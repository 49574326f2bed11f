"""Our SAE files in the real SAELens: ``saelens_check.py`` runs in a second virtualenv with ``sae-lens``
(it pins TransformerLens 3.x, so it never shares the project's environment). The interpreter is
``$DTW_SAELENS_PYTHON`` or ``.venv-saelens/bin/python`` (``.ci/run`` builds it); without one the
tests skip, and under ``DTW_REQUIRE_SAELENS=1`` (CI) they fail."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .saelens_cases import write_cases

REPO = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("saelens_check.py")


@pytest.fixture(scope="module")
def saelens_python() -> str:
    py = Path(os.environ.get("DTW_SAELENS_PYTHON") or REPO / ".venv-saelens" / "bin" / "python")
    ok = py.is_file() and subprocess.run([str(py), "-c", "import sae_lens"], capture_output=True).returncode == 0
    if not ok:
        reason = f"no Python with sae_lens at {py} (set DTW_SAELENS_PYTHON or build .venv-saelens as .ci/run does)"
        if os.environ.get("DTW_REQUIRE_SAELENS", "") not in ("", "0"):
            pytest.fail(f"SAELens interop required (DTW_REQUIRE_SAELENS=1) but {reason}", pytrace=False)
        pytest.skip(reason)
    return str(py)


def run_check(py: str, root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([py, str(CHECK), str(root)], env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=600)


def test_saelens_reads_our_sae_files_as_we_do(saelens_python, tmp_path):
    names = write_cases(tmp_path)
    assert {"shipped_post", "trained_topk", "trained_standard", "pre6_topk"} <= set(names)
    proc = run_check(saelens_python, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for name in names:
        assert f"ok   {name}:" in out, out[-4000:]
    assert "ok   shipped_post: TopKSAE k=16 hook='blocks.0.hook_resid_post' (bit-identical)" in out, out


def test_the_check_fails_on_a_disagreement(saelens_python, tmp_path):
    write_cases(tmp_path)
    enc = np.load(tmp_path / "trained_topk" / "encode.npy")
    enc[3, int(enc[3].argmax())] += 1e-3
    np.save(tmp_path / "trained_topk" / "encode.npy", enc)
    cfg_path = tmp_path / "shipped_post" / "sae" / "cfg.json"  # as saved before the 6.x layout
    cfg = json.loads(cfg_path.read_text())
    del cfg["metadata"]["sae_lens_version"]
    cfg_path.write_text(json.dumps(cfg))
    proc = run_check(saelens_python, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "FAIL trained_topk: encode: max |SAELens - dtwidgets| = 0.001" in out, out
    assert "FAIL shipped_post: hook_name: SAELens read None, dtwidgets 'blocks.0.hook_resid_post'" in out, out
    assert "ok   trained_standard:" in out
