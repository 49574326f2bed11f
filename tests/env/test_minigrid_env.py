"""MiniGridEnv: the EnvAdapter protocol, exact snapshot/restore, cell editing and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters import EnvAdapter
from dtwidgets.adapters.minigrid_env import MiniGridEnv, check_env_id

DO = "MiniGrid-Dynamic-Obstacles-8x8-v0"


@pytest.fixture
def env():
    e = MiniGridEnv(DO, max_steps=1000, seed=0)
    yield e
    e.close()


def test_protocol_and_basics(env):
    assert isinstance(env, EnvAdapter)
    assert env.action_names == ("left", "right", "forward")
    assert env.max_steps == 1000 and env.step_count == 0
    assert env.schema.grid_shape == (7, 7)
    obs = env.reset(seed=0)
    assert obs.shape == (7, 7, 3) and obs.dtype == np.uint8
    # seed 0 layout from the reference notes: row y=3 of the object channel is 2 2 2 1 6 1 6
    assert obs[:, 3, 0].tolist() == [2, 2, 2, 1, 6, 1, 6]
    assert np.array_equal(obs, env.observation())
    grid, pos, d = env.full_grid()
    assert grid.shape == (8, 8, 3) and pos == (1, 1) and d == 0
    assert tuple(grid[1, 1]) == (10, 0, 0)  # agent drawn as (agent, red, dir)
    assert grid[6, 6, 0] == 8  # goal
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert env.render(tile_size=8, agent_pov=True).shape == (56, 56, 3)


def test_seeded_reset_is_reproducible(env):
    a = env.reset(seed=5)
    b = MiniGridEnv(DO, seed=5).observation()
    assert np.array_equal(a, b)


def test_step_and_outcomes(env):
    env.reset(seed=0)
    r = env.step("right")
    assert r.reward == 0 and not r.done and env.step_count == 1
    env.reset(seed=0)
    # facing east from (1,1): walk forward until the wall (or an obstacle) ends the episode with -1
    for _ in range(10):
        r = env.step(2)
        if r.done:
            break
    assert r.terminated and r.reward == -1 and env.outcome == "collision" and r.info["outcome"] == "collision"
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_timeout_with_small_max_steps():
    e = MiniGridEnv(DO, max_steps=3, seed=0)
    for _ in range(3):
        r = e.step("left")
    assert r.truncated and not r.terminated and e.outcome == "timeout"


def test_snapshot_restore_reproduces_exactly(env):
    env.reset(seed=3)
    for _ in range(4):
        env.step("left")
    snap = env.snapshot()

    def play():  # a safe deterministic policy of the observation: forward only into empty cells
        out = []
        obs = env.observation()
        for t in range(60):
            a = 2 if (obs[3, 5, 0] == 1 and t % 3 == 0) else t % 2
            r = env.step(a)
            obs = r.observation
            out.append((r.observation.copy(), r.reward, r.terminated, r.truncated, env.full_grid()[0].copy()))
            if r.done:
                break
        return out

    first = play()
    assert len(first) == 60
    env.restore(snap)
    second = play()
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4] and np.array_equal(a[4], b[4])
    # the snapshot is not aliased with the live env: restoring again still works
    env.restore(snap)
    assert np.array_equal(play()[0][0], first[0][0])


def test_set_cell_ball_joins_obstacles_and_moves(env):
    env.reset(seed=0)
    u = env.unwrapped
    n0 = len(u.obstacles)
    obs = env.set_cell(3, 3, "ball")
    assert len(u.obstacles) == n0 + 1 and env.cell(3, 3) == ("ball", "blue", None)
    assert isinstance(obs, np.ndarray) and obs.shape == (7, 7, 3)
    placed = u.obstacles[-1]
    moved = False
    for _ in range(10):
        env.step("left")
        moved |= tuple(placed.cur_pos) != (3, 3)
    assert moved, "a placed ball should move like the other obstacles"
    # removing a ball removes it from the obstacle list
    x, y = placed.cur_pos
    env.set_cell(int(x), int(y), None)
    assert placed not in u.obstacles and len(u.obstacles) == n0
    assert env.cell(int(x), int(y)) == ("empty", None, None)


def test_set_cell_objects_show_in_view(env):
    env.reset(seed=0)
    # agent at (1,1) facing east: full-grid cell (2,1) is one step ahead = egocentric (3,5)
    for obj, colour, state, code in [("wall", None, None, (2, 5, 0)), ("goal", None, None, (8, 1, 0)),
                                     ("key", "red", None, (5, 0, 0)), ("door", "blue", "locked", (4, 2, 2)),
                                     ("door", None, "open", (4, 4, 0)), ("lava", None, None, (9, 0, 0)),
                                     ("empty", None, None, (1, 0, 0))]:
        obs = env.set_cell(2, 1, obj, colour, state)
        assert tuple(obs[3, 5]) == code, obj
    # replacing an obstacle with a wall removes it from the moving list
    u = env.unwrapped
    ob = u.obstacles[0]
    env.set_cell(int(ob.cur_pos[0]), int(ob.cur_pos[1]), "wall")
    assert ob not in u.obstacles


def test_set_cell_snapshot_roundtrip(env):
    env.reset(seed=1)
    snap = env.snapshot()
    env.set_cell(4, 4, "ball")
    n = len(env.unwrapped.obstacles)
    env.restore(snap)
    assert len(env.unwrapped.obstacles) == n - 1


@pytest.mark.parametrize("args, err, match", [
    ((1, 1, "wall"), ValueError, "agent"),
    ((8, 1, "wall"), ValueError, "inside the 8x8 grid"),
    ((-1, 0, "wall"), ValueError, "inside"),
    ((2, 2, "dragon"), ValueError, "expected an object"),
    ((2, 2, "ball", "pink"), ValueError, "colour"),
    ((2, 2, "wall", None, "locked"), ValueError, "only doors"),
    ((2.5, 2, "wall"), TypeError, "integer"),
])
def test_set_cell_errors(env, args, err, match):
    with pytest.raises(err, match=match):
        env.set_cell(*args)


def test_action_errors(env):
    with pytest.raises(ValueError, match=r"\[0, 2\].*got 3"):
        env.step(3)
    with pytest.raises(ValueError, match="got -1"):
        env.step(-1)
    with pytest.raises(ValueError, match="pickup"):
        env.step("pickup")
    with pytest.raises(TypeError):
        env.step(1.5)


def test_unknown_env_id():
    with pytest.raises(ValueError, match=r"'MiniGrid-Nope-v0'.*MiniGrid-Dynamic-Obstacles-8x8-v0"):
        MiniGridEnv("MiniGrid-Nope-v0")
    with pytest.raises(ValueError, match="not a MiniGrid"):
        check_env_id("CartPole-v1")


def test_other_env_action_space():
    e = MiniGridEnv("MiniGrid-DoorKey-5x5-v0", max_steps=50, seed=0)
    assert e.action_names == ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    snap = e.snapshot()
    a = [e.step(i % 3).observation for i in range(5)]
    e.restore(snap)
    b = [e.step(i % 3).observation for i in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_mistyped_env_id_suggests_the_closest_registered_id():
    with pytest.raises(ValueError, match=r"unknown MiniGrid environment id 'MiniGrid-Empty-5x5' \(did you mean "
                                         r"MiniGrid-Empty-5x5-v0\?\)"):
        MiniGridEnv("MiniGrid-Empty-5x5")
    with pytest.raises(ValueError, match=r"'MiniGrid-Dynamic-Obstacle-8x8-v0' \(did you mean "
                                         r"MiniGrid-Dynamic-Obstacles-8x8-v0"):
        MiniGridEnv("MiniGrid-Dynamic-Obstacle-8x8-v0")


@pytest.mark.parametrize("cell", [(0, 3), (7, 3), (3, 0), (3, 7), (0, 0)])
def test_outer_wall_cannot_be_edited_and_state_is_unchanged(env, cell):
    grid, pos, d = env.full_grid()
    with pytest.raises(ValueError, match=rf"expected an inner cell \(1 <= x <= 6, 1 <= y <= 6\), got \({cell[0]}, "
                                         rf"{cell[1]}\) on the outer wall"):
        env.set_cell(*cell, None)
    after, pos2, d2 = env.full_grid()
    np.testing.assert_array_equal(after, grid)
    assert (pos2, d2) == (pos, d)


def test_walking_off_the_grid_is_refused_with_state_unchanged():
    """Even when the outer wall is gone (edited through the raw minigrid object), a forward step off
    the grid raises one clear error instead of minigrid's bare AssertionError, and changes nothing."""
    e = MiniGridEnv("MiniGrid-Empty-5x5-v0", seed=0)
    u = e.unwrapped
    u.agent_pos, u.agent_dir = (1, 1), 3  # facing up, the outer wall ahead
    u.grid.set(1, 0, None)  # the raw object allows what set_cell refuses
    e.step("forward")  # onto the border cell
    assert e.agent_pos == (1, 0)
    snap_grid, steps = e.full_grid()[0], e.step_count
    for action in ("forward", "left"):  # minigrid reads the cell ahead for every action
        with pytest.raises(RuntimeError, match=rf"cannot take action '{action}' at \(1, 0\) facing 3: expected "
                                               r"the cell ahead inside the 5x5 grid, got \(1, -1\) outside it"):
            e.step(action)
        assert e.agent_pos == (1, 0) and e.step_count == steps and not e.done
        np.testing.assert_array_equal(e.full_grid()[0], snap_grid)
    e.close()
