"""Configuration of the project's Decision Transformer (mirrors the reference checkpoint format)."""
from __future__ import annotations

from typing import cast

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields

from ..adapters.layout import STEP_LAYOUTS, TokenLayout
from ..adapters.schema import ObservationSchema

LAYER_NORMS = (None, "LN", "LNPre")
ACT_FNS = ("relu", "gelu", "silu", "gelu_new", "gelu_fast")
TIME_EMBEDDINGS = ("embedding", "linear")
DEFAULT_ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")

#: inclusive upper bound of every integer size, checked before anything is allocated (a config from
#: a file is untrusted: ``max_timestep = 1e12`` would otherwise try to allocate a 512 TB table).
SIZE_LIMITS = {"d_model": 16384, "n_heads": 512, "d_mlp": 65536, "n_layers": 512, "n_ctx": 3 * 4096 - 1,
               "n_actions": 4096, "max_timestep": 1_000_000}
OBS_KINDS = ("codes", "pixels")
"""Observation kinds a DecisionTransformer reads (one-hot cells are ``codes`` with ``one_hot_obs``)."""
GRID_SIDE_LIMIT = 64  # egocentric view side (MiniGrid's default is 7)
PIXEL_SIDE_LIMIT = 512  # image side of pixel observations (MiniGrid's RGB partial view is 7 x 8 = 56)
MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32: refuse a config that would allocate more
#: fields a saved config must state (a missing one would silently fall back to a default architecture)
REQUIRED_JSON_FIELDS = ("d_model", "n_heads", "d_mlp", "n_layers", "n_ctx", "layer_norm", "gated_mlp", "act_fn",
                        "obs_shape", "one_hot_obs", "n_actions", "max_timestep", "time_embedding_type")


@dataclass
class DTConfig:
    """Hyper-parameters of a :class:`~dtwidgets.model.DecisionTransformer`.

    Attributes:
        d_model, n_heads, d_mlp, n_layers: transformer sizes (``d_head = d_model // n_heads``).
        n_ctx: tokens of context: ``3*T - 1`` for ``T`` timesteps of the R-s-a layout (2 = RTG + state
            only), ``2*T - 1`` for s-a, ``2*T`` for R-s.
        token_layout: which tokens a timestep has (:data:`~dtwidgets.adapters.schema.STEP_LAYOUTS`):
            ``"R-s-a"`` (RTG, state, action; the default and the reference format), ``"s-a"`` (no RTG)
            or ``"R-s"`` (no actions). The model keeps every embedding module either way (one file layout).
        layer_norm: ``None``, ``"LN"`` or ``"LNPre"``.
        gated_mlp: TransformerLens ``GatedMLP`` (``(act(x W_gate) * (x W_in) + b_in) W_out + b_out``).
        act_fn: MLP activation.
        obs_shape: observation shape: ``(W, H, 3)`` MiniGrid codes; ``(W, H, 20)`` one-hot cells (read
            as ``one_hot_obs=True``, stored as ``(W, H, 3)``: such a model takes codes or one-hot cells);
            ``(height, width, 3)`` RGB pixels with ``obs_kind="pixels"``.
        one_hot_obs: the state embedding reads 20 one-hot features per cell instead of 3 raw codes.
        obs_kind: ``"codes"`` (MiniGrid codes, or one-hot cells with ``one_hot_obs``) or ``"pixels"``
            (uint8 RGB, read as ``pixel / 255`` in ``(channel, row, column)`` order; drawn as an image).
        n_actions: action logits (3 for Dynamic Obstacles, 7 for the full MiniGrid set).
        max_timestep: largest episode timestep the time embedding knows (rows = max_timestep + 1).
        time_embedding_type: ``"embedding"`` (lookup table) or ``"linear"`` (``Linear(1, d_model)``).
        rtg_range: accepted return-to-go values ``(low, high)``, inclusive.
    """

    d_model: int = 128
    n_heads: int = 2
    d_mlp: int = 256
    n_layers: int = 1
    n_ctx: int = 2
    layer_norm: str | None = None
    gated_mlp: bool = False
    act_fn: str = "relu"
    obs_shape: tuple[int, int, int] = (7, 7, 3)
    one_hot_obs: bool = False
    n_actions: int = 3
    max_timestep: int = 1000
    time_embedding_type: str = "embedding"
    env_id: str = "MiniGrid-Dynamic-Obstacles-8x8-v0"
    action_names: tuple[str, ...] = field(default=None)  # type: ignore[arg-type]
    rtg_range: tuple[float, float] = (-1.0, 1.0)
    seed: int = 0
    token_layout: str = "R-s-a"
    obs_kind: str = "codes"

    def __post_init__(self):
        problems = _type_and_range_problems(self)
        if problems:  # sizes and types first: nothing below may run on a nonsense value
            raise ValueError("invalid DTConfig: expected " + "; expected ".join(problems))
        self.obs_shape = cast("tuple[int, int, int]", tuple(int(s) for s in self.obs_shape))
        if self.obs_kind == "codes" and len(self.obs_shape) == 3 and self.obs_shape[2] == 20:  # one-hot cells
            self.obs_shape, self.one_hot_obs = (self.obs_shape[0], self.obs_shape[1], 3), True
        self.rtg_range = cast("tuple[float, float]", tuple(float(r) for r in self.rtg_range))
        if self.action_names is None:
            self.action_names = DEFAULT_ACTION_NAMES[: self.n_actions] if self.n_actions <= 7 else tuple(
                f"action {i}" for i in range(self.n_actions))
        self.action_names = tuple(self.action_names)
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model ({self.d_model}) divisible by n_heads ({self.n_heads})")
        if self.layer_norm not in LAYER_NORMS:
            problems.append(f"layer_norm in {LAYER_NORMS}, got {self.layer_norm!r}")
        if self.act_fn not in ACT_FNS:
            problems.append(f"act_fn in {ACT_FNS}, got {self.act_fn!r}")
        if self.time_embedding_type not in TIME_EMBEDDINGS:
            problems.append(f"time_embedding_type in {TIME_EMBEDDINGS}, got {self.time_embedding_type!r}")
        if self.obs_kind not in OBS_KINDS:
            problems.append(f"obs_kind in {OBS_KINDS}, got {self.obs_kind!r}")
        elif self.obs_kind == "pixels" and self.one_hot_obs:
            problems.append("one_hot_obs=False for pixel observations (obs_kind='pixels')")
        if len(self.obs_shape) != 3 or self.obs_shape[2] != 3:
            problems.append(f"obs_shape (W, H, 3) of MiniGrid codes, (W, H, 20) of one-hot cells or (height, width, 3) "
                            f"of RGB pixels with obs_kind='pixels', got {self.obs_shape}")
        if len(self.action_names) != self.n_actions:
            problems.append(f"{self.n_actions} action_names, got {len(self.action_names)}")
        elif not all(isinstance(a, str) and a for a in self.action_names):
            problems.append(f"action_names to be non-empty strings, got {self.action_names!r}")
        elif len(set(self.action_names)) != len(self.action_names):
            problems.append(f"distinct action_names, got {self.action_names!r}")
        if not problems and self.n_parameters() > MAX_PARAMETERS:
            problems.append(f"at most {MAX_PARAMETERS:,} parameters, got {self.n_parameters():,} (d_model "
                            f"{self.d_model}, d_mlp {self.d_mlp}, n_layers {self.n_layers}, max_timestep {self.max_timestep})")
        if problems:
            raise ValueError("invalid DTConfig: expected " + "; expected ".join(problems))
        if self.token_layout not in STEP_LAYOUTS:
            raise ValueError(f"invalid DTConfig: expected token_layout in {tuple(STEP_LAYOUTS)}, got {self.token_layout!r}")
        TokenLayout.from_n_ctx(self.n_ctx, self.token_layout)  # validates n_ctx

    def n_parameters(self) -> int:
        """About how many float parameters a model of this config allocates (computed, nothing allocated;
        the backbone may add a few small tensors)."""
        d, n_obs = self.d_model, 20 * self.obs_shape[0] * self.obs_shape[1] if self.one_hot_obs else 3 * self.obs_shape[0] * self.obs_shape[1]
        time = (self.max_timestep + 1) * d if self.time_embedding_type == "embedding" else 2 * d
        mlp = (3 if self.gated_mlp else 2) * d * self.d_mlp + self.d_mlp + d
        block = 4 * d * d + 4 * d + mlp + 4 * d
        embed = d + n_obs * d + (self.n_actions + 1) * d + self.n_ctx * d
        heads = (d + 1) * (self.n_actions + n_obs + 1)
        return int(time + embed + heads + self.n_layers * block + 2 * d)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout.from_n_ctx(self.n_ctx, self.token_layout)

    @property
    def schema(self) -> ObservationSchema:
        if self.obs_kind == "pixels":
            return ObservationSchema(grid_shape=self.obs_shape[:2], kind="pixels")
        return ObservationSchema(grid_shape=self.obs_shape[:2], one_hot=self.one_hot_obs)

    @property
    def n_obs(self) -> int:
        return self.schema.n_features

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> "DTConfig":
        """Parse a config written by :meth:`to_json`; ``source`` (e.g. the file name) is named in errors.

        Every architecture field (:data:`REQUIRED_JSON_FIELDS`) must be present: a missing one would
        otherwise silently become a default and build a different model.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: expected a DTConfig as a JSON object, got text that is not JSON "
                             f"({e}): {str(text)[:80]!r}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a DTConfig as a JSON object, got a JSON {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown DTConfig keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        missing = [k for k in REQUIRED_JSON_FIELDS if k not in data]
        if missing:
            raise ValueError(f"{source}: the DTConfig is missing fields {missing}; expected all of "
                             f"{list(REQUIRED_JSON_FIELDS)}, got {sorted(data)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from None


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _type_and_range_problems(cfg: DTConfig) -> list[str]:
    """Types and bounds of every field, checked before anything derived is computed or allocated."""
    p = []
    for name, hi in SIZE_LIMITS.items():
        v = getattr(cfg, name)
        lo = 0 if name == "max_timestep" else 1
        if not _is_int(v):
            p.append(f"{name} to be an integer, got {type(v).__name__} {v!r}")
        elif not lo <= v <= hi:
            p.append(f"{name} in [{lo}, {hi:,}], got {v:,}")
        else:
            setattr(cfg, name, int(v))  # numpy integers -> int (JSON, hashing)
    if not _is_int(cfg.seed):
        p.append(f"seed to be an integer, got {type(cfg.seed).__name__} {cfg.seed!r}")
    for name in ("gated_mlp", "one_hot_obs"):
        if not isinstance(getattr(cfg, name), bool):
            p.append(f"{name} to be true or false, got {getattr(cfg, name)!r}")
    for name in ("act_fn", "time_embedding_type", "env_id", "token_layout", "obs_kind"):
        if not isinstance(getattr(cfg, name), str):
            p.append(f"{name} to be a string, got {type(getattr(cfg, name)).__name__} {getattr(cfg, name)!r}")
    shape = cfg.obs_shape
    side = PIXEL_SIDE_LIMIT if cfg.obs_kind == "pixels" else GRID_SIDE_LIMIT
    if not isinstance(shape, (tuple, list)) or len(shape) != 3 or not all(_is_int(s) for s in shape) \
            or not all(1 <= s <= side for s in shape[:2]):
        p.append(f"obs_shape (W, H, 3) with integer 1 <= W, H <= {side}, got {shape!r}")
    r = cfg.rtg_range
    if not isinstance(r, (tuple, list)) or len(r) != 2 or not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in r):
        p.append(f"rtg_range as two numbers (low, high), got {r!r}")
    elif not all(math.isfinite(float(x)) for x in r) or not float(r[0]) < float(r[1]):
        p.append(f"rtg_range (low, high) finite with low < high, got {tuple(r)!r}")
    names = cfg.action_names
    if names is not None and (isinstance(names, str) or not isinstance(names, (tuple, list))):
        p.append(f"action_names as a list of strings, got {type(names).__name__} {names!r}")
    return p
