"""CellArm: the Franka cell as franka_bridge's arm for deploy mode:=sim, in real time, with its camera."""

import numpy as np
import pytest

from modem_ros.data.episode import eval_episode_seed
from modem_ros.envs.franka_cell import FrankaCellEnv
from modem_ros.images import square_resize
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.cell_arm import MAX_CATCH_UP, CellArm
from modem_ros.robots.safety import ArmCommand


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def arm():
    clock = Clock()
    arm = CellArm("franka-push", width=160, height=120, clock=clock)
    arm.clock_ = clock
    yield arm
    arm.close()


def command(position, closed=False):
    return ArmCommand(np.asarray(position, float), np.array([1.0, 0, 0, 0]), closed, 20.0)


def test_home_lays_out_the_evaluation_episodes_in_order_at_the_start_pose(arm):
    env = FrankaCellEnv("franka-push", img_size=16, frame_stack=1)
    for i in range(2):
        state = arm.home(spec.HOME_JOINTS, spec.START_TCP)
        env.reset(seed=eval_episode_seed(i))
        assert np.array_equal(arm.env.goal, env.goal) and np.array_equal(arm.env.cube_pos, env.cube_pos)
        assert np.linalg.norm(state.position - spec.START_TCP) < 0.005
        assert state.gripper_width > 0.07  # open
    env.close()


def test_the_arm_moves_with_the_clock_not_with_the_calls(arm):
    start = arm.home(spec.HOME_JOINTS, spec.START_TCP).position
    goal = start + np.array([0.04, -0.03, -0.05])
    arm.send(command(goal))
    for _ in range(20):  # calls without time passing: the physics stands still
        assert np.array_equal(arm.read().position, start)
    arm.clock_.now += 1.0
    assert np.linalg.norm(arm.read().position - goal) < 0.005
    arm.stop()
    held = arm.read().position
    arm.clock_.now += 0.5
    assert np.linalg.norm(arm.read().position - held) < 0.002  # stop holds where it is


def test_a_stalled_process_catches_up_at_most_max_catch_up(arm, monkeypatch):
    arm.home(spec.HOME_JOINTS, spec.START_TCP)
    periods = []
    servo = arm.env.servo
    monkeypatch.setattr(arm.env, "servo", lambda *a: (periods.append(1), servo(*a)))
    arm.clock_.now += 60.0
    arm.read()
    assert len(periods) == round(MAX_CATCH_UP / spec.CONTROL_PERIOD)
    arm.clock_.now += 3 * spec.CONTROL_PERIOD + 1e-6  # after the jump, real time again
    arm.read()
    assert len(periods) == round(MAX_CATCH_UP / spec.CONTROL_PERIOD) + 3


def test_the_gripper_follows_the_command(arm):
    arm.home(spec.HOME_JOINTS, spec.START_TCP)
    arm.send(command(spec.START_TCP, closed=True))
    arm.clock_.now += 1.5
    assert arm.read().gripper_width < 0.01


def test_the_published_camera_is_the_training_view_after_the_camera_nodes_crop_and_resize(arm):
    """The sensor-sized frame, square-cropped and resized as the camera node does, is the frame training
    rendered directly at the agent's size; the wrist camera (a wrong view) is far from it."""
    arm.home(spec.HOME_JOINTS, spec.START_TCP)
    env = FrankaCellEnv("franka-push", img_size=84, frame_stack=1)
    env.reset(seed=eval_episode_seed(0))
    trained = env.render_frame().transpose(1, 2, 0).astype(float)
    frame = arm.camera_frame()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    published = square_resize(frame, 84)[0].astype(float)
    wrist = CellArm("franka-push", width=160, height=120, camera="wrist")
    wrist.home(spec.HOME_JOINTS, spec.START_TCP)
    wrong = square_resize(wrist.camera_frame(), 84)[0].astype(float)
    assert np.abs(published - trained).mean() < 4.0 < 20.0 < np.abs(wrong - trained).mean()
    assert arm.camera.fovy == env.renderer.fovy > 0  # the intrinsics the bridge publishes come from it
    wrist.close()
    env.close()


def test_success_is_the_cells_own(arm):
    arm.home(spec.HOME_JOINTS, spec.START_TCP)
    assert arm.success() is False
    arm.env.goal = arm.env.cube_pos  # the goal under the cube: the task is done
    assert arm.success() is True
