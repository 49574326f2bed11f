"""Probes never report a number for a concept they could not probe: one-class, never-defined and
failing concepts are reported with why, rare classes do not crash the fit, bad inputs name the
concept and site, and one failing concept does not stop the suite."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.probes import ProbeUndefined, concept_table, fit_probe, probe_concepts
from dtwidgets.probes.activations import Activations
from dtwidgets.probes.concepts import ConceptTable
from dtwidgets.probes.fit import _auc

SITE = ("blocks.0.hook_resid_post", "state")


def _data(n_ep=12, per=10, d=6, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_ep), per)
    y = rng.integers(0, 2, n_ep * per)
    X = rng.normal(size=(n_ep * per, d)) + 2.0 * y[:, None] * np.eye(d)[0]
    return X, y, groups


def _table(values: dict, kinds: dict, classes: dict, groups):
    n = len(groups)
    return ConceptTable(values, kinds, classes, groups, np.arange(n), np.arange(n))


def test_fit_probe_refuses_a_one_class_concept():
    X, _, groups = _data()
    with pytest.raises(ProbeUndefined, match=r"probe of 'ball ahead' at .*: undefined: only one class \('0'\) in all "
                                             r"120 steps"):
        fit_probe(X, np.zeros(len(X), np.int64), groups, concept="ball ahead", site=SITE)


def test_fit_probe_names_nan_activations_and_empty_input():
    X, y, groups = _data()
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"probe of 'c' at \('blocks\.0\.hook_resid_post', 'state'\): expected finite "
                                         r"activations, got NaN/Inf in 1 of 120 rows \(first at row 7\)"):
        fit_probe(X, y, groups, concept="c", site=SITE)
    with pytest.raises(ValueError, match=r"probe of 'c': expected at least one step, got none"):
        fit_probe(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0), concept="c")


def test_scalar_never_defined_is_undefined_with_a_reason():
    X, _, groups = _data()
    with pytest.raises(ProbeUndefined, match=r"no value at any of the 120 steps"):
        fit_probe(X, np.full(len(X), np.nan), groups, "scalar", concept="distance to goal")


def test_rare_classes_do_not_crash_and_auc_is_the_binary_one():
    from sklearn.metrics import roc_auc_score

    X, y, groups = _data()
    y = y.copy()
    y[5] = 2  # a class with one step in one episode: absent from most train and test folds
    res = fit_probe(X, y, groups, concept="rare", control="shuffle")
    assert np.isfinite(res.score) and res.classes == ("0", "1", "2")
    # a 3-class model, a test fold holding only classes 0 and 1: the binary AUC of those two
    rng = np.random.default_rng(1)
    yt = rng.integers(0, 2, 50)
    proba = rng.dirichlet(np.ones(3), 50)
    p = proba[:, :2] / proba[:, :2].sum(1, keepdims=True)
    assert _auc(yt, proba, np.array([0, 1, 2])) == pytest.approx(roc_auc_score(yt == 1, p[:, 1]))
    # a test class the model never saw is left out, not an error
    yt2 = yt.copy()
    yt2[:3] = 7
    p2 = proba[3:, :2] / proba[3:, :2].sum(1, keepdims=True)
    assert _auc(yt2, proba, np.array([0, 1, 2])) == pytest.approx(roc_auc_score(yt[3:] == 1, p2[:, 1]))


def test_suite_reports_undefined_and_failed_concepts_and_goes_on():
    X, y, groups = _data()
    n = len(y)
    dist = np.full(n, np.nan)
    table = _table({"good": y, "one class": np.zeros(n, np.int64), "distance to goal": dist},
                   {"good": "categorical", "one class": "categorical", "distance to goal": "scalar"},
                   {"good": ("False", "True"), "one class": ("False",), "distance to goal": ()}, groups)
    table.failed["user concept"] = "concept 'user concept' raised ZeroDivisionError: boom at episode 3, step 4"
    acts = Activations({SITE: X.astype(np.float32)}, n)
    with pytest.warns(UserWarning, match="concepts not probed"):
        suite = probe_concepts(table=table, activations=acts, n_splits=3)
    assert suite.concepts == ["good"]
    assert set(suite.undefined) == {"one class", "distance to goal", "user concept"}
    assert "only one class ('False')" in suite.undefined["one class"]
    assert "undefined at every one" in suite.undefined["distance to goal"]
    assert "ZeroDivisionError" in suite.undefined["user concept"]
    text = suite.summary()
    assert "one class" in text and "not probed" in text
    assert suite.matrix("score").shape == (1, 1) and np.isfinite(suite.matrix("score")).all()


def test_nan_activations_fail_one_site_not_the_suite():
    X, y, groups = _data()
    n = len(y)
    bad = X.copy()
    bad[0, 0] = np.inf
    table = _table({"a": y, "b": 1 - y}, {"a": "categorical", "b": "categorical"},
                   {"a": ("False", "True"), "b": ("False", "True")}, groups)
    acts = Activations({SITE: X.astype(np.float32)}, n)
    with pytest.warns(UserWarning):
        ok = probe_concepts(table=table, activations=Activations({SITE: bad.astype(np.float32)}, n), n_splits=3)
    assert ok.concepts == [] and "NaN/Inf in 1 of 120 rows" in ok.undefined["a"]
    fine = probe_concepts(table=table, activations=acts, n_splits=3)
    assert fine.concepts == ["a", "b"] and not fine.undefined


def test_a_raising_user_concept_is_named_and_the_others_kept(small_traj):
    def boom(step):
        if step.timestep == 4:
            raise ZeroDivisionError("boom")
        return step.action

    with pytest.warns(UserWarning, match="concepts left out"):
        table = concept_table(small_traj, None, {"action taken": lambda s: s.action, "boom": boom})
    assert table.names == ["action taken"]
    assert table.failed["boom"].startswith("concept 'boom' raised ZeroDivisionError: boom at episode 0, step 4")
