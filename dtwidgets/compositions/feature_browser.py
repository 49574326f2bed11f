"""FeatureBrowser: browse an SAE's features on a Decision Transformer, each shown through grid states.

    browser = FeatureBrowser(adapter, sae, store)     # store: ActivationStore from collect_activations
    browser = FeatureBrowser.demo()                    # shipped "post" model + shipped SAE, offline
    browser.select(12)                                 # open feature 12's card (or click it)
    to_html(browser, "features.html")                 # a static page where clicking still works
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ..adapters.schema import resolve_action
from ..sae.features import FeatureSummary, summarize_features
from ..sae.metrics import check_hook
from ..sae.store import check_store
from ..widgets.feature_browser import FeatureBrowserView

META = ("activation", "rtg", "step", "action", "episode")


class FeatureBrowser(W.VBox):
    """A feature list and a feature card for ``sae`` over the states of ``store``.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter` (the model the SAE reads).
        sae: a :class:`~dtwidgets.sae.SparseAutoencoder` trained at one of its hooks.
        store: an :class:`~dtwidgets.sae.ActivationStore` at the same hook and token kind as the SAE
            was trained on (``sae.cfg.token``; the example states).
        pair: the action preference ``(a, b)`` of the list's "effect" column.
        features: feature indices to include (default: every feature that fires on the store).
        n_top, quantiles, n_bins: examples per card and histogram resolution.
    """

    def __init__(self, adapter, sae, store, *, pair=("forward", "right"), features=None, n_top: int = 6,
                 quantiles=(0.1, 0.5, 0.9), n_bins: int = 24, title: str = ""):
        check_hook(adapter, sae)
        check_store(store, sae)
        self.adapter, self.sae, self.store = adapter, sae, store
        self.summary: FeatureSummary = summarize_features(adapter, sae, store, n_top=n_top, quantiles=quantiles,
                                                          n_bins=n_bins)
        s = self.summary
        self.features = (np.flatnonzero(s.frequency > 0) if features is None
                         else np.asarray(features, dtype=np.int64).reshape(-1))
        if self.features.size and (self.features.min() < 0 or self.features.max() >= sae.d_sae):
            raise ValueError(f"expected feature indices in [0, {sae.d_sae - 1}], got {self.features.tolist()[:10]}")
        pair_idx = tuple(resolve_action(adapter.action_names, p) for p in pair)
        self.view = FeatureBrowserView(title=title or f"{sae.d_sae} SAE features at {sae.cfg.hook_name} ({sae.cfg.token} tokens, {len(store)} states)",
                                       action_names=list(adapter.action_names), pair=pair_idx,
                                       channel_names=list(adapter.schema.channel_names), **self._arrays())
        super().__init__([self.view])

    @classmethod
    def demo(cls, variant: str = "post", n_episodes: int | None = None, **kwargs) -> "FeatureBrowser":
        """The browser on a shipped demo model and its shipped SAE; example states come from freshly
        collected (seeded, offline) behaviour-policy episodes (``n_episodes``, default 100, of at most
        150 steps: goals, collisions and timeouts)."""
        from ..data.collect import collect_trajectories
        from ..demo import load_demo
        from ..sae import collect_activations, demo_sae
        from ..sae.train_demo import BROWSER_EPISODES, BROWSER_MAX_STEPS, BROWSER_MIX, BROWSER_SEED

        adapter, env = load_demo(variant)
        sae = demo_sae(variant)
        traj = collect_trajectories(env.env_id, n_episodes=n_episodes or BROWSER_EPISODES, policy_mix=BROWSER_MIX,
                                    seed=BROWSER_SEED, max_steps=BROWSER_MAX_STEPS, progress=False)
        store = collect_activations(adapter, traj, sae.cfg.hook_name, sae.cfg.token, progress=False)
        return cls(adapter, sae, store, **kwargs)

    def select(self, feature: int) -> None:
        """Open the card of SAE feature ``feature`` (an SAE index, not a row)."""
        rows = np.flatnonzero(self.features == int(feature))
        if not rows.size:
            raise ValueError(f"feature {feature} is not in this browser (it never fires on the stored states, "
                             f"or was not included); included: {self.features.size} features")
        self.view.selected = int(rows[0])

    @property
    def selected_feature(self) -> int | None:
        """SAE index of the feature whose card is open (None when none is)."""
        i = self.view.selected
        return int(self.features[i]) if 0 <= i < self.features.size else None

    def _arrays(self) -> dict:
        s, f = self.summary, self.features
        rows = np.concatenate([s.top_rows[f], s.quantile_rows[f]], 1)  # [F, E]
        acts = np.concatenate([s.top_acts[f], s.quantile_acts[f]], 1)
        labels = [f"top {i + 1}" for i in range(s.top_rows.shape[1])] + [f"q{round(q * 100)}" for q in s.quantiles]
        maps = s.write_maps[f] if s.write_maps is not None else np.zeros(0, np.float32)
        return dict(feature_ids=f.astype(np.int32), frequency=s.frequency[f], max_act=s.max_act[f],
                    mean_act=s.mean_act[f], rtg_corr=s.rtg_corr[f], time_corr=s.time_corr[f], hist=s.hist[f],
                    action_bars=s.action_bars[f], **self.store.example_slots(rows, acts, self.adapter.schema),
                    example_labels=labels, write_maps=maps)
