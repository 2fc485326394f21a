"""Demo episodes as rosbag2/MCAP directories: bit-exact round trip, clear errors, loading into training."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import yaml

from modem_ros import topics
from modem_ros.data.demos import DemoError, load_demo_dir, read_episode, write_episode
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.trainer import scripted_demos
from tests.conftest import small_config


@pytest.fixture
def episodes():
    return scripted_demos(PointReachEnv(img_size=48, episode_length=12), 3, seed=0)


def test_round_trip_is_bit_identical(tmp_path, episodes):
    path = write_episode(episodes[0], tmp_path / "episode_000000", {"task": "toy-reach"})
    bag = read_episode(path, frame_stack=2)
    for key, original in episodes[0].arrays().items():
        assert np.array_equal(bag.episode.arrays()[key], original), key
    assert bag.meta["task"] == "toy-reach" and bag.meta["steps"] == "12" and bag.meta["success"] == "True"


def test_bag_is_a_real_rosbag2_directory_with_the_graph_topics(tmp_path, episodes):
    path = write_episode(episodes[0], tmp_path / "ep", {})
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and (path / info["relative_file_paths"][0]).exists()
    found = {t["topic_metadata"]["name"].lstrip("/"): (t["topic_metadata"]["type"], t["message_count"])
             for t in info["topics_with_message_count"]}
    assert found[topics.IMAGE] == ("sensor_msgs/msg/Image", 13)
    assert found[topics.ACTION] == ("std_msgs/msg/Float32MultiArray", 12)
    assert found[topics.REWARD] == ("std_msgs/msg/Float32", 12) and found[topics.SUCCESS][1] == 12
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    with pytest.raises(FileExistsError):
        write_episode(episodes[0], path, {})


def _dataset(tmp_path, episodes):
    for i, episode in enumerate(episodes):
        write_episode(episode, tmp_path / f"episode_{i:06d}", {"task": "toy-reach"})
    return tmp_path


def test_truncated_bag_names_the_file_and_the_others_still_load(tmp_path, episodes):
    data = _dataset(tmp_path, episodes)
    mcap = next((data / "episode_000001").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    good, bad = load_demo_dir(data, frame_stack=2)
    assert [b.path.name for b in good] == ["episode_000000", "episode_000002"]
    assert len(bad) == 1 and "episode_000001" in str(bad[0]) and mcap.name in str(bad[0])


def test_corrupt_bag_and_missing_metadata_are_reported(tmp_path, episodes):
    data = _dataset(tmp_path, episodes)
    mcap = next((data / "episode_000000").glob("*.mcap"))
    raw = bytearray(mcap.read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 64] = b"\xff" * 64
    mcap.write_bytes(bytes(raw))
    (data / "episode_000002" / "metadata.yaml").unlink()
    good, bad = load_demo_dir(data, frame_stack=2)
    assert [b.path.name for b in good] == ["episode_000001"]
    messages = sorted(str(e) for e in bad)
    assert "episode_000000" in messages[0] and "episode_000002" in messages[1]
    assert "metadata.yaml" in messages[1]


def test_interrupted_write_leaves_no_visible_episode(tmp_path, episodes):
    episode = episodes[0]
    episode.action[3] = np.zeros(5, np.float32)  # wrong length: serialization itself still works ...
    episode.rgb[4] = np.zeros((5, 5), np.uint8)  # ... but this frame cannot be written as an image
    with pytest.raises(Exception):  # noqa: B017 - any failure must leave nothing behind
        write_episode(episode, tmp_path / "episode_000000", {})
    assert list(tmp_path.iterdir()) == []


def test_trainer_loads_a_demo_directory(tmp_path, episodes):
    cfg0 = small_config(episode_length=12)
    data = _dataset(tmp_path / "demos", episodes)
    shutil.copytree(data / "episode_000000", data / "episode_000009")
    (next((data / "episode_000009").glob("*.mcap"))).write_bytes(b"not an mcap file")
    cfg = small_config(episode_length=12, demo_dir=str(data), demos=2, train_steps=0)
    log = io.StringIO()
    trainer = build_trainer(cfg, None, log_stream=log)
    assert trainer.demo_buffer.num_episodes == 2 and len(trainer.demo_buffer) == 24
    assert "episode_000009" in log.getvalue()  # the unreadable one is reported, training goes on
    with pytest.raises(DemoError, match="img_size"):
        build_trainer(small_config(episode_length=12, demo_dir=str(data), img_size=64), None, log_stream=log)
    assert cfg0.demo_dir == ""
