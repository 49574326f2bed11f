"""House rules checked on the source tree: module and function size, no import cycle between
dtwidgets modules at import time, and no analysis call inside the Explorer's panels (panels render
the results of the per-state owner)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "dtwidgets"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "static" not in p.parts)


def test_modules_and_functions_stay_small():
    long_modules = [f"{p.relative_to(REPO)}: {n} lines" for p in _modules()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = [f"{p.relative_to(REPO)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                      for p in _modules() for node in ast.walk(ast.parse(p.read_text()))
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long_modules == [], f"modules over {MAX_MODULE_LINES} lines (split them):\n" + "\n".join(long_modules)
    assert long_functions == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long_functions)


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(p: Path) -> set[str]:
    """dtwidgets modules imported when ``p`` is imported (module-level statements only, not inside
    functions; ``TYPE_CHECKING`` blocks skipped)."""
    name = _module_name(p)
    package = name if p.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.parse(p.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for n in ([node] if not isinstance(node, (ast.If, ast.Try)) else ast.walk(node)):
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    up = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                    base = ".".join(up + ([n.module] if n.module else []))
                if base.startswith("dtwidgets"):
                    out.add(base)
                    out.update(f"{base}.{a.name}" for a in n.names)
            elif isinstance(n, ast.Import):
                out.update(a.name for a in n.names if a.name.startswith("dtwidgets"))
    return out


def test_no_import_cycle_between_modules():
    mods = {_module_name(p): p for p in _modules()}
    graph = {m: {d for d in _top_level_imports(p) if d in mods and d != m} for m, p in mods.items()}
    # a package's __init__ importing its own submodules is how packages work; a submodule importing a
    # sibling that imports it back at import time is a cycle
    cycles = []
    for a, deps in graph.items():
        for b in deps:
            if a in graph.get(b, ()) and not (b.startswith(a + ".") or a.startswith(b + ".")) and a < b:
                cycles.append(f"{a} <-> {b}")
    assert cycles == [], "module-level import cycles:\n" + "\n".join(cycles)


ANALYSIS_CALLS = re.compile(r"(?<![\w.])(ablate|qk_map|ov_map|policy_map|rtg_policy_maps|steering_scan|path_patching|"
                            r"activation_patching|feature_shares|edited_logits|virtual_weights|head_svd|"
                            r"composition_scores|state_embedding_projection|analyze_state)\(")


def test_panels_compute_nothing():
    """The Explorer's panels ask the per-state owner for extras (analysis/extras.py) and render the results."""
    hits = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in (PKG / "compositions" / "panels").glob("*.py")
            if p.name != "base.py" for m in ANALYSIS_CALLS.finditer(p.read_text())]
    assert hits == [], "analysis calls in panels (declare an Extra instead):\n" + "\n".join(hits)
    assert ANALYSIS_CALLS.search("r = ablate(adapter, w)") and not ANALYSIS_CALLS.search("d.from_path_patching(pp)")


# ---- one meaning per name; tensors on the model's device --------------------------------------------
_FACTORIES = {"tensor", "zeros", "ones", "full", "empty", "arange", "eye", "linspace", "randn", "rand", "randint",
              "randperm", "as_tensor", "from_numpy"}
_DEVICE_FOLLOWING = ["analysis", "probes", "dynamics", "sae", "data/rollouts.py", "data/lockstep.py",
                     "adapters/window.py"]


def test_analyses_name_the_device_of_every_tensor_they_create():
    """``torch.zeros(...)`` & co. without ``device=`` land on torch's default device, not the model's:
    on a GPU they break (or copy) per state. ``torch.from_numpy`` is always CPU: use ``torch.as_tensor(x,
    device=...)``. (tests/analysis/test_device_follow.py checks the same at run time.)"""
    files = [p for entry in _DEVICE_FOLLOWING for p in ((PKG / entry).rglob("*.py") if (PKG / entry).is_dir()
                                                         else [PKG / entry])]
    bad = []
    for p in files:
        rel = str(p.relative_to(REPO))
        for node in ast.walk(ast.parse(p.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                    and node.func.attr in _FACTORIES
                    and (node.func.attr == "from_numpy" or not any(k.arg == "device" for k in node.keywords))):
                bad.append(f"{rel}:{node.lineno} torch.{node.func.attr}(...) without device=")
    assert bad == [], "tensors created on torch's default device:\n" + "\n".join(bad)


def test_direction_is_only_a_vector():
    """``direction`` names a vector; the agent's facing (an int 0..3) is ``facing``, a preference
    ``(a, b)`` is ``pair``: no parameter or field called direction(s) holds an int or a tuple."""
    bad = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            named = ([(a.arg, a.annotation) for a in node.args.args + node.args.kwonlyargs]
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else
                     [(node.target.id, node.annotation)] if isinstance(node, ast.AnnAssign)
                     and isinstance(node.target, ast.Name) else [])
            for name, ann in named:
                if name in ("direction", "directions") and ann is not None and \
                        re.search(r"\b(int|tuple|Sequence\[int\])\b", ast.unparse(ann)):
                    bad.append(f"{p.relative_to(REPO)}:{node.lineno} {name}: {ast.unparse(ann)}")
    assert bad == [], "direction used for a facing or a pair (rename it facing / pair):\n" + "\n".join(bad)
