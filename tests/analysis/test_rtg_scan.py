"""RTG scan: one batched forward == separate forwards (and the independent forward), sums exact."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.analysis import attention_patterns, rtg_scan
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "raw-2tok-noLN", "lnpre-8tok"])
def test_scan_rows_equal_separate_runs(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a)
    s = rtg_scan(a, w, "forward", "left")
    R, A, L, H = 101, a.n_actions, a.cfg.n_layers, a.cfg.n_heads
    T = a.layout.n_timesteps
    assert s.rtgs.shape == (R,) and s.rtgs[0] == -1 and s.rtgs[-1] == 1 and s.rtgs[50] == 0
    assert s.logits.shape == (R, A) and s.contributions.shape == (R, len(s.labels))
    assert s.attention_to_rtg.shape == (R, L * H) and s.attention_to_rtg_by_token.shape == (R, L * H, T)
    np.testing.assert_allclose(s.contributions.sum(1), s.logit_diff, atol=1e-5 * max(1, np.abs(s.contributions).sum(1).max()))
    for i in (0, 37, 100):
        wi = w.with_rtg(float(s.rtgs[i]))
        want = independent_logits(a, wi)[0].numpy()
        np.testing.assert_allclose(s.logits[i], want, atol=2e-5 * max(1, np.abs(want).max()))
        att = attention_patterns(a, wi)
        rp = a.layout.positions("rtg")
        np.testing.assert_allclose(s.attention_to_rtg[i], att.from_prediction()[:, rp].sum(-1), atol=1e-5)
    np.testing.assert_allclose(s.probs.sum(1), 1, atol=1e-5)
    assert s.rtg_token_labels[-1] == f"R{'₁₂₃₄₅₆₇₈₉'[T - 1]}"


def test_custom_grid_and_one_row_check():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    w = random_window(a)
    s = rtg_scan(a, w, 2, rtgs=[-0.5, 0.25])
    assert s.pair_label == "forward" and s.logit_diff.shape == (2,)
    np.testing.assert_allclose(s.logit_diff, s.logits[:, 2], atol=1e-6)
    with pytest.raises(ValueError, match="one-row window"):
        rtg_scan(a, w.repeat(2), 0, 1)
