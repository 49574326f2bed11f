"""The front-end of every widget reads (or writes) exactly the Python widget's synced traits.

For each :class:`~dtwidgets.widgets.DTWidget` subclass exported by :mod:`dtwidgets.widgets`, the ESM
source ``js/<_module>.js`` is read as text and every trait name it touches is collected:
``X.get("name")``, ``X.set("name", ...)``, ``"change:name"`` listeners, the ``traits: [...]`` list its
``create()`` returns (redraws), and calls that pass a literal name to a function whose parameter reaches
one of those (``push(model, "name", v)``, ``scanRow(model, "scan_logits", ...)``, a local
``const g = (n) => decode(model.get(n))`` then ``g("name")``). Functions imported from other modules
(``js/lib/*.js``, ``js/probe_grid.js``) add the names read in their own bodies, followed through their
imports: importing ``widget`` brings ``error`` (``lib/errorbox.js``), ``follower`` brings ``rtg`` and
``follow_group``, ``stepFiller`` brings ``steps``, ``vmaxControl`` brings ``vmax``.

That set must equal the widget's synced traits minus :data:`EXCLUDED` (the ipywidgets / anywidget base
traits, which no dtwidgets front-end reads) and minus :data:`NOT_READ` (named per widget, with why).
A misspelt name on either side, a trait the front-end never reads (sent for nothing) or a name the
front-end reads that Python never sends (always undefined) fails with both differences named.
"""

from __future__ import annotations

import re
from pathlib import Path

import anywidget
import pytest
import traitlets

import dtwidgets.widgets as W
from dtwidgets.widgets import ActionPreferences, DTWidget

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "js"

#: synced traits of the ipywidgets / anywidget base (model and view names, layout, DOM classes, tooltip) and the
#: ESM / CSS / id that anywidget adds to each instance: the widget manager and anywidget use them, no dtwidgets
#: front-end module reads them (:func:`test_the_exclusions_are_the_base_traits` keeps this list honest).
EXCLUDED = frozenset({"_model_name", "_model_module", "_model_module_version", "_view_name", "_view_module",
                      "_view_module_version", "_view_count", "_dom_classes", "layout", "tabbable", "tooltip",
                      "_esm", "_css", "_anywidget_id"})
#: widget -> synced traits its front-end does not read, and why
NOT_READ = {"UpdateFeed": {"error"}}  # the feed is never displayed, so it has no error box

WIDGETS = sorted((c for c in (getattr(W, n) for n in W.__all__)
                  if isinstance(c, type) and issubclass(c, DTWidget) and c._module), key=lambda c: c.__name__)

_NAME = r'"([A-Za-z_]\w*)"'
_DIRECT = [re.compile(r"\.get\(\s*" + _NAME + r"\s*\)"), re.compile(r"\.set\(\s*" + _NAME + r"\s*,"),
           re.compile(r'"change:([A-Za-z_]\w*)"')]
_IMPORT = re.compile(r'import\s*\{([^}]*)\}\s*from\s*"(\./[^"]+)"')
_FUNC = re.compile(r"(?:export\s+)?function\s+(\w+)\s*\(([^)]*)\)\s*\{|(?:const|let)\s+(\w+)\s*=\s*\(([^)]*)\)\s*=>\s*")


def _code(text: str) -> str:
    """``text`` without // and /* */ comments."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(^|[^:\\])//[^\n]*", r"\1", text)


def _balanced(text: str, i: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes ``text[i] == open_``."""
    depth = 0
    for j in range(i, len(text)):
        depth += text[j] == open_
        depth -= text[j] == close
        if depth == 0:
            return j + 1
    return len(text)


def _args(text: str, i: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose ``(`` is at ``text[i]``."""
    inner = text[i + 1:_balanced(text, i, "(", ")") - 1]
    out, depth, cur = [], 0, ""
    for ch in inner:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + [cur.strip()] if cur.strip() else out


class JSModule:
    """Trait names touched by one ES module's functions, following its relative imports."""

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.code = _code(path.read_text(encoding="utf-8") if text is None else text)
        self.imports = {n.strip().split(" as ")[-1]: (path.parent / p).resolve()
                        for names, p in _IMPORT.findall(self.code) for n in names.split(",") if n.strip()}
        self.funcs: dict[str, tuple[list[str], str]] = {}
        for m in _FUNC.finditer(self.code):
            name, params = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            start = m.end() - 1 if m.group(1) else m.end()
            end = (_balanced(self.code, start, "{", "}") if self.code[start] == "{"
                   else self.code.find("\n", start) % (len(self.code) + 1))
            self.funcs[name] = ([p.strip().split("=")[0].strip() for p in params.split(",")], self.code[start:end])


_CACHE: dict[Path, JSModule] = {}


def _module(path: Path) -> JSModule:
    if path not in _CACHE:
        _CACHE[path] = JSModule(path)
    return _CACHE[path]


def _sink_params(mod: JSModule, name: str, seen: frozenset = frozenset()) -> set[int]:
    """Indices of the parameters of function ``name`` (defined in or imported into ``mod``) that name a trait."""
    if name in mod.imports:
        target = _module(mod.imports[name])
        return _sink_params(target, name, seen) if name in target.funcs and (target, name) not in seen else set()
    if name not in mod.funcs or (mod, name) in seen:
        return set()
    params, body = mod.funcs[name]
    out = set()
    for k, p in enumerate(params):
        if p and re.search(rf"\.(?:get|set)\(\s*{re.escape(p)}\s*[,)]", body):
            out.add(k)
    for callee, args in _calls(mod, body):
        for k in _sink_params(mod, callee, seen | {(mod, name)}):
            if k < len(args) and args[k] in params:
                out.add(params.index(args[k]))
    return out


def _calls(mod: JSModule, body: str):
    """(callee, arguments) of every call in ``body`` to a function ``mod`` defines or imports."""
    for m in re.finditer(r"\b(\w+)\s*\(", body):
        if m.group(1) in mod.funcs or m.group(1) in mod.imports:
            yield m.group(1), _args(body, m.end() - 1)


def trait_names(mod: JSModule, body: str | None = None, seen: frozenset = frozenset()) -> set[str]:
    """Trait names touched by ``body`` (default: the whole module) and by the imported functions it calls."""
    body = mod.code if body is None else body
    names = {n for rx in _DIRECT for n in rx.findall(body)}
    for lst in re.findall(r"\btraits\s*:\s*\[([^\]]*)\]", body):
        names |= set(re.findall(_NAME, lst))
    for callee, args in _calls(mod, body):
        for k in _sink_params(mod, callee):
            if k < len(args) and re.fullmatch(_NAME, args[k]):
                names.add(args[k][1:-1])
        if callee in mod.imports and (mod.imports[callee], callee) not in seen:
            target = _module(mod.imports[callee])
            if callee in target.funcs:
                names |= trait_names(target, target.funcs[callee][1], seen | {(mod.imports[callee], callee)})
    return names


def python_traits(cls: type) -> set[str]:
    """The synced traits of ``cls`` its front-end should read (base ipywidgets traits and NOT_READ left out)."""
    return set(cls().keys) - EXCLUDED - NOT_READ.get(cls.__name__, set())


def mismatch(cls: type, js: set[str]) -> dict[str, list[str]]:
    """The two differences between ``cls``'s synced traits and the names its front-end touches ({} = none)."""
    py = python_traits(cls)
    out = {"synced in Python, never read by the front-end": sorted(py - js),
           "read by the front-end, not a synced trait": sorted(js - py)}
    return {k: v for k, v in out.items() if v}


def test_every_exported_widget_is_checked() -> None:
    names = {c.__name__ for c in WIDGETS}
    assert {"GridView", "PolicyMapView", "CircuitDiagram", "ScatterView", "FeatureBrowserView", "StatusLine",
            "TrainingDynamicsView", "UpdateFeed", "RTGSlider"} <= names and len(names) >= 17
    assert set(NOT_READ) <= names


def test_the_exclusions_are_the_base_traits() -> None:
    """Every excluded name but ``_css`` (sent only by a widget with CSS) is synced by a bare AnyWidget, and none is
    declared as a trait by dtwidgets (so no widget trait hides behind an exclusion)."""
    assert set(anywidget.AnyWidget().keys) == EXCLUDED - {"_css"}
    declared = {n for w in WIDGETS for c in w.__mro__ if issubclass(c, DTWidget)
                for n, v in vars(c).items() if isinstance(v, traitlets.TraitType)}
    assert "error" in declared and EXCLUDED.isdisjoint(declared)


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_front_end_reads_exactly_the_synced_traits(cls: type) -> None:
    path = JS / f"{cls._module}.js"
    assert path.is_file(), f"{cls.__name__}._module = {cls._module!r} but {path.relative_to(REPO)} does not exist"
    diff = mismatch(cls, trait_names(_module(path.resolve())))
    assert diff == {}, f"{cls.__name__} vs {path.relative_to(REPO)}: {diff}"


def test_lib_functions_bring_the_traits_they_read() -> None:
    """The import-following part of the parser, on the real lib: what each helper reads is found."""
    mod = JSModule(JS / "x.js", 'import { widget } from "./lib/widget.js";\n'
                                'import { follower, scanRow } from "./lib/follow.js";\n'
                                'import { vmaxControl } from "./lib/heat.js";\nimport { stepFiller } from "./lib/steps.js";\n'
                                'export default widget("c", ({ model }) => { const f = follower(model, r, ["a"]); '
                                'scanRow(model, "scan_a", 1, 0); vmaxControl(model); stepFiller(model); return {}; });')
    assert trait_names(mod) == {"error", "rtg", "follow_group", "scan_rtgs", "scan_a", "vmax", "steps"}


def test_the_parser_catches_dynamic_names() -> None:
    """Names passed through local helpers and ``push`` are found; a name only in a comment or a
    non-literal argument is not."""
    mod = JSModule(JS / "x.js", 'import { push } from "./lib/dom.js";\n'
                                "const g = (n) => decode(model.get(n));\n"
                                'function pick(model, key) { return model.get(key); }\n'
                                '// model.get("in_comment")\n'
                                'g("alpha"); pick(model, "beta"); push(model, "gamma", 1); push(model, name, 2);\n'
                                'model.on("change:delta", f); return { traits: ["eps", "alpha"] };')
    assert trait_names(mod) == {"alpha", "beta", "gamma", "delta", "eps"}


def test_a_bogus_python_trait_fails() -> None:
    class Bogus(ActionPreferences):
        bogus = traitlets.Int(0).tag(sync=True)

    js = trait_names(_module((JS / "action_preferences.js").resolve()))
    assert mismatch(ActionPreferences, js) == {}
    assert mismatch(Bogus, js) == {"synced in Python, never read by the front-end": ["bogus"]}


def test_a_misspelt_js_name_fails() -> None:
    path = JS / "action_preferences.js"
    text = path.read_text(encoding="utf-8")
    assert text.count('"action_names"') >= 2
    js = trait_names(JSModule(path, text.replace('"action_names"', '"action_nmes"')))
    assert mismatch(ActionPreferences, js) == {"synced in Python, never read by the front-end": ["action_names"],
                                               "read by the front-end, not a synced trait": ["action_nmes"]}
