"""Probe every concept at every site: ``probe_concepts(adapter, traj, env)`` -> :class:`ProbeSuite`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import Activations, site_activations, hook_label
from .concepts import ConceptTable, concept_table
from .fit import ProbeResult, ProbeUndefined, fit_probe


@dataclass
class ProbeSuite:
    """Probes of C concepts at K sites.

    Attributes:
        concepts: C names probed at every site; sites: K ``(hook, position)`` pairs; site_labels: K
            display labels.
        results: ``{(concept, site): ProbeResult}``.
        undefined: ``{concept: reason}`` concepts asked for that could not be probed (one class only,
            never defined, too many classes, a concept function that raised, a fit that failed): not
            in ``concepts``, never given a number, always listed with why.
    """

    concepts: list[str]
    sites: list[tuple[str, str]]
    results: dict
    undefined: dict = field(default_factory=dict)

    @property
    def site_labels(self) -> list[str]:
        return [f"{hook_label(h)} @ {p}" for h, p in self.sites]

    def get(self, concept: str, site=None) -> ProbeResult:
        """The probe of ``concept`` at ``site`` (default: the site with the highest selectivity)."""
        if concept not in self.concepts:
            raise KeyError(f"expected a concept in {self.concepts}, got {concept!r}")
        if site is None:
            return max((self.results[(concept, s)] for s in self.sites), key=lambda r: r.selectivity)
        site = tuple(site)
        if site not in self.sites:
            raise KeyError(f"expected a site in {self.sites}, got {site!r}")
        return self.results[(concept, site)]

    def matrix(self, metric: str = "selectivity") -> np.ndarray:
        """``[C, K]`` float32 of one metric (``score``, ``auc``, ``baseline``, ``control``,
        ``selectivity``)."""
        out = np.full((len(self.concepts), len(self.sites)), np.nan, np.float32)
        for i, c in enumerate(self.concepts):
            for j, s in enumerate(self.sites):
                out[i, j] = self.results[(c, s)].metrics()[metric]
        return out

    def metric_names(self) -> list[str]:
        return ["score", "auc", "baseline", "control", "selectivity"]

    def kinds(self) -> list[str]:
        return [self.results[(c, self.sites[0])].kind for c in self.concepts]

    def table(self) -> list[dict]:
        """One dict per (concept, site) with every metric."""
        return [{"concept": c, "site": lab, "kind": self.results[(c, s)].kind, **self.results[(c, s)].metrics()}
                for c in self.concepts for s, lab in zip(self.sites, self.site_labels)]

    def summary(self) -> str:
        lines = [f"{'concept':<22} {'site':<26} {'score':>6} {'base':>6} {'ctrl':>6} {'sel':>6} {'auc':>6}"]
        for row in self.table():
            lines.append(f"{row['concept']:<22} {row['site']:<26} {row['score']:6.3f} {row['baseline']:6.3f} "
                         f"{row['control']:6.3f} {row['selectivity']:6.3f} {row['auc']:6.3f}")
        lines += [f"{c:<22} not probed: {why}" for c, why in self.undefined.items()]
        return "\n".join(lines)


def probe_concepts(adapter=None, traj=None, env=None, concepts=None, *, table: ConceptTable | None = None,
                   activations: Activations | None = None, hooks=None, positions=("state",), control: str = "type",
                   n_splits: int = 5, max_classes: int = 12, seed: int = 0, progress: bool = False) -> ProbeSuite:
    """Probe concepts at every (hook, position) site.

    Args:
        adapter: the model (:class:`~dtwidgets.adapters.ModelAdapter`); not needed when
            ``activations`` are given.
        traj: recorded :class:`~dtwidgets.data.Trajectories` (rows = steps).
        env: an :class:`~dtwidgets.adapters.EnvAdapter` to replay them (full-grid concepts).
        concepts: see :func:`~dtwidgets.probes.concept_table`.
        table, activations: precomputed concept table / activations (same steps).
        hooks, positions: the sites (see :func:`~dtwidgets.probes.site_activations`).
        control: control task (``"type"`` or ``"shuffle"``).
        max_classes: categorical concepts with more classes, or with a single class, are skipped.
    """
    from tqdm.auto import tqdm

    if table is None:
        table = concept_table(traj, env, concepts, action_names=None if adapter is None else adapter.action_names,
                              progress=progress)
    if activations is None:
        activations = site_activations(adapter, traj, hooks=hooks, positions=positions)
    if activations.n_steps != len(table):
        raise ValueError(f"expected activations for the table's {len(table)} steps, got {activations.n_steps}")
    names, undefined = _probe_able(table, max_classes)
    results = {}
    jobs = [(c, s) for c in names for s in activations.sites]
    for c, s in tqdm(jobs, desc="probes", disable=not progress, leave=False):
        if c in undefined:
            continue
        try:
            results[(c, s)] = fit_probe(activations.values[s], table.values[c], table.episodes, table.kinds[c],
                                        observation_ids=table.observation_ids, control=control, n_splits=n_splits,
                                        seed=seed, concept=c, site=s, class_names=table.classes.get(c, ()))
        except (ProbeUndefined, ValueError) as e:  # reported with its reason; the other concepts go on
            undefined[c] = str(e)
    kept = [c for c in names if c not in undefined]
    if undefined:
        import warnings

        warnings.warn("concepts not probed: " + "; ".join(f"{k}: {v}" for k, v in undefined.items()), stacklevel=2)
    return ProbeSuite(kept, activations.sites, {k: v for k, v in results.items() if k[0] in kept}, undefined)


def _probe_able(table: ConceptTable, max_classes: int) -> tuple[list[str], dict[str, str]]:
    """The table's concepts in order, and ``{concept: reason}`` for those that cannot be probed."""
    undefined = dict(table.failed)
    for c in table.names:
        n = len(np.unique(table.values[c])) if table.kinds[c] == "categorical" else 0
        if table.kinds[c] == "categorical" and n < 2:
            only = table.classes[c][int(table.values[c][0])] if len(table.values[c]) else "none"
            undefined[c] = f"undefined: only one class ({only!r}) in all {len(table)} steps; a probe needs two"
        elif n > max_classes:
            undefined[c] = f"{n} classes, more than max_classes={max_classes}"
        elif table.kinds[c] == "scalar" and not np.isfinite(table.values[c]).any():
            undefined[c] = (f"undefined at every one of the {len(table)} steps (e.g. a distance to an object the "
                            f"env never has)")
    return table.names, undefined
