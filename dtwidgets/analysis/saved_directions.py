"""Saved directions: name a direction, say where it lives and where it came from, keep it on disk.

A :class:`SavedDirection` is a vector ``[D]`` with its ``space`` (``"residual"`` for every hook that
reads or writes the ``d_model`` residual basis: ``hook_resid_pre/mid/post``, ``hook_attn_out``,
``hook_mlp_out``, the embedding hooks; otherwise the hook name itself, e.g. ``blocks.0.mlp.hook_post``
for a ``d_mlp`` direction), the ``hook`` it was read at (or ``""``), its ``source`` (one of
:data:`SOURCES`) and a flat ``provenance`` dict of JSON scalars. A :class:`DirectionStore` holds them by
name, builds them from probes, SAE features, steering pairs, neurons and mean differences, gives the
cosine-similarity matrix of the ones in one space, and saves / loads a folder of two files:

* ``directions.json``: ``{"format": "dtwidgets.directions", "version": 1, "directions": [{"name",
  "key", "dim", "space", "hook", "source", "provenance"}, ...]}``;
* ``directions.safetensors``: one float32 ``[dim]`` tensor per direction under its ``key`` (``d0``, ``d1``...).

Loading never unpickles: JSON and safetensors only, and every entry is validated (names and texts
are non-empty strings, keys and names unique, shapes equal the declared ``dim``, values finite).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..adapters import hooks as hk

SOURCES = ("probe", "sae", "steering", "neuron", "mean_difference", "vector")
JSON_NAME, TENSORS_NAME, FORMAT = "directions.json", "directions.safetensors", "dtwidgets.directions"
MAX_JSON_BYTES = 16 << 20
_RESIDUAL_PARTS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                   "hook_mlp_in")


def space_of(hook: str) -> str:
    """``"residual"`` for hooks in the ``d_model`` residual basis (see the module docstring), else ``hook``."""
    if hook in hk.DT_EMBED_HOOKS or hook == hk.POS_EMBED:
        return "residual"
    parsed = hk.parse(hook)
    return "residual" if parsed is not None and parsed[1] in _RESIDUAL_PARTS else str(hook)


@dataclass
class SavedDirection:
    """One named direction. ``vector``: ``[D]`` float32; ``provenance``: flat ``{text: JSON scalar}``."""

    name: str
    vector: np.ndarray
    space: str
    hook: str = ""
    source: str = "vector"
    provenance: dict = field(default_factory=dict)


def _text(value, what: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{what}: expected {'a' if allow_empty else 'a non-empty'} string, got {value!r}")
    return value


def _provenance(p, what: str) -> dict:
    if not isinstance(p, dict):
        raise ValueError(f"{what}: expected a dict of text keys to JSON scalars, got {type(p).__name__}")
    out = {}
    for k, v in p.items():
        _text(k, f"{what} key")
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            v = v.item()
        if not (v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))):
            raise ValueError(f"{what}[{k!r}]: expected a string, number, bool or None, got {v!r}")
        out[k] = v
    return out


def _vector(v, what: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(v.detach().cpu() if torch.is_tensor(v) else v, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0 or (dim is not None and arr.shape[0] != dim):
        raise ValueError(f"{what}: expected a vector of shape ({dim if dim is not None else 'D'},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: expected finite values, got {int((~np.isfinite(arr)).sum())} non-finite")
    return arr


class DirectionStore:
    """Named directions (insertion order); see the module docstring."""

    def __init__(self):
        self._items: dict[str, SavedDirection] = {}

    # ---- basic -------------------------------------------------------------------------------------
    def add(self, name: str, vector, space: str | None = None, *, hook: str = "", source: str = "vector",
            provenance: dict | None = None, replace: bool = False) -> SavedDirection:
        """Save ``vector`` ``[D]`` as ``name`` (space default: :func:`space_of(hook) <space_of>`)."""
        _text(name, "name")
        if name in self._items and not replace:
            raise ValueError(f"name: {name!r} is already saved (pass replace=True to overwrite)")
        if source not in SOURCES:
            raise ValueError(f"source: expected one of {SOURCES}, got {source!r}")
        _text(hook, "hook", allow_empty=True)
        space = space_of(hook) if space is None and hook else space
        d = SavedDirection(name, _vector(vector, f"vector of {name!r}"), _text(space, "space"), hook, source,
                           _provenance(dict(provenance or {}), "provenance"))
        self._items[name] = d
        return d

    def __getitem__(self, name: str) -> SavedDirection:
        if name not in self._items:
            raise KeyError(f"name: expected one of {list(self._items)}, got {name!r}")
        return self._items[name]

    def __contains__(self, name) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def remove(self, name: str) -> None:
        self[name]
        del self._items[name]

    @property
    def names(self) -> list[str]:
        return list(self._items)

    def spaces(self) -> list[str]:
        """The distinct spaces, in first-saved order."""
        return list(dict.fromkeys(d.space for d in self._items.values()))

    def in_space(self, space: str) -> list[SavedDirection]:
        return [d for d in self._items.values() if d.space == space]

    def cosine_matrix(self, space: str = "residual") -> tuple[list[str], np.ndarray]:
        """``(names, [n, n] cosines)`` of every direction saved in ``space`` (0 for a zero vector)."""
        items = self.in_space(space)
        if not items:
            raise ValueError(f"space: no direction is saved in {space!r}; saved spaces: {self.spaces()}")
        dims = {d.vector.shape[0] for d in items}
        if len(dims) > 1:
            raise ValueError(f"space {space!r}: its directions have different sizes {sorted(dims)}")
        V = np.stack([d.vector for d in items]).astype(np.float64)
        n = np.linalg.norm(V, axis=1)
        U = V / np.where(n > 0, n, 1.0)[:, None]
        return [d.name for d in items], (U @ U.T).astype(np.float32)

    # ---- from the library's sources ------------------------------------------------------------------
    def add_probe(self, name: str, probe, cls=None, method: str = "fitted", **kw) -> SavedDirection:
        """A probe's direction (:meth:`dtwidgets.probes.ProbeResult.direction`), read at its site's hook."""
        hook, token = probe.site[0], probe.site[1] if len(probe.site) > 1 else ""
        prov = {"concept": str(probe.concept), "class": None if cls is None else str(cls), "method": method,
                "token": str(token), "score": float(probe.score)}
        return self.add(name, probe.direction(cls, method), hook=str(hook), source="probe", provenance=prov, **kw)

    def add_sae_feature(self, name: str, sae, feature: int, **kw) -> SavedDirection:
        """SAE feature ``feature``'s decoder row ``W_dec[feature]`` ``[d_in]`` at the SAE's hook."""
        W = sae.W_dec.detach()
        if not 0 <= int(feature) < W.shape[0]:
            raise ValueError(f"feature: expected an index in [0, {W.shape[0] - 1}], got {feature!r}")
        prov = {"feature": int(feature), "architecture": str(sae.cfg.architecture), "d_sae": int(sae.cfg.d_sae),
                "token": str(sae.cfg.token), "model_name": str(sae.cfg.model_name)}
        return self.add(name, W[int(feature)], hook=str(sae.cfg.hook_name), source="sae", provenance=prov, **kw)

    def add_steering(self, name: str, adapter, contrast, hook: str, position=None, **kw) -> SavedDirection:
        """The mean difference ``contrast = (with_windows, without_windows)`` (:func:`dtwidgets.analysis.steering.steering_direction`)."""
        from .steering import steering_direction

        v, label = steering_direction(adapter, contrast=contrast, hook=hook, position=position)
        prov = {"label": label, "position": None if position is None else str(position),
                "n_with": int(contrast[0].batch_size), "n_without": int(contrast[1].batch_size)}
        return self.add(name, v, hook=hook, source="steering", provenance=prov, **kw)

    def add_neuron(self, name: str, adapter, neuron: str, side: str = "out", **kw) -> SavedDirection:
        """A neuron's output row ``W_out[l, n]`` (``side="out"``, written at ``hook_mlp_out(l)``) or input
        column ``W_in[l][:, n]`` (``"in"``, read from the MLP's input ``hook_mlp_in(l)``), ``[d_model]``."""
        from . import _common as C

        kind, l, n = C.parse_component(adapter, neuron)
        if kind != "neuron" or side not in ("in", "out"):
            raise ValueError(f"neuron, side: expected a neuron like 'L0N12' and 'in' or 'out', got {neuron!r}, {side!r}")
        W = C.weight(adapter, "W_out")[l, n] if side == "out" else C.weight(adapter, "W_in")[l][:, n]
        hook = hk.mlp_out(l) if side == "out" else hk.mlp_in(l)
        return self.add(name, W, hook=hook, source="neuron", provenance={"neuron": neuron, "side": side}, **kw)

    def add_mean_difference(self, name: str, with_acts, without_acts, hook: str = "", **kw) -> SavedDirection:
        """``mean(with_acts) - mean(without_acts)`` of two ``[N, D]`` activation sets."""
        a, b = (np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64) for x in (with_acts, without_acts))
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
            raise ValueError(f"with_acts, without_acts: expected [N, D] and [M, D] with N, M > 0, got {a.shape}, {b.shape}")
        prov = {"n_with": int(len(a)), "n_without": int(len(b))}
        return self.add(name, a.mean(0) - b.mean(0), hook=hook, source="mean_difference", provenance=prov, **kw)

    # ---- files ---------------------------------------------------------------------------------------
    def save(self, folder) -> Path:
        """Write ``directions.json`` and ``directions.safetensors`` into ``folder`` (created); returns it."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        entries, tensors = [], {}
        for i, d in enumerate(self._items.values()):
            key = f"d{i}"
            tensors[key] = np.ascontiguousarray(d.vector, dtype=np.float32)
            entries.append({"name": d.name, "key": key, "dim": int(d.vector.shape[0]), "space": d.space,
                            "hook": d.hook, "source": d.source, "provenance": d.provenance})
        save_file(tensors, str(folder / TENSORS_NAME))
        (folder / JSON_NAME).write_text(json.dumps({"format": FORMAT, "version": 1, "directions": entries}, indent=1))
        return folder

    @classmethod
    def load(cls, folder) -> "DirectionStore":
        """Read a folder :meth:`save` wrote, validating everything (see the module docstring)."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        jpath, tpath = folder / JSON_NAME, folder / TENSORS_NAME
        for p in (jpath, tpath):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: expected a file written by DirectionStore.save")
        if jpath.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"{jpath}: expected at most {MAX_JSON_BYTES} bytes, got {jpath.stat().st_size}")
        meta = json.loads(jpath.read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != 1:
            raise ValueError(f"{jpath}: expected format {FORMAT!r} version 1, got {str(meta)[:80]!r}")
        entries = meta.get("directions")
        if not isinstance(entries, list):
            raise ValueError(f"{jpath}: expected 'directions' to be a list, got {type(entries).__name__}")
        tensors = load_file(str(tpath))
        keys = [e.get("key") if isinstance(e, dict) else None for e in entries]
        if len(set(keys)) != len(keys) or set(keys) != set(tensors):
            raise ValueError(f"{folder}: expected one tensor per entry, got entry keys {keys} and tensors {sorted(tensors)}")
        store = cls()
        for i, e in enumerate(entries):
            where = f"{jpath} entry {i}"
            dim = e.get("dim")
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
                raise ValueError(f"{where}: expected 'dim' a positive integer, got {dim!r}")
            store.add(_text(e.get("name"), f"{where} name"), _vector(tensors[e["key"]], f"{where} tensor", dim),
                      _text(e.get("space"), f"{where} space"), hook=_text(e.get("hook", ""), f"{where} hook", True),
                      source=e.get("source"), provenance=_provenance(e.get("provenance", {}), f"{where} provenance"))
        return store
