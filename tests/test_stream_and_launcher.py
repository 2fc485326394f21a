"""Pairing the graph's streams into episodes, and resolving a launch's parameters (rclpy: parameter files)."""

from __future__ import annotations

import numpy as np
import pytest

from modem_ros import topics
from modem_ros.config import ConfigError
from modem_ros.data.stream import EpisodeAssembler, StreamError
from modem_ros.graph import LAUNCHES
from modem_ros.launcher import node_parameters, parse_arguments, prepare, processes, ros_params_yaml
from tests.helpers import assemble_in_random_order


def test_streams_arriving_interleaved_in_any_order_pair_into_the_same_episodes():
    rng = np.random.default_rng(0)
    length, episodes = 3, 2
    frames = [rng.integers(0, 255, (3, 8, 8), dtype=np.uint8) for _ in range(episodes * (length + 1))]
    states = [np.full(2, i, np.float32) for i in range(len(frames))]
    actions = [np.full(1, i / 10, np.float32) for i in range(episodes * length)]
    streams = {"frame": list(frames), "state": [(s, None) for s in states], "action": list(actions),
               "reward": [float(i) for i in range(episodes * length)],
               "success": [i % 2 == 0 for i in range(episodes * length)]}
    assembler = EpisodeAssembler(frame_stack=2, episode_length=length, state_dim=2, action_dim=1)
    out = assemble_in_random_order(assembler, streams, rng)  # an executor may hand callbacks over in any order
    assert len(out) == episodes and assembler.pop_episode() is None
    second = out[1]
    assert [s[0] for s in second.state] == [4, 5, 6, 7]           # observations 4..7 belong to episode 2
    assert [a[0] for a in second.action] == pytest.approx([0.3, 0.4, 0.5])
    assert second.reward == [3.0, 4.0, 5.0]
    np.testing.assert_array_equal(second.rgb[0], np.concatenate([frames[4], frames[4]]))  # reset stack
    np.testing.assert_array_equal(second.rgb[2], np.concatenate([frames[5], frames[6]]))


def test_episodes_a_bridge_cut_short_are_dropped_by_their_step_labels_whatever_the_arrival_order():
    """Bridge episodes of 3, 1 (cut after 1 step), 3, 0 (cut at its reset observation) and 3 steps; each
    state labelled with its step. Only the three full ones come out, each with exactly its own items."""
    rng = np.random.default_rng(1)
    length, steps_per_episode = 3, [3, 1, 3, 0, 3]
    streams = {k: [] for k in ("frame", "state", "action", "reward", "success", "intervention")}
    obs = step = 0
    for steps in steps_per_episode:
        for t in range(steps + 1):
            streams["frame"].append(np.full((3, 4, 4), obs, np.uint8))
            streams["state"].append((np.full(2, obs, np.float32), t))
            obs += 1
        for _ in range(steps):
            streams["action"].append(np.full(1, step, np.float32))
            streams["reward"].append(float(step))
            streams["success"].append(False)
            streams["intervention"].append(step % 2 == 1)
            step += 1
    assembler = EpisodeAssembler(frame_stack=1, episode_length=length, state_dim=2, action_dim=1, interventions=True)
    out = assemble_in_random_order(assembler, streams, rng)
    assert len(out) == 3 and assembler.cut_short == [1, 0]
    assert [[s[0] for s in e.state] for e in out] == [[0, 1, 2, 3], [6, 7, 8, 9], [11, 12, 13, 14]]
    assert [e.reward for e in out] == [[0.0, 1.0, 2.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    assert [int(e.rgb[0][0, 0, 0]) for e in out] == [0, 6, 11]
    assert out[1].intervention == [False, True, False]  # steps 4..6: its own flags, not the cut step's


def test_unlabelled_states_are_cut_by_the_fixed_length():
    """Bags recorded before the label (and any unlabelled publisher) pair as before: every length + 1 states."""
    assembler = EpisodeAssembler(frame_stack=1, episode_length=2, state_dim=1, action_dim=1)
    for i in range(6):
        assembler.add_frame(np.zeros((3, 4, 4), np.uint8))
        assembler.add_state(np.full(1, i, np.float32))
    for _ in range(4):
        assembler.add_action(np.zeros(1, np.float32))
        assembler.add_reward(-1.0)
        assembler.add_success(False)
    assert [[s[0] for s in assembler.pop_episode().state] for _ in range(2)] == [[0, 1, 2], [3, 4, 5]]
    assert assembler.cut_short == []


def test_malformed_stream_items_are_refused():
    assembler = EpisodeAssembler(frame_stack=2, episode_length=3, state_dim=2, action_dim=1)
    with pytest.raises(StreamError, match="state"):
        assembler.add_state(np.zeros(3, np.float32))
    with pytest.raises(StreamError, match="finite"):
        assembler.add_action(np.array([np.nan], np.float32))


def test_launch_arguments_become_typed_parameters_of_their_target_nodes():
    spec = LAUNCHES["train_sim"]
    values = parse_arguments(spec, ["task:=mw-reach", "seed:=7", "use_sim_time:=false", "steps:=300"])
    params = node_parameters(spec, values)
    assert {p["task"] for p in params.values()} == {"mw-reach"}  # every node resolves the same task
    assert params["planner"]["seed"] == 7 and params["trainer"]["steps"] == 300
    assert params["camera"]["use_sim_time"] is False and "use_sim_time" not in params["sim_bridge"]
    assert params["planner"]["sync_weights"] is True  # from config/train_sim.yaml
    with pytest.raises(ConfigError, match="seed:='x' must be int"):
        node_parameters(spec, parse_arguments(spec, ["seed:=x"]))
    with pytest.raises(ConfigError, match="unknown argument 'checkpoint'"):
        parse_arguments(spec, ["checkpoint:=a.pt"])


def test_a_params_file_naming_no_node_of_the_launch_is_refused(tmp_path):
    spec = LAUNCHES["eval_sim"]
    bad = tmp_path / "p.yaml"
    bad.write_text("trainer:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match=f"{bad}: section 'trainer' is not a node of eval_sim"):
        node_parameters(spec, parse_arguments(spec, [f"params_file:={bad}"]))
    bad.write_text("planner:\n  device: cpu\n")
    with pytest.raises(ConfigError, match="exactly one mapping, 'ros__parameters'"):
        node_parameters(spec, parse_arguments(spec, [f"params_file:={bad}"]))


def test_each_mode_starts_its_own_nodes_with_the_modes_fixed_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, nodes, params, _ = prepare("record_demos", ["task:=franka-reach"])
    assert [n.name for n in nodes] == ["sim_bridge", "camera", "teleop", "recorder", "operator_view"]
    # in sim a person paces the lock-step, and the recorder's cadence report expects that pace
    assert params["teleop"]["rate"] == params["recorder"]["target_rate"] == 5.0
    assert params["operator_view"]["task"] == "franka-reach" and params["operator_view"]["window"] is True
    _, _, slow, _ = prepare("record_demos", ["teleop_rate:=2.5", "view:=false"])
    assert slow["teleop"]["rate"] == slow["recorder"]["target_rate"] == 2.5 and slow["operator_view"]["window"] is False
    assert params["camera"]["use_sim_time"] is True and params["camera"]["reliable"] is True
    assert params["recorder"]["dataset_dir"] == "demos/franka-reach"
    _, nodes, params, _ = prepare("record_demos", ["task:=franka-reach", "mode:=hardware", "robot_ip:=10.0.0.2",
                                                   "seed:=4"])
    assert [n.name for n in nodes] == ["realsense_camera", "franka_bridge", "camera", "teleop", "recorder"]
    assert params["camera"]["use_sim_time"] is False and params["camera"]["sample_on_state"] is True
    assert params["teleop"]["use_sim_time"] is False and params["recorder"]["use_sim_time"] is False
    assert params["teleop"]["rate"] == 100.0 and params["teleop"]["robot"] is True  # the control period paces
    assert params["recorder"]["target_rate"] == 10.0
    assert params["franka_bridge"]["robot_ip"] == "10.0.0.2" and params["franka_bridge"]["seed"] == 4
    assert params["franka_bridge"]["auto_reset"] is False  # the recorder starts each episode
    assert params["recorder"]["dataset_dir"] == "demos/franka-reach-robot"  # robot demos apart from sim ones
    assert params["recorder"][topics.NO_FRAME_PARAM] is True  # the sampling camera may send placeholders
    deploy_camera = next(n for n in LAUNCHES["deploy"].nodes if n.name == "camera")
    assert dict(deploy_camera.params).items() <= params["camera"].items()  # one hardware camera entry
    with pytest.raises(ConfigError, match="needs a Franka task .* not task:=toy-reach"):
        prepare("record_demos", ["mode:=hardware", "robot_ip:=10.0.0.2"])
    with pytest.raises(ConfigError, match="mode:=robot is not one of sim, hardware"):
        prepare("record_demos", ["mode:=robot"])
    with pytest.raises(ConfigError, match="teleop_rate:= paces sim recording"):
        prepare("record_demos", ["mode:=hardware", "robot_ip:=10.0.0.2", "task:=franka-reach", "teleop_rate:=3"])
    with pytest.raises(ConfigError, match="teleop_rate:='fast' must be float"):
        prepare("record_demos", ["teleop_rate:=fast"])


def test_deploy_on_the_cell_swaps_only_what_drives_the_arm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, robot_nodes, robot, _ = prepare("deploy", ["robot_ip:=10.0.0.2", "checkpoint:=a.pt"])
    _, sim_nodes, sim, _ = prepare("deploy", ["mode:=sim", "checkpoint:=a.pt"])
    assert [n.name for n in robot_nodes] == ["realsense_camera", "camera", "planner", "teleop", "franka_bridge"]
    assert [n.name for n in sim_nodes] == ["camera", "planner", "teleop", "franka_bridge"]  # the bridge renders
    assert robot["franka_bridge"]["simulate"] is False and robot["franka_bridge"]["reward_source"] == "operator"
    assert sim["franka_bridge"]["simulate"] is True and sim["franka_bridge"]["reward_source"] == "sim"
    for node in ("camera", "planner", "teleop"):  # the rest of the graph is the robot's, parameter for parameter
        assert sim[node] == robot[node], node
    same = {k: v for k, v in sim["franka_bridge"].items() if k not in ("simulate", "reward_source", "robot_ip")}
    assert same == {k: v for k, v in robot["franka_bridge"].items() if k in same}


def test_actors_start_actor_nodes_per_namespace_with_own_seeds_and_one_trainer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec, nodes, params, _ = prepare("train_sim", ["actors:=2", "seed:=5", "nodes:=sim_bridge,planner,trainer"])
    procs = processes(spec, nodes, params)
    assert [p.section for p in procs] == ["/actor_0/sim_bridge", "/actor_1/sim_bridge", "/actor_0/planner",
                                          "/actor_1/planner", "trainer"]
    assert [p.params["seed"] for p in procs] == [5, 6, 5, 6, 5]
    assert params["trainer"]["actors"] == 2
    planner = procs[3]
    assert planner.label == "actor_1.planner" and planner.namespace == "actor_1"
    assert ("/clock", "/actor_1/clock") in planner.remaps and ("modem/weights", "/modem/weights") in planner.remaps
    one = processes(*prepare("train_sim", [])[:3])  # the plain graph: no namespaces, no remaps
    assert [(p.section, p.remaps) for p in one] == [(n, ()) for n in ("sim_bridge", "camera", "planner", "trainer")]
    with pytest.raises(ConfigError, match="actors:=0 must be an integer from 1 to 64"):
        processes(*prepare("train_sim", ["actors:=0"])[:3])


def test_params_file_strings_stay_strings_under_rcls_parser(tmp_path):
    """rcl reads an unquoted 23765864795e0 as a double: a run id like it once stopped the trainer in CI."""
    rclpy = pytest.importorskip("rclpy")
    values = {"run_id": "23765864795e0", "task": "123", "flag": "true", "steps": 7, "rate": 0.5, "on": True}
    path = tmp_path / "p.yaml"
    path.write_text(ros_params_yaml({"probe": {"ros__parameters": values}}))
    context = rclpy.Context()
    rclpy.init(args=["probe", "--ros-args", "--params-file", str(path)], context=context)
    try:
        node = rclpy.create_node("probe", context=context)
        for name, value in values.items():
            node.declare_parameter(name, type(value)())
            got = node.get_parameter(name).value
            assert got == value and type(got) is type(value), (name, got)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_only_hardware_graphs_accept_the_cameras_no_frame_placeholder():
    """Behind a camera that samples on the robot's state a placeholder is legitimate; in sim the camera relays
    one for one, so one there could only be forged and is refused (nodes default to refusing)."""
    robot = {n.name: dict(n.params) for n in LAUNCHES["train_robot"].nodes}  # (prepare needs robot demos)
    assert robot["trainer"][topics.NO_FRAME_PARAM] is True and robot["camera"]["sample_on_state"] is True
    assert robot["planner"]["reliable"] is False  # the planner accepts them when not lock-step
    _, _, sim, _ = prepare("train_sim", [])
    assert topics.NO_FRAME_PARAM not in sim["trainer"] and sim["planner"]["reliable"] is True
    _, _, demos, _ = prepare("record_demos", [])
    assert topics.NO_FRAME_PARAM not in demos["recorder"]
