"""Configuration of the project's Decision Transformer (mirrors the reference checkpoint format)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ..adapters.schema import ObservationSchema, TokenLayout

LAYER_NORMS = (None, "LN", "LNPre")
ACT_FNS = ("relu", "gelu", "silu", "gelu_new", "gelu_fast")
TIME_EMBEDDINGS = ("embedding", "linear")
DEFAULT_ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


@dataclass
class DTConfig:
    """Hyper-parameters of a :class:`~dtwidgets.model.DecisionTransformer`.

    Attributes:
        d_model, n_heads, d_mlp, n_layers: transformer sizes (``d_head = d_model // n_heads``).
        n_ctx: tokens of context, ``3*T - 1`` for ``T`` timesteps (2 = RTG + state only).
        layer_norm: ``None``, ``"LN"`` or ``"LNPre"``.
        gated_mlp: TransformerLens ``GatedMLP`` (``(act(x W_gate) * (x W_in) + b_in) W_out + b_out``).
        act_fn: MLP activation.
        obs_shape: raw observation shape ``(W, H, 3)``.
        one_hot_obs: the state embedding reads 20 one-hot features per cell instead of 3 raw codes.
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
    action_names: tuple[str, ...] = field(default=None)  # type: ignore[assignment]
    rtg_range: tuple[float, float] = (-1.0, 1.0)
    seed: int = 0

    def __post_init__(self):
        self.obs_shape = tuple(int(s) for s in self.obs_shape)
        self.rtg_range = tuple(float(r) for r in self.rtg_range)
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
        if len(self.obs_shape) != 3 or self.obs_shape[2] != 3:
            problems.append(f"obs_shape (W, H, 3) of a raw MiniGrid observation, got {self.obs_shape}")
        if len(self.action_names) != self.n_actions:
            problems.append(f"{self.n_actions} action_names, got {len(self.action_names)}")
        if problems:
            raise ValueError("invalid DTConfig: expected " + "; ".join(problems))
        TokenLayout.from_n_ctx(self.n_ctx)  # validates n_ctx

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout.from_n_ctx(self.n_ctx)

    @property
    def schema(self) -> ObservationSchema:
        return ObservationSchema(grid_shape=self.obs_shape[:2], one_hot=self.one_hot_obs)

    @property
    def n_obs(self) -> int:
        return self.schema.n_features

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "DTConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DTConfig keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**data)
