"""Hostile inputs shared by the trust tests: script-injection payloads in every text a widget shows,
a .safetensors model whose action names are payloads, and a trajectory .npz whose final outcome is one.

Every payload that could run sets ``window.__dtw_pwned`` (and most also call ``alert``), so a test can
assert that no script ran, not only that no dialog opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets
import numpy as np

FLAG = "__dtw_pwned"
PLAIN_IMG = "<img src=x onerror=alert(1)>"
PLAIN_SCRIPT = '"><script>alert(1)</script>'
IMG = f"<img src=x onerror=\"window.{FLAG}=1;alert('img')\">"
SCRIPT = f"\"><script>window.{FLAG}=1;alert('script')</script>"
SVG = f"<svg onload=window.{FLAG}=1>"
IFRAME = f"<iframe srcdoc=\"<script>parent.{FLAG}=1</script>\"></iframe>"
PAYLOADS = (PLAIN_IMG, PLAIN_SCRIPT, IMG, SCRIPT, SVG, IFRAME)

#: three action names for a hostile model (unique; the last one is harmless so a pair can be chosen)
ACTION_NAMES = (IMG, SCRIPT, "forward")
#: the outcome written into a hostile trajectory file
OUTCOME = f"{PLAIN_IMG}{SCRIPT}"

# JS, optional CSS selector `sel` (default: the whole page): every element with an on* attribute below it,
# plus elements that should never come from our pages
BAD_ELEMENTS_JS = """(sel) => {
  const out = [];
  for (const e of (sel ? [...document.querySelectorAll(sel)] : [document]).flatMap(r => [...r.querySelectorAll('*')])) {
    for (const a of e.attributes) if (a.name.toLowerCase().startsWith('on')) out.push(`${e.tagName}[${a.name}]`);
    if (['IMG', 'IFRAME', 'SVG', 'OBJECT', 'EMBED', 'SCRIPT'].includes(e.tagName.toUpperCase()))
      out.push(`${e.tagName} in ${e.parentElement && e.parentElement.className}`);
  }
  return out;
}"""
# JS run before any page script: record CSP violations (an injected script blocked only by CSP)
CSP_RECORDER_JS = ("window.__dtw_csp = []; document.addEventListener('securitypolicyviolation', "
                   "e => window.__dtw_csp.push(e.violatedDirective + ' ' + e.blockedURI));")


def hostile_widgets() -> dict:
    """One instance of every dtwidgets widget with payloads in each of its text traits."""
    from dtwidgets.widgets import (
        ActionPreferences, AttentionView, CalibrationCurve, ChannelHeatmap, ContributionBars,
        GridView, MatrixHeatmap, RTGScanView,
    )

    grid = np.ones((5, 5, 3), np.uint8)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = (2, 5, 0)
    t = np.linspace(0, 1, 5).astype(np.float32)
    return {
        "grid_view": GridView(grid, agent_pos=(1, 1), agent_dir=0, error=SCRIPT),
        "channel_heatmap": ChannelHeatmap(values=np.random.default_rng(0).normal(size=(3, 5, 5)),
                                          titles=[IMG, SCRIPT, SVG]),
        "action_preferences": ActionPreferences(logits=np.array([0.5, 1.0, -1.0]), action_names=[IMG, SCRIPT, PLAIN_IMG],
                                                pair=(0, 1)),
        "attention_view": AttentionView(patterns=np.full((2, 3, 3), 1 / 3, np.float32), head_labels=[IMG, SCRIPT],
                                        token_labels=[PLAIN_SCRIPT, SVG, IFRAME]),
        "contribution_bars": ContributionBars(values=np.array([[0.5, -0.2, 0.1], [0.1, 0.3, -0.4]]),
                                              labels=[IMG, SCRIPT, SVG], series_names=[PLAIN_IMG, PLAIN_SCRIPT],
                                              groups=[IFRAME, IMG, IMG], title=SCRIPT),
        "matrix_heatmap": MatrixHeatmap(values=np.eye(2), row_labels=[IMG, SCRIPT], col_labels=[SVG, IFRAME],
                                        title=IMG, x_label=SCRIPT, y_label=PLAIN_IMG),
        "rtg_scan_view": RTGScanView(rtgs=t, series=np.stack([t, 1 - t]), series_names=[IMG, SCRIPT],
                                     series_groups=["probability", SVG], title=IFRAME),
        "calibration_curve": CalibrationCurve(targets=t, mean=t, lo=t - 0.1, hi=t + 0.1,
                                              outcome_counts=np.ones((5, 2)), outcome_names=[IMG, SCRIPT],
                                              title=SVG, x_label=PLAIN_SCRIPT, y_label=IMG),
    }


def hostile_layout(html: bool = True) -> ipywidgets.Widget:
    """Every hostile widget plus a hostile ipywidgets Label and tab titles, in one layout; with ``html``
    also an ``ipywidgets.HTML`` holding raw payloads (only the static export can make that safe: in a
    live notebook an HTML widget's value *is* HTML, so code must escape what it puts there)."""
    ws = hostile_widgets()
    tab = ipywidgets.Tab([ipywidgets.VBox([ws["grid_view"]]), ipywidgets.VBox([ws["channel_heatmap"]])])
    tab.titles = (IMG, SCRIPT)
    html_box = ipywidgets.HTML(f"status: <b>{IMG}</b> {SCRIPT} <span onclick=alert(3)>{SVG}</span>{IFRAME}"
                          f"<b onmouseover=\"window.{FLAG}=1\" style=\"position:fixed;inset:0\">cover</b>")
    rest = [w for k, w in ws.items() if k not in ("grid_view", "channel_heatmap")]
    return ipywidgets.VBox([*([html_box] if html else []), ipywidgets.Label(PLAIN_SCRIPT), tab, *rest])


def texts_shown(name: str) -> list[str]:
    """Payloads of widget ``name`` that it shows in DOM text (the others are drawn on canvas)."""
    return {
        "grid_view": [SCRIPT],                                   # error box
        "channel_heatmap": [IMG, SCRIPT, SVG],                   # map titles
        "action_preferences": [IMG, SCRIPT, PLAIN_IMG],          # pair selects, readout
        "attention_view": [IMG, SCRIPT],                         # head titles
        "contribution_bars": [SCRIPT, PLAIN_IMG, PLAIN_SCRIPT],  # title, legend
        "matrix_heatmap": [IMG],                                 # title
        "rtg_scan_view": [IFRAME, IMG, SCRIPT, SVG],             # title, legend, panel title
        "calibration_curve": [SVG, IMG, SCRIPT],                 # title, legend
    }[name]


def hostile_model_file(folder: Path) -> Path:
    """A small random DT saved with :func:`dtwidgets.model.save_model`; its action names are payloads."""
    from dtwidgets.model import DecisionTransformer, DTConfig, save_model

    cfg = DTConfig(d_model=16, n_heads=2, d_mlp=32, n_layers=1, n_ctx=2, n_actions=3, action_names=ACTION_NAMES,
                   max_timestep=300)
    return save_model(DecisionTransformer(cfg), Path(folder) / "hostile.safetensors")


def hostile_trajectory_file(explorer, folder: Path) -> Path:
    """Two turns played in ``explorer``, saved, then re-saved with ``metadata.final`` = done, outcome = :data:`OUTCOME`."""

    explorer.session.step(0)  # turns: never end an episode
    explorer.session.step(1)
    traj = explorer.session.to_trajectories()
    final = dict(traj.metadata["final"], done=True, outcome=OUTCOME, logits=None)
    traj.metadata = json.loads(json.dumps(dict(traj.metadata, final=final)))
    return traj.save(Path(folder) / "hostile.npz")


def hostile_explorer(folder: Path, load_trajectory: bool = True):
    """``Explorer(adapter, MiniGridEnv(...))`` on the hostile model file; with ``load_trajectory`` the
    hostile trajectory file is loaded through the Explorer's own load button (errors land in its
    error line, as for a user). Returns ``(explorer, model_path, trajectory_path)``."""
    from dtwidgets.adapters import MiniGridEnv
    from dtwidgets.compositions import Explorer
    from dtwidgets.model import DTAdapter, load_model

    model_path = hostile_model_file(folder)
    adapter = DTAdapter(load_model(model_path))
    assert tuple(adapter.action_names) == ACTION_NAMES
    env = MiniGridEnv("MiniGrid-Dynamic-Obstacles-5x5-v0", max_steps=100, seed=0)
    e = Explorer(adapter, env, pair=(0, 1), coalesce_s=0)
    traj_path = None
    if load_trajectory:
        traj_path = hostile_trajectory_file(e, folder)
        e.path.value = str(traj_path)
        e.load_button.click()
        e.refresh()
    return e, model_path, traj_path


#: root CSS class of each widget's front-end (js/<module>.js ``widget(cls, ...)``)
ROOT_CLASS = {"grid_view": "dtw-gridview", "channel_heatmap": "dtw-channelheatmap", "action_preferences": "dtw-actionprefs",
              "attention_view": "dtw-attention", "contribution_bars": "dtw-contrib", "matrix_heatmap": "dtw-matrix",
              "rtg_scan_view": "dtw-rtgscan", "calibration_curve": "dtw-calibration"}
