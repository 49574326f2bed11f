"""Observation schema: the vocabulary every view and analysis shares (the token layout: :mod:`.layout`).

An observation is MiniGrid's egocentric encoding, indexed ``[x, y, channel]`` (x = column,
y = row, row 0 farthest ahead, agent at ``(view//2, view-1)`` facing up). A model may read it
raw (3 integer channels: object, colour, state) or one-hot (20 binary features: 11 objects,
6 colours, 3 states). Flattened model input order is ``(channel, x, y)``:
``flat = c * W * H + x * H + y`` (the reference work's convention).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np

# The MiniGrid vocabulary lives in dtwidgets.vocabulary (torch- and numpy-free, so widgets can use
# it); re-exported here as part of the adapter layer's schema.
from ..vocabulary import (  # noqa: E402,F401
    CODE_LIMITS, COLOUR_TO_IDX, COLOURS, OBJECT_TO_IDX, OBJECTS, ONE_HOT_FEATURES, OUTCOMES, RAW_CHANNELS,
    STATE_TO_IDX, STATES, episode_outcome,
)


#: state codes an agent cell may hold: its facing 0..3 (MiniGrid's encoding, e.g. FullyObsWrapper)
N_DIRECTIONS = 4


def resolve_action(action_names, action, where: str = "") -> int:
    """An action given by name (``"forward"``) or index -> its index; one clear error otherwise.

    Shared by model adapters, env adapters, analysis functions and the Explorer.
    """
    names = tuple(action_names)
    suffix = f" for {where}" if where else ""
    if isinstance(action, str):
        if action not in names:
            raise ValueError(f"expected an action in {names}{suffix}, got {action!r}")
        return names.index(action)
    try:
        if isinstance(action, (bool, np.bool_)):
            raise TypeError
        a = operator.index(action)  # int, numpy or 0-d integer torch tensor
    except TypeError:
        raise TypeError(f"expected an action index (int) or a name in {names}{suffix}, got {action!r}") from None
    if not 0 <= a < len(names):
        raise ValueError(f"expected an action index in [0, {len(names) - 1}] {names}{suffix}, got {a}")
    return a


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor (any device)
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def check_observation_codes(observations, where: str = "observations") -> None:
    """Raise one ValueError unless ``observations [..., W, H, 3]`` holds integer MiniGrid codes
    (object in ``[0, 10]``, colour in ``[0, 5]``, state in ``[0, 2]``, or the facing ``[0, 3]`` on
    a cell whose object is ``agent``, MiniGrid's own encoding of the agent as in a full grid from
    ``FullyObsWrapper``; floats must be whole numbers).

    The message names the first offending value, why it is invalid, its cell ``[x, y, channel]`` and
    its leading (batch, step) index, and how many values are invalid in all. Raises TypeError for
    non-numeric arrays.
    """
    a = _as_numpy(observations)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected integer MiniGrid codes, got an array of dtype {a.dtype}")
    if a.ndim < 3 or a.shape[-1] != 3:
        raise ValueError(f"{where}: expected raw MiniGrid codes of shape [..., W, H, 3], got shape {a.shape}")
    if a.dtype.kind == "b":
        return  # 0/1 codes are all valid
    limits = np.array(CODE_LIMITS)
    bad = a >= limits
    bad[..., 2] &= ~((a[..., 0] == OBJECTS.index("agent")) & (a[..., 2] < N_DIRECTIONS))
    if a.dtype.kind != "u":
        bad |= a < 0
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad |= ~np.isfinite(a) | (a != np.floor(a))
    if not bad.any():
        return
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    *lead, x, y, c = idx
    v = a[idx]
    if a.dtype.kind == "f" and not np.isfinite(v):
        why = "not a finite number"
    elif a.dtype.kind == "f" and v != np.floor(v):
        why = "not a whole number"
    elif v < 0:
        why = "negative"
    else:
        why = f"too large: {RAW_CHANNELS[c]} codes are 0..{CODE_LIMITS[c] - 1}"
    at = f" of observation [{', '.join(map(str, lead))}]" if lead else ""
    value = v.item()
    raise ValueError(
        f"{where}: expected integer MiniGrid codes [x, y, (object 0..{CODE_LIMITS[0] - 1}, colour "
        f"0..{CODE_LIMITS[1] - 1}, state 0..{CODE_LIMITS[2] - 1})], got {RAW_CHANNELS[c]} code {value!r} ({why}) "
        f"at cell [x={x}, y={y}, channel {c}]{at}; {int(bad.sum())} invalid value(s) in all"
        + ("; these look like RGB pixels: a model reads them with DTConfig(obs_kind='pixels'), an env "
           "describes them with ObservationSchema(kind='pixels')" if a.max() > 20 else ""))


def decode_one_hot(obs: np.ndarray) -> np.ndarray:
    """One-hot cells ``[..., W, H, 20]`` (11 objects, 6 colours, 3 states; MiniGrid's
    ``OneHotPartialObsWrapper`` order; any leading batch axes) -> codes ``[..., W, H, 3]`` uint8. A cell
    with no object bit set decodes as ``unseen``; more than one bit in a group raises ValueError naming
    the cell."""
    a = np.asarray(obs)
    groups = (len(OBJECTS), len(COLOURS), len(STATES))
    if a.ndim < 3 or a.shape[-1] != sum(groups):
        raise ValueError(f"expected one-hot cells of shape [..., W, H, {sum(groups)}], got {a.shape}")
    out = np.zeros((*a.shape[:-1], 3), np.uint8)
    start = 0
    for c, n in enumerate(groups):
        part = a[..., start:start + n] != 0
        many = np.argwhere(part.sum(-1) > 1)
        if len(many):
            raise ValueError(f"expected at most one bit per group, got {int(part[tuple(many[0])].sum())} "
                             f"{('object', 'colour', 'state')[c]} bits at cell {tuple(int(v) for v in many[0])}")
        out[..., c] = part.argmax(-1)
        start += n
    return out


def check_one_hot_features(observations, where: str = "observations") -> None:
    """Raise one ValueError unless one-hot observations ``[..., W, H, 20]`` hold only 0 and 1."""
    a = _as_numpy(observations)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected one-hot features (0 or 1), got an array of dtype {a.dtype}")
    if a.dtype.kind == "b":
        return
    bad = (a != 0) & (a != 1)
    if not bad.any():
        return
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    *lead, x, y, c = idx
    at = f" of observation [{', '.join(map(str, lead))}]" if lead else ""
    name = ONE_HOT_FEATURES[c] if c < len(ONE_HOT_FEATURES) else f"feature {c}"
    raise ValueError(f"{where}: expected one-hot features of 0 or 1, got {a[idx].item()!r} at cell [x={x}, y={y}, "
                     f"channel {c} ({name})]{at}; {int(bad.sum())} invalid value(s) in all")


#: observation kinds a schema can describe (see :class:`ObservationSchema`)
OBSERVATION_KINDS = ("codes", "one_hot", "pixels", "vector")
#: what a grid observation covers: the agent's egocentric view or the whole grid
OBSERVATION_VIEWS = ("egocentric", "full")


@dataclass(frozen=True)
class ObservationSchema:
    """What a model's observation input means.

    Attributes:
        grid_shape: ``(W, H)`` of the grid (the egocentric view, 7, 7 for MiniGrid's default, or the
            whole grid); for ``kind="pixels"`` the image's ``(height, width)``; for ``"vector"``
            ``(n_values, 1)``.
        one_hot: True when the model reads 20 one-hot features per cell, False for 3 raw codes.
        channel_names: one name per model input channel (3 or 20; 3 RGB channels for pixels).
        channel_vocab: for raw channels, the value names of each channel (index -> name).
        kind: ``"codes"`` (``[W, H, 3]`` MiniGrid codes), ``"one_hot"`` (``[W, H, 20]`` 0/1),
            ``"pixels"`` (``[H, W, 3]`` uint8 RGB, drawn as an image, never as codes) or ``"vector"``
            (``[D]`` values, drawn as bars). Default from ``one_hot``.
        view: ``"egocentric"`` (agent at ``(W//2, H-1)`` facing up) or ``"full"`` (the whole grid;
            the agent is the cell whose object is ``agent`` and its state code is its facing
            0..3, MiniGrid's ``FullyObsWrapper`` encoding). Grid kinds only.
    """

    grid_shape: tuple[int, int] = (7, 7)
    one_hot: bool = False
    channel_names: tuple[str, ...] = field(default=None)  # type: ignore[arg-type]
    channel_vocab: tuple[tuple[str, ...], ...] = (OBJECTS, COLOURS, STATES)
    kind: str = field(default=None)  # type: ignore[assignment]
    view: str = "egocentric"

    def __post_init__(self):
        kind = self.kind or ("one_hot" if self.one_hot else "codes")
        if kind not in OBSERVATION_KINDS:
            raise ValueError(f"expected an observation kind in {OBSERVATION_KINDS}, got {self.kind!r}")
        if self.view not in OBSERVATION_VIEWS:
            raise ValueError(f"expected an observation view in {OBSERVATION_VIEWS}, got {self.view!r}")
        if self.one_hot and kind != "one_hot":
            raise ValueError(f"one_hot=True contradicts kind={kind!r}; pass kind='one_hot' (or one_hot=False)")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "one_hot", kind == "one_hot")
        if self.channel_names is None:
            names = {"codes": RAW_CHANNELS, "one_hot": ONE_HOT_FEATURES, "pixels": ("red", "green", "blue"),
                     "vector": ("value",)}[kind]
            object.__setattr__(self, "channel_names", names)

    @property
    def is_grid(self) -> bool:
        """True for grid kinds (codes, one-hot): observations are cells ``[x, y, channel]``."""
        return self.kind in ("codes", "one_hot")

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """Shape of one observation as the env gives it: ``(W, H, 3)``, ``(W, H, 20)``, ``(H, W, 3)`` or ``(D,)``."""
        if self.kind == "vector":
            return (self.grid_shape[0],)
        return (*self.grid_shape, self.n_channels)

    def describe(self) -> dict:
        """A JSON-serialisable description (stored with trajectories; see :meth:`from_description`)."""
        return {"kind": self.kind, "view": self.view, "shape": list(self.observation_shape)}

    @classmethod
    def from_description(cls, d: dict) -> "ObservationSchema":
        """The schema :meth:`describe` wrote (MiniGrid vocabulary; clear error for anything else)."""
        if not isinstance(d, dict) or d.get("kind") not in OBSERVATION_KINDS or not isinstance(d.get("shape"), list):
            raise ValueError(f"expected an observation description {{'kind': one of {OBSERVATION_KINDS}, "
                             f"'view': ..., 'shape': [...]}}, got {d!r}")
        shape = [int(v) for v in d["shape"]]
        grid = (shape[0], 1) if d["kind"] == "vector" else (shape[0], shape[1])
        names = None if d["kind"] != "one_hot" or shape[-1] == len(ONE_HOT_FEATURES) else \
            tuple(f"feature {i}" for i in range(shape[-1]))
        return cls(grid_shape=grid, kind=d["kind"], view=d.get("view", "egocentric"), channel_names=names)  # type: ignore[arg-type]

    def check(self, observations, where: str = "observations") -> None:
        """Raise one clear error unless ``observations [..., *observation_shape]`` fit this kind:
        codes within MiniGrid's limits (an agent cell of a full grid may hold its facing 0..3),
        one-hot 0/1, pixels any uint8 RGB. Vectors are checked for shape only."""
        a = _as_numpy(observations)
        want = self.observation_shape
        if a.ndim < len(want) or tuple(a.shape[a.ndim - len(want):]) != want:
            raise ValueError(f"{where}: expected {self.kind} observations of shape [..., "
                             f"{', '.join(map(str, want))}] ({self.describe()}), got shape {a.shape}")
        if self.kind == "one_hot":
            check_one_hot_features(a, where)
        elif self.kind == "codes":
            check_observation_codes(a, where)
        elif self.kind == "pixels" and a.dtype != np.uint8:
            raise TypeError(f"{where}: expected uint8 RGB pixels, got dtype {a.dtype}")

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def n_features(self) -> int:
        """Length of the flattened model input: ``C * W * H``."""
        return self.n_channels * self.grid_shape[0] * self.grid_shape[1]

    @property
    def raw_shape(self) -> tuple[int, int, int]:
        """Shape of a raw MiniGrid observation ``(W, H, 3)``."""
        return (*self.grid_shape, 3)

    @property
    def agent_cell(self) -> tuple[int, int] | None:
        """Agent cell ``(x, y)`` in the egocentric view; None when the observation has no fixed agent
        cell (a full grid: find it with :meth:`agent_in`; pixels; vectors)."""
        if self.kind not in ("codes", "one_hot") or self.view != "egocentric":
            return None
        return (self.grid_shape[0] // 2, self.grid_shape[1] - 1)

    def agent_in(self, observation) -> tuple[tuple[int, int], int] | None:
        """``((x, y), facing)`` of the agent in one observation: the fixed egocentric cell facing up
        (facing 3), or for a full grid the cell holding the agent (its state code is its facing);
        None when there is none (pixels, vectors, or no agent cell)."""
        if self.agent_cell is not None:
            return self.agent_cell, 3
        if self.kind not in ("codes", "one_hot"):
            return None
        a = _as_numpy(observation)
        agent = OBJECTS.index("agent")
        if self.kind == "one_hot":
            cells = np.argwhere(a[..., agent] == 1)
            if not len(cells):
                return None
            x, y = (int(v) for v in cells[0])
            states = a[x, y, len(OBJECTS) + len(COLOURS):]
            return (x, y), int(np.argmax(states)) if states.any() else 0
        cells = np.argwhere(a[..., 0] == agent)
        if not len(cells):
            return None
        x, y = (int(v) for v in cells[0])
        return (x, y), int(a[x, y, 2])

    def thumbnails(self, observations) -> tuple[np.ndarray, str]:
        """Observations ``[N..., *observation_shape]`` as the pictures a widget draws, and how to draw
        them: ``(codes [N..., W, H, 3] uint8, "egocentric" | "full")`` for a grid (one-hot cells decoded;
        an egocentric view gets its agent drawn at ``(W//2, H-1)``, a full grid holds its agent cell),
        ``(pixels [N..., H, W, 3] uint8, "pixels")``, or ``(empty [N..., 0, 0, 3], "none")`` for vectors; one-hot
        also takes raw codes ``[N..., W, H, 3]`` (a one-hot model reads either), drawn as they are."""
        a = _as_numpy(observations)
        nd = len(self.observation_shape)
        if self.kind == "one_hot" and a.ndim >= 3 and tuple(a.shape[-3:]) == self.raw_shape:
            return a.astype(np.uint8), self.view
        if a.ndim < nd or tuple(a.shape[a.ndim - nd:]) != self.observation_shape:
            raise ValueError(f"thumbnails: expected observations [..., {', '.join(map(str, self.observation_shape))}] "
                             f"({self.kind}), got shape {a.shape}")
        lead = a.shape[:a.ndim - nd]
        if self.kind == "vector":
            return np.zeros((*lead, 0, 0, 3), np.uint8), "none"
        if self.kind == "pixels":
            return a.astype(np.uint8), "pixels"
        codes = decode_one_hot(a) if self.kind == "one_hot" else a.astype(np.uint8)
        return codes, self.view

    def feature_labels(self) -> list[str]:
        """One label per flattened feature, e.g. ``"object (3,5)"`` or ``"object=ball (3,5)"``."""
        W, H = self.grid_shape
        return [f"{c} ({x},{y})" for c in self.channel_names for x in range(W) for y in range(H)]

    def to_maps(self, flat) -> np.ndarray:
        """Reshape ``[..., C*W*H]`` (flattened feature order) to ``[..., C, W, H]`` maps."""
        a = np.asarray(flat)
        if a.shape[-1] != self.n_features:
            raise ValueError(
                f"expected a last dimension of {self.n_features} features "
                f"({self.n_channels} channels x {self.grid_shape}), got shape {a.shape}"
            )
        return a.reshape(*a.shape[:-1], self.n_channels, *self.grid_shape)
