"""Bad input gets one clear error naming what was expected and what came."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters import ObservationSchema, TokenLayout, check_compatible
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig


@pytest.fixture(scope="module")
def adapter():
    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=5, max_timestep=50)))


def obs(n=2):
    o = np.zeros((n, 7, 7, 3), np.uint8)
    o[..., 0] = 1
    return o


def test_wrong_observation_shape(adapter):
    with pytest.raises(ValueError, match=r"expected observations \[\.\.\., 7, 7, 3\].*got shape \(1, 2, 5, 5, 3\)"):
        adapter.forward(adapter.make_window(np.zeros((2, 5, 5, 3)), [0, 0], [0, 1], [0]))


def test_rtg_out_of_range(adapter):
    with pytest.raises(ValueError, match=r"expected RTG values in \[-1.0, 1.0\], got min .*max 3"):
        adapter.forward(adapter.make_window(obs(), [3.0, 3.0], [0, 1], [0]))


def test_timestep_out_of_range(adapter):
    with pytest.raises(ValueError, match=r"expected timesteps in \[0, 50\], got min 60, max 61"):
        adapter.forward(adapter.make_window(obs(), [0.0, 0.0], [60, 61], [0]))


def test_action_out_of_range(adapter):
    with pytest.raises(ValueError, match=r"expected actions in \[0, 2\] \(or pad 3\), got min 5, max 5"):
        adapter.forward(adapter.make_window(obs(), [0.0, 0.0], [0, 1], [5]))


def test_window_length_mismatch(adapter):
    with pytest.raises(ValueError, match="expected 1 actions between 2 observations, got 3"):
        adapter.make_window(obs(), [0.0, 0.0], [0, 1], [0, 1, 2])


def test_bad_config():
    with pytest.raises(ValueError, match=r"expected n_ctx = 3\*T - 1 .* got 4"):
        DTConfig(n_ctx=4)
    with pytest.raises(ValueError, match=r"layer_norm in \(None, 'LN', 'LNPre'\), got 'RMS'"):
        DTConfig(layer_norm="RMS")


def test_action_name_lookup(adapter):
    assert adapter.action_index("forward") == 2
    with pytest.raises(ValueError, match=r"expected an action in \('left', 'right', 'forward'\), got 'jump'"):
        adapter.action_index("jump")


class _Env:
    env_id = "MiniGrid-DoorKey-8x8-v0"
    action_names = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    schema = ObservationSchema()


def test_model_env_action_mismatch(adapter):
    with pytest.raises(ValueError, match=r"expected 3 actions .* got 7 .* from env MiniGrid-DoorKey-8x8-v0"):
        check_compatible(adapter, _Env())


def test_layout_and_schema():
    lay = TokenLayout.from_n_ctx(8)
    assert lay.labels() == ["R₁", "s₁", "a₁", "R₂", "s₂", "a₂", "R₃", "s₃"]
    assert lay.state_positions == [1, 4, 7] and lay.prediction_position == 7
    s = ObservationSchema(one_hot=True)
    assert s.n_features == 980 and s.channel_names[8] == "object=goal"
    flat = np.arange(s.n_features)
    maps = s.to_maps(flat)
    assert maps[2, 3, 5] == 2 * 49 + 3 * 7 + 5  # flat = c*W*H + x*H + y
    with pytest.raises(ValueError, match="expected a last dimension of 980 features"):
        s.to_maps(np.zeros(147))


def test_empty_window_names_the_argument(adapter):
    with pytest.raises(ValueError, match=r"make_window: expected at least one observation \(the current step\) in "
                                         r"observations \[t, W, H, C\], got an empty window of shape \(0, 7, 7, 3\)"):
        adapter.make_window(np.zeros((0, 7, 7, 3), np.uint8), [], [], [])


def test_window_needs_a_positive_context():
    from dtwidgets.adapters import make_window

    with pytest.raises(ValueError, match=r"make_window: expected n_timesteps to be an integer >= 1, got 0"):
        make_window(obs(1), [0.0], n_timesteps=0, pad_action=3)
