"""TrainingDynamics in real JupyterLab: the step slider is dragged across every
checkpoint (a mouse drag, as a user would); at each one the metric readouts, the calibration curve, the attribution bars and the probe
matrix show that checkpoint's values (compared with the records the kernel was given, recomputed here
independently) and no comm message goes to the kernel during the whole scrub. No request leaves localhost."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.browser.conftest import jupyter_lab, open_notebook, screenshot_dir  # noqa: F401  (fixtures)
from tests.browser.test_explorer_layout import COUNT_WS_JS

from .helpers import synthetic_dynamics

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUT = ".jp-OutputArea .dtw-dynamics"
CELL = '''\
import json
import numpy as np
from dtwidgets.compositions import TrainingDynamics
from dtwidgets.dynamics import Dynamics
d = json.loads({payload!r})
dyn = Dynamics(np.array(d["steps"]), np.array(d["loss"]), d["records"], tuple(d["parts"]))
td = TrainingDynamics(dyn, title="scrub test", index=0)
td
'''
NUM = r"(-?[0-9.]+(?:e[-+]?\d+)?|NaN)"


def _num(s: str) -> float:
    return float("nan") if s == "NaN" else float(s)


def _close(shown: float, want: float) -> bool:
    """``fmt(v, 4)`` rounds to 4 decimals (3 significant digits in exponent form below 1e-3)."""
    if np.isnan(want):
        return np.isnan(shown)
    return abs(shown - want) <= max(6e-5, 6e-3 * abs(want))


def _expected(dyn, k: int) -> dict:
    """The selected checkpoint's values, straight from the records (not through dynamics_view)."""
    rec = dyn.records[k]
    cal, att, prb = rec["calibration"], rec["attribution"], rec["probes"]
    return {
        "metrics": {name: float(v[k]) for name, v in dyn.metrics().items()},
        "calibration": [(float(r), float(m)) for r, m in zip(cal["rtgs"], cal["mean_return"])],
        "attribution": [(lab, float(np.mean([row[n] for row in att["values"]])))
                        for n, lab in enumerate(att["labels"])],
        "probes": [(f"{c} @ {s}", float(prb["selectivity"][i][j]))
                   for i, c in enumerate(prb["concepts"]) for j, s in enumerate(prb["sites"])],
    }


def _shown(page) -> dict:
    aria = page.evaluate(f"""() => Object.fromEntries(['dtw-calib', 'dtw-bars', 'dtw-heat'].map(
        (c) => [c, document.querySelector('{OUT} canvas.' + c).getAttribute('aria-label')]))""")
    readouts = page.evaluate(f"""() => Object.fromEntries([...document.querySelectorAll('{OUT} [data-metric]')].map(
        (p) => [p.dataset.metric, p.querySelector(':scope > .dtw-readout').textContent]))""")

    def items(label: str) -> list[tuple[str, float]]:
        body = label.split(": ", 1)[1]
        return [(m.group(1), _num(m.group(2))) for m in re.finditer(r"([^;]+?): " + NUM + r"(?:;|$)", body)]

    return {"step": page.locator(f"{OUT} .dtw-step").text_content(), "aria": aria,
            "metrics": {k: _num(v) for k, v in readouts.items()},
            "calibration": [(_num(re.search(r"RTG " + NUM, lab).group(1)), v) for lab, v in items(aria["dtw-calib"])],
            "attribution": [(lab.strip(), v) for lab, v in items(aria["dtw-bars"])],
            "probes": [(lab.strip(), v) for lab, v in items(aria["dtw-heat"])]}


def _check(dyn, k: int, shown: dict) -> list[str]:
    want, bad = _expected(dyn, k), []
    if f"step {int(dyn.steps[k])} " not in shown["step"] or f"(checkpoint {k} of" not in shown["step"]:
        bad.append(f"readout {shown['step']!r}")
    if set(shown["metrics"]) != set(want["metrics"]):
        bad.append(f"metric panels {sorted(shown['metrics'])}")
    bad += [f"{n}: shows {shown['metrics'].get(n)}, data {v}" for n, v in want["metrics"].items()
            if not _close(shown["metrics"].get(n, np.inf), v)]
    for part in ("calibration", "attribution", "probes"):
        got, exp = shown[part], want[part]
        if len(got) != len(exp):
            bad.append(f"{part}: {len(got)} values shown, {len(exp)} in the data ({shown['aria']})")
            continue
        for (gl, gv), (el, ev) in zip(got, exp):
            same_label = _close(gl, el) if part == "calibration" else gl == el
            if not same_label or not _close(gv, ev):
                bad.append(f"{part} {el}: shows {gl} = {gv}, data {ev}")
    return bad


def test_training_dynamics_scrubs_in_jupyterlab(browser, jupyter_lab, screenshot_dir):  # noqa: F811
    dyn = synthetic_dynamics()
    K = len(dyn.steps)
    payload = json.dumps({"steps": dyn.steps.tolist(), "loss": np.asarray(dyn.train_loss).tolist(),
                          "records": dyn.records, "parts": list(dyn.parts)})
    server = jupyter_lab
    server.write_notebook("dynamics.ipynb", [CELL.format(payload=payload)])
    with open_notebook(browser, server, "dynamics.ipynb", viewport=(1400, 1100)) as nb:
        page = nb.page
        slider = nb.run_all(f"{OUT} input[type=range]", timeout=90)
        page.wait_for_timeout(500)
        assert _check(dyn, 0, _shown(page)) == []
        page.evaluate(COUNT_WS_JS)
        sent0 = page.evaluate("() => window.__dtwWs.comm")
        canvases = [page.evaluate(f"() => document.querySelector('{OUT} canvas.{c}').toDataURL()")
                    for c in ("dtw-calib", "dtw-bars", "dtw-heat")]
        bb = slider.bounding_box()
        x_at = lambda k: bb["x"] + 8 + (bb["width"] - 16) * k / (K - 1)  # noqa: E731  (Chromium's thumb is 16 px)
        y = bb["y"] + bb["height"] / 2
        page.mouse.move(x_at(0), y)
        page.mouse.down()  # drag the thumb across every checkpoint, checking each on the way
        changed = set()
        for k in range(1, K):
            page.mouse.move(x_at(k), y, steps=3)
            assert slider.input_value() == str(k)
            problems = _check(dyn, k, _shown(page))
            assert problems == [], f"checkpoint {k}: {problems}"
            now = [page.evaluate(f"() => document.querySelector('{OUT} canvas.{c}').toDataURL()")
                   for c in ("dtw-calib", "dtw-bars", "dtw-heat")]
            changed |= {i for i in range(3) if now[i] != canvases[i]}
            canvases = now
            if k == 6:  # the probe of concept b jumps here: the note names it
                assert "probe b selectivity" in page.locator(f"{OUT} .dtw-note").first.text_content()
        page.mouse.move(x_at(0), y, steps=5)
        page.mouse.up()
        assert slider.input_value() == "0" and _check(dyn, 0, _shown(page)) == []
        page.wait_for_timeout(600)  # anything debounced would have been sent by now
        assert page.evaluate("() => window.__dtwWs.comm") == sent0, "scrubbing sent comm messages to the kernel"
        assert changed == {0, 1, 2}, "every detail panel redraws while scrubbing"
        # hover agrees with what is drawn: the last attribution row's tooltip at the selected checkpoint
        bars = page.locator(f"{OUT} canvas.dtw-bars")
        bars.scroll_into_view_if_needed()
        box = bars.bounding_box()
        n = len(dyn.records[0]["attribution"]["labels"])
        page.mouse.move(box["x"] + 20, box["y"] + 4 + (n - 1) * 13 + 6, steps=2)
        tip_el = page.locator(f"{OUT.split(' ')[0]} .dtw-tip:visible").first
        tip_el.wait_for(state="visible", timeout=5000)
        tip = tip_el.text_content()
        want = _expected(dyn, 0)["attribution"][-1]
        assert want[0] in tip and _close(_num(re.search(r"value: " + NUM, tip).group(1)), want[1]), tip
        if screenshot_dir is not None:
            page.locator(OUT).first.screenshot(path=str(screenshot_dir / "training_dynamics_lab.png"))
        assert nb.foreign == [] and nb.errors == []
