"""CI guards: tools start through the venv's interpreter (never PATH), and tests that need the shared
reference checkpoint fail (not skip) under DTW_REQUIRE_SHARED=1."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = r"(python3?|jupyter|pytest|pip|playwright|ipython)"
# Python code: a tool named as the program of a command (["jupyter", ...]) or looked up with shutil.which
BARE_TOOL = re.compile(rf"""\[\s*["']{TOOLS}["']|shutil\.which\(\s*["']{TOOLS}["']""")
# shell scripts: a command line starting with a bare tool name
BARE_TOOL_SH = re.compile(rf"^\s*{TOOLS}\s", re.M)


def test_no_python_tool_is_looked_up_on_path():
    files = [p for d in ("tests", "scripts", "benchmarks") for p in (REPO / d).rglob("*")
             if p.suffix in (".py", ".sh") and p.is_file() and p.name != "test_ci_guards.py"]
    assert files
    hits = [f"{p.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0).strip()}"
            for p in files for text in [p.read_text()]
            for m in (BARE_TOOL_SH if p.suffix == ".sh" else BARE_TOOL).finditer(text)]
    assert hits == [], "start Python tools as `sys.executable -m TOOL` (shell: the venv's python -m TOOL):\n" + "\n".join(hits)


def test_guard_pattern_catches_path_lookups():
    for bad in ('subprocess.run(["jupyter", "lab"])', 'shutil.which("jupyter")'):
        assert BARE_TOOL.search(bad), bad
    assert BARE_TOOL_SH.search("cd x\n  python -m dtwidgets.training.demo\n")
    assert not BARE_TOOL.search('subprocess.run([sys.executable, "-m", "jupyter", "lab"])')
    assert not BARE_TOOL_SH.search('  "$PY" -m dtwidgets.training.demo\n')


@pytest.mark.parametrize("require, want_rc, want", [("1", 1, "shared test data required (DTW_REQUIRE_SHARED=1)"),
                                                    ("", 0, "1 skipped")])
def test_missing_reference_checkpoint_fails_under_ci(tmp_path, require, want_rc, want):
    env = {**os.environ, "DTW_SHARED": str(tmp_path / "no-shared"), "DTW_REQUIRE_SHARED": require,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/model/test_checkpoint.py::test_reference_checkpoint_published_logits"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == want_rc, out[-2000:]
    assert want in out and "ReproduceOriginalPostShort.pt" in out, out[-2000:]


HAND_BUILT_HOOK = re.compile(r"""f["']blocks\.\{[^}]*\}\.[\w.]*hook_""")


def test_no_hook_name_is_built_outside_the_names_module():
    """Hook names are built by dtwidgets.adapters.hooks only (one owner): no f"blocks.{l}....hook_..." elsewhere."""
    owner = REPO / "dtwidgets" / "adapters" / "hooks.py"
    hits = [f"{p.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for p in (REPO / "dtwidgets").rglob("*.py") if p != owner
            for text in [p.read_text()] for m in HAND_BUILT_HOOK.finditer(text)]
    assert hits == [], "build hook names with dtwidgets.adapters.hooks (resid_post(l), hook_z(l), ...):\n" + "\n".join(hits)
    assert HAND_BUILT_HOOK.search('x = f"blocks.{l}.attn.hook_z"') and not HAND_BUILT_HOOK.search('f"blocks.{l}.mlp.W_in"')


# A learning-rate schedule written outside its owner: a private _lr_at, a cosine, a torch lr_scheduler.
SCHEDULE = re.compile(r"""\b_lr_at\b|\b(?:math|np|numpy|torch)\.cos\(|\blr_scheduler\b""")
# Setting a parameter group's learning rate (the Trainer's job: it applies the schedule every step).
SETS_LR = re.compile(r"""\[\s*["']lr["']\s*\]\s*=[^=]""")


def test_one_training_loop_owns_the_schedules():
    """Schedules live in dtwidgets/training/schedules.py and only the Trainer (training/loop.py) sets an lr:
    no second cosine / _lr_at / torch lr_scheduler in the library, benchmarks or scripts."""
    owners = {SCHEDULE: REPO / "dtwidgets" / "training" / "schedules.py",
              SETS_LR: REPO / "dtwidgets" / "training" / "loop.py"}
    files = [p for d in ("dtwidgets", "benchmarks", "scripts") for p in (REPO / d).rglob("*.py") if p.is_file()]
    assert owners[SCHEDULE] in files and owners[SETS_LR] in files
    assert SCHEDULE.search(owners[SCHEDULE].read_text()) and SETS_LR.search(owners[SETS_LR].read_text())
    hits = [f"{p.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for pattern, owner in owners.items() for p in files if p != owner
            for text in [p.read_text()] for m in pattern.finditer(text)]
    assert hits == [], ("use dtwidgets.training.schedules (WarmupCosine, LinearDecay, ...) through "
                        "dtwidgets.training.loop.Trainer:\n" + "\n".join(hits))
    for bad in ("def _lr_at(step, cfg):", "0.5 * (1 + math.cos(math.pi * p))",
                "torch.optim.lr_scheduler.LambdaLR(opt, f)", 'g["lr"] = lr', "group['lr']=0.1"):
        assert SCHEDULE.search(bad) or SETS_LR.search(bad), bad
    assert not SETS_LR.search('if g["lr"] == 0:') and not SCHEDULE.search("F.cosine_similarity(a, b)")
