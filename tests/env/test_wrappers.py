"""MiniGridEnv with MiniGrid's own wrappers and env options: the schema describes each observation
kind, observations match MiniGrid's own computation, trajectories collect, save and reload them,
and missions and outcomes are recorded."""
from __future__ import annotations

import numpy as np
import pytest
from minigrid.wrappers import (FlatObsWrapper, FullyObsWrapper, OneHotPartialObsWrapper,
                               RGBImgPartialObsWrapper)

from dtwidgets.adapters import EnvAdapter
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.adapters.schema import OBJECTS, ObservationSchema
from dtwidgets.data import Trajectories, collect_trajectories

DK = "MiniGrid-DoorKey-5x5-v0"


def _roundtrip(traj, tmp_path):
    back = Trajectories.load(traj.save(tmp_path / "t.npz"))
    assert np.array_equal(back.observations, traj.observations)
    assert back.metadata["observation"] == traj.metadata["observation"]
    assert list(back.outcomes()) == list(traj.outcomes())
    return back


def test_fully_observed_grid_has_the_agent_in_its_cell(tmp_path):
    env = MiniGridEnv(DK, max_steps=12, wrappers=[FullyObsWrapper], seed=1)
    assert isinstance(env, EnvAdapter)
    s = env.schema
    assert (s.kind, s.view, s.observation_shape, s.agent_cell) == ("codes", "full", (5, 5, 3), None)
    env.step("left")
    obs = env.observation()
    # independent: MiniGrid's grid.encode() with the agent written in as (agent, red, direction)
    grid = np.array(env.unwrapped.grid.encode())
    x, y = (int(v) for v in env.unwrapped.agent_pos)
    grid[x, y] = (OBJECTS.index("agent"), 0, int(env.unwrapped.agent_dir))
    assert np.array_equal(obs, grid)
    assert s.agent_in(obs) == ((x, y), int(env.unwrapped.agent_dir))
    moved = env.observation_at(x, y, 3)
    assert s.agent_in(moved) == ((x, y), 3) and np.array_equal(env.observation(), obs)  # nothing changed
    traj = collect_trajectories(env, n_episodes=3, policy_mix="random", progress=False, n_envs=1)
    assert traj.observations.shape[1:] == (5, 5, 3)
    assert (traj.observations[..., 2] == 3).any()  # an agent facing up (state 3) is accepted
    _roundtrip(traj, tmp_path)
    bad = traj.observations.copy()
    wall = np.argwhere(bad[0, ..., 0] == OBJECTS.index("wall"))[0]
    bad[0, wall[0], wall[1], 2] = 3
    with pytest.raises(ValueError, match="state code 3"):
        Trajectories(**{**_fields(traj), "observations": bad})


def _fields(t):
    return dict(observations=t.observations, actions=t.actions, rewards=t.rewards, terminated=t.terminated,
                truncated=t.truncated, timesteps=t.timesteps, episode_starts=t.episode_starts,
                episode_lengths=t.episode_lengths, seeds=t.seeds, env_id=t.env_id, max_steps=t.max_steps,
                metadata=t.metadata)


def test_one_hot_partial_view_is_the_codes_one_hot(tmp_path):
    env = MiniGridEnv(DK, max_steps=10, wrappers=[OneHotPartialObsWrapper], seed=2)
    plain = MiniGridEnv(DK, max_steps=10, seed=2)
    assert env.schema.kind == "one_hot" and env.schema.observation_shape == (7, 7, 20)
    codes = plain.observation()
    # independent one-hot of the codes: 11 objects, 6 colours, 3 states
    want = np.zeros((7, 7, 20), np.uint8)
    for x in range(7):
        for y in range(7):
            o, c, st = codes[x, y]
            want[x, y, o] = want[x, y, 11 + c] = want[x, y, 17 + st] = 1
    assert np.array_equal(env.observation(), want)
    traj = collect_trajectories(env, n_episodes=2, policy_mix="random", progress=False, n_envs=1)
    assert traj.observations.shape[1:] == (7, 7, 20)
    _roundtrip(traj, tmp_path)


def test_rgb_pixels_are_an_image_not_codes(tmp_path):
    env = MiniGridEnv(DK, max_steps=6, wrappers=[RGBImgPartialObsWrapper], seed=0)
    s = env.schema
    assert (s.kind, s.observation_shape, s.is_grid, s.agent_cell) == ("pixels", (56, 56, 3), False, None)
    u = env.unwrapped
    assert np.array_equal(env.observation(), u.get_frame(tile_size=8, agent_pov=True))
    traj = collect_trajectories(env, n_episodes=2, policy_mix="random", progress=False, n_envs=1)
    assert traj.observations.shape[1:] == (56, 56, 3) and traj.observations.max() > 10  # real colours kept
    _roundtrip(traj, tmp_path)


def test_agent_view_size_option_and_mission_recorded():
    env = MiniGridEnv(DK, max_steps=8, agent_view_size=5, seed=3)
    big = MiniGridEnv(DK, max_steps=8, seed=3)
    assert env.schema.observation_shape == (5, 5, 3) and env.schema.agent_cell == (2, 4)
    assert env.mission == "use the key to open the door and then get to the goal" == env.unwrapped.mission
    # a 5x5 view is the 7x7 view's centre columns and nearest rows when nothing occludes in between
    assert np.array_equal(env.observation()[..., 0], big.observation()[1:6, 2:7, 0])
    traj = collect_trajectories(env, n_episodes=3, policy_mix="bfs", progress=False, n_envs=1)
    assert traj.metadata["episode"]["missions"] == [env.mission] * 3
    assert traj.episode(1).mission == env.mission
    assert list(traj.outcomes()) == ["timeout"] * 3  # bfs cannot open the door in 8 steps
    assert list(traj.select([2, 0]).metadata["episode"]["missions"]) == [env.mission] * 2


def test_clear_errors_for_unsupported_wrappers_and_options():
    with pytest.raises(ValueError, match="FlatObsWrapper is not supported.*mission"):
        MiniGridEnv(DK, wrappers=[FlatObsWrapper])
    with pytest.raises(ValueError, match=r"does not take the options \['bogus'\]"):
        MiniGridEnv(DK, bogus=1)
    with pytest.raises(TypeError, match="wrapper"):
        MiniGridEnv(DK, wrappers=[3])
    with pytest.raises(ValueError, match="observation kind"):
        ObservationSchema(kind="audio")


def test_env_options_recorded_and_ray_refuses_what_it_would_drop():
    from dtwidgets.scale import env_id_and_steps

    env = MiniGridEnv(DK, max_steps=5, wrappers=[FullyObsWrapper], agent_view_size=5)
    traj = collect_trajectories(env, n_episodes=1, policy_mix="random", progress=False, n_envs=1)
    assert traj.metadata["env_options"] == {"wrappers": ["FullyObsWrapper"], "kwargs": {"agent_view_size": 5}}
    with pytest.raises(ValueError, match="would be lost: use backend='local'"):
        env_id_and_steps(env, None)
    assert env_id_and_steps(MiniGridEnv(DK, max_steps=5), None) == (DK, 5)


def test_final_state_of_a_saved_session_is_checked_by_its_kind():
    env = MiniGridEnv(DK, max_steps=4, wrappers=[OneHotPartialObsWrapper])
    traj = collect_trajectories(env, n_episodes=1, policy_mix="random", progress=False, n_envs=1)
    final = {"observation": env.observation().tolist(), "rtg": 0.5, "timestep": 1, "done": False, "outcome": None}
    ok = Trajectories(**{**_fields(traj), "metadata": {**traj.metadata, "final": final}})
    assert ok.metadata["final"]["rtg"] == 0.5
    bad = np.array(final["observation"])
    bad[0, 0, :] = 2
    with pytest.raises(ValueError, match="one-hot features of 0 or 1"):
        Trajectories(**{**_fields(traj), "metadata": {**traj.metadata, "final": {**final, "observation": bad.tolist()}}})


def test_thumbnails_are_what_each_kind_draws():
    """``schema.thumbnails``: one-hot cells decode to the plain view's codes (a batch of them), a full
    grid says "full", pixels stay an image, vectors have no picture, a wrong shape names what came."""
    from dtwidgets.adapters.schema import ObservationSchema

    hot, plain = MiniGridEnv(DK, wrappers=[OneHotPartialObsWrapper], seed=2), MiniGridEnv(DK, seed=2)
    batch = np.stack([hot.observation()] * 2)[None]  # [1, 2, 7, 7, 20]
    codes, view = hot.schema.thumbnails(batch)
    assert view == "egocentric" and codes.shape == (1, 2, 7, 7, 3) and codes.dtype == np.uint8
    np.testing.assert_array_equal(codes[0, 1], plain.observation())
    full = MiniGridEnv(DK, wrappers=[FullyObsWrapper], seed=1)
    pics, view = full.schema.thumbnails(full.observation())
    assert view == "full"
    np.testing.assert_array_equal(pics, full.observation())
    rgb = MiniGridEnv(DK, wrappers=[RGBImgPartialObsWrapper], seed=0)
    pics, view = rgb.schema.thumbnails(rgb.observation()[None])
    assert view == "pixels"
    np.testing.assert_array_equal(pics[0], rgb.observation())
    vec = ObservationSchema(grid_shape=(8, 1), kind="vector")
    pics, view = vec.thumbnails(np.zeros((4, 8), np.uint8))
    assert view == "none" and pics.shape == (4, 0, 0, 3)
    codes, view = hot.schema.thumbnails(plain.observation()[None])  # a one-hot model also reads raw codes
    assert view == "egocentric"
    np.testing.assert_array_equal(codes[0], plain.observation())
    with pytest.raises(ValueError, match=r"thumbnails: expected observations \[\.\.\., 7, 7, 20\].*got shape \(7, 7, 5\)"):
        hot.schema.thumbnails(np.zeros((7, 7, 5), np.uint8))
