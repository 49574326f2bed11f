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


NOT_ANALYSES = {"hook_names", "hook_site", "token_position", "hook_label", "default_hooks", "default_rtgs",
                "token_blocks", "check_hook", "check_activations", "check_store", "load_sae", "save_sae", "demo_sae"}
"""Public functions of the analysis packages that compute nothing of the model: names of hooks, tokens and
defaults, validation, SAE files. A panel may call them."""
PANEL_EXCEPTIONS = {("directions.py", "preference_direction"): "W_a - W_b from the weights, on the save button only",
                    ("policy_map.py", "agent_placements"): "the env's free cells (no model), once per grid"}
"""``(panel file, function)``: an analysis call a panel makes, and why it is not per-state work."""


def _analysis_api() -> set[str]:
    """Every public function of dtwidgets.analysis, dtwidgets.sae and dtwidgets.probes (their ``__all__``),
    less :data:`NOT_ANALYSES`: a new analysis is covered as soon as it is exported."""
    import inspect

    import dtwidgets.analysis
    import dtwidgets.probes
    import dtwidgets.sae

    return {n for m in (dtwidgets.analysis, dtwidgets.sae, dtwidgets.probes) for n in m.__all__
            if inspect.isfunction(getattr(m, n))} - NOT_ANALYSES


def _analysis_calls(source: str, api: set[str]) -> list[str]:
    """The calls in ``source`` of a function in ``api``: ``f(...)`` by its name or an ``import ... as`` alias,
    or ``module.f(...)`` on an imported module; not methods of other objects, not text in strings."""
    tree = ast.parse(source)
    imported = {a.asname or a.name: a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    imported |= {(a.asname or a.name).split(".")[0]: a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
    hits = []
    for n in ast.walk(tree):
        f = n.func if isinstance(n, ast.Call) else None
        if isinstance(f, ast.Name) and imported.get(f.id, f.id) in api:
            hits.append(imported.get(f.id, f.id))
        elif isinstance(f, ast.Attribute) and f.attr in api and isinstance(f.value, ast.Name) and f.value.id in imported:
            hits.append(f.attr)
    return hits


def test_panels_compute_nothing():
    """The Explorer's panels ask the per-state owner for extras (analysis/extras.py) and render the results:
    no panel calls an analysis function (base.py holds the context that runs them)."""
    api = _analysis_api()
    assert {"ablate", "analyze_state", "activation_pca", "activation_nmf", "neuron_congruence", "feature_shares",
            "fit_probe", "discover_circuit"} <= api
    found = {(p.name, f) for p in (PKG / "compositions" / "panels").glob("*.py") if p.name != "base.py"
             for f in _analysis_calls(p.read_text(), api)}
    hits = sorted(f"dtwidgets/compositions/panels/{p}: {f}(" for p, f in found - set(PANEL_EXCEPTIONS))
    assert hits == [], "analysis calls in panels (declare an Extra instead):\n" + "\n".join(hits)
    assert set(PANEL_EXCEPTIONS) <= found, f"exceptions no panel needs any more: {set(PANEL_EXCEPTIONS) - found}"


def test_the_panel_check_finds_calls_by_name_alias_and_module():
    api = {"ablate", "activation_pca"}
    src = ("from ...analysis.spaces import activation_pca\nfrom ...analysis import ablation as A\n"
           "from ...analysis.ablation import ablate as zero\nx = activation_pca(a, w, 'h')\n"
           "y = A.ablate(a, w)\nz = zero(a, w)\n")
    assert _analysis_calls(src, api) == ["activation_pca", "ablate", "ablate"]
    assert _analysis_calls("d.from_path_patching(pp)\nself.ctx.ablate(w)\ns = 'ablate(adapter, w)'\n", api) == []


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
