"""Activation collection: one ``[N, d_in]`` float32 store of hook activations with what each one saw.

Every step of a :class:`~dtwidgets.data.Trajectories` set becomes one window ending at that step
(``Trajectories.windows``: left-padded at the episode start, RTG = the step's return-to-go), and
the activation is read at the last token of the chosen kind (the state token by default, where the
action is predicted). Nothing keeps the model's autograd graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters.device import device_of
from .hooks import activations_at, hook_site, token_position


@dataclass
class ActivationStore:
    """Activations and their context (N rows).

    Attributes:
        acts: ``[N, d_in]`` float32 tensor (no grad), finite.
        hook_name, token: where they were read; position: the token's index in the window.
        episode, step: ``[N]`` int64 episode index and episode timestep of each window's last step.
        rtg: ``[N]`` float32 return-to-go the model was conditioned on.
        observations: ``[N, W, H, 3]`` uint8 observation of that step (``[x, y, channel]``).
        actions: ``[N]`` int64 action taken at that step (recorded, not the model's).
    """

    acts: torch.Tensor
    hook_name: str
    token: str
    position: int
    episode: np.ndarray
    step: np.ndarray
    rtg: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.acts = check_activations(self.acts, "ActivationStore.acts")
        n = self.acts.shape[0]
        for name in ("episode", "step", "rtg", "actions"):
            a = np.asarray(getattr(self, name))
            if a.shape != (n,):
                raise ValueError(f"expected ActivationStore.{name} of shape ({n},), got {a.shape}")
            setattr(self, name, a)
        if self.observations.shape[0] != n:
            raise ValueError(f"expected {n} observations, got {self.observations.shape[0]}")

    def __len__(self) -> int:
        return int(self.acts.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.acts.shape[1])

    def __repr__(self) -> str:
        return (f"ActivationStore({len(self)} x {self.d_in} at {self.hook_name!r}, token {self.token!r}, "
                f"{len(np.unique(self.episode))} episodes)")

    def select(self, idx) -> "ActivationStore":
        """Rows ``idx`` (indices or mask) as a new store."""
        i = np.arange(len(self))[np.asarray(idx)]
        return ActivationStore(self.acts[torch.as_tensor(i, device=self.acts.device)], self.hook_name, self.token, self.position,
                               self.episode[i], self.step[i], self.rtg[i], self.observations[i], self.actions[i],
                               dict(self.metadata))

    def example_slots(self, rows: np.ndarray, values: np.ndarray, schema) -> dict:
        """The :class:`~dtwidgets.widgets.FeatureBrowserView` example traits of the stored rows ``rows``
        ``[F, E]`` (``-1``: an empty slot) with their activations ``values`` ``[F, E]``: ``examples_obs``
        (drawn as ``schema.thumbnails`` says, zeros in empty slots), ``examples_view`` and
        ``examples_meta`` ``[F, E, 5]`` (activation, RTG, step, action, episode; activation -1 when empty)."""
        rows = np.asarray(rows)
        ok = rows >= 0
        r = np.where(ok, rows, 0)
        pictures, view = schema.thumbnails(self.observations[r])
        meta = np.stack([np.where(ok, values, -1.0), self.rtg[r], self.step[r], self.actions[r], self.episode[r]], -1)
        return dict(examples_obs=np.where(ok[..., None, None, None], pictures, 0).astype(np.uint8),
                    examples_view=view, examples_meta=meta.astype(np.float32))


def check_store(store: ActivationStore, sae) -> None:
    """Raise one clear ValueError unless ``store`` was read where ``sae`` reads: the same hook, the
    same token kind (``sae.cfg.token``) and width ``d_in``."""
    c = sae.cfg
    if (store.hook_name, store.token, store.d_in) != (c.hook_name, c.token, c.d_in):
        raise ValueError(f"expected activations read where the SAE reads: hook {c.hook_name!r}, {c.token!r} tokens, "
                         f"d_in={c.d_in}; got a store at {store.hook_name!r}, {store.token!r} tokens, d_in={store.d_in}")


def check_activations(acts, name: str = "activations") -> torch.Tensor:
    """``acts`` as a ``[N, d_in]`` float32 tensor without grad; NaN / inf refused with a clear error."""
    t = acts.detach() if torch.is_tensor(acts) else torch.as_tensor(np.asarray(acts), device="cpu")
    if t.ndim != 2:
        raise ValueError(f"expected {name} of shape [N, d_in], got shape {tuple(t.shape)}")
    if not t.dtype.is_floating_point:
        raise ValueError(f"expected floating-point {name}, got dtype {t.dtype}")
    t = t.float()
    bad = ~torch.isfinite(t)
    if bad.any():
        rows = bad.any(1).nonzero().flatten()
        raise ValueError(f"refused {name}: {int(bad.sum())} NaN/inf values in {len(rows)} rows "
                         f"(first rows {rows[:5].tolist()}); expected finite activations")
    return t.contiguous()


@torch.no_grad()
def collect_activations(adapter, trajectories, hook: str, token: str = "state", *, batch_size: int = 1024,
                        rtgs=None, max_steps: int | None = None, seed: int = 0, progress: bool = True) -> ActivationStore:
    """Run the model over every step of ``trajectories`` and keep the activation at ``hook``.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        trajectories: a :class:`~dtwidgets.data.Trajectories` (or a path to a ``.npz`` file of one).
        hook: e.g. ``"blocks.0.hook_resid_post"`` (see :func:`~dtwidgets.sae.hooks.hook_names`).
        token: ``"state"`` (default), ``"rtg"`` or ``"action"``: the last such token of each window.
        rtgs: ``[N]`` RTG per step (default: the recorded ``rtgs`` if present, else the return-to-go),
            clipped to the model's ``rtg_range``.
        max_steps: keep at most this many steps (a seeded random subset), ``None`` = all.
        progress: tqdm bar over batches.
    """
    from tqdm.auto import tqdm

    from ..data.trajectories import Trajectories

    traj = Trajectories.load(trajectories) if not isinstance(trajectories, Trajectories) else trajectories
    site = hook_site(adapter, hook)
    pos = token_position(adapter, token)
    r = np.asarray(rtgs if rtgs is not None else (traj.rtgs if traj.rtgs is not None else traj.rtg()), np.float32)
    if r.shape != (traj.n_steps,):
        raise ValueError(f"expected rtgs of shape ({traj.n_steps},), got {r.shape}")
    r = np.clip(r, *adapter.rtg_range).astype(np.float32)
    steps = np.arange(traj.n_steps)
    if max_steps is not None and max_steps < traj.n_steps:
        steps = np.sort(np.random.default_rng(seed).choice(traj.n_steps, int(max_steps), replace=False))
    if not len(steps):
        raise ValueError("expected trajectories with at least one step, got none")
    T = adapter.layout.n_timesteps
    out = torch.empty(len(steps), site.d_in, device=device_of(adapter))  # the store lives on the model's device
    for s in tqdm(range(0, len(steps), batch_size), desc=f"activations {hook}", unit="batch",
                  disable=not progress, leave=False):
        ends = steps[s:s + batch_size]
        window, _ = traj.windows(ends, T, adapter.pad_action, rtgs=r)
        out[s:s + len(ends)] = activations_at(adapter, window, site, pos)
    meta = {"env_id": traj.env_id, "n_episodes": int(traj.n_episodes), "source": traj.metadata.get("collector", "")}
    return ActivationStore(out, hook, token, pos, traj.episode_ids()[steps], traj.timesteps[steps], r[steps],
                           traj.observations[steps], traj.actions[steps], meta)


def rollout_activations(adapter, hook: str, token: str = "state", *, env_id: str | None = None, n_episodes: int = 100,
                        policy_mix=None, seed: int = 0, progress: bool = True, **kwargs) -> ActivationStore:
    """Collect fresh episodes with :func:`~dtwidgets.data.collect_trajectories` (behaviour policies,
    seeded) and return their activations (keyword arguments go to :func:`collect_activations`)."""
    from ..adapters.minigrid_env import DEFAULT_ENV_ID
    from ..data.collect import collect_trajectories

    traj = collect_trajectories(env_id or DEFAULT_ENV_ID, n_episodes=n_episodes, policy_mix=policy_mix, seed=seed,
                                progress=progress)
    return collect_activations(adapter, traj, hook, token, progress=progress, **kwargs)
