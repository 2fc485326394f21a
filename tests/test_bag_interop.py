"""Episode bags as other tools read them (issue 23): the Foxglove `mcap` reader with CRC checks,
rosbag2's metadata.yaml (QoS, absolute topic names, wall-clock times, distro), one 10 Hz clock."""

from __future__ import annotations

import time

import pytest
import yaml
from mcap.reader import make_reader
from mcap.stream_reader import CRCValidationError

from modem_ros import topics
from modem_ros.data.demos import write_episode
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.trainer import scripted_demos


@pytest.fixture
def bag(tmp_path):
    episode = scripted_demos(PointReachEnv(img_size=48, episode_length=12), 1, seed=0)[0]
    before = time.time_ns()
    path = write_episode(episode, tmp_path / "ep", {"task": "toy-reach"})
    return path, before, episode


def test_metadata_is_rosbag2s_with_each_topics_qos_and_absolute_names(bag):
    path, before, _ = bag
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    names = {t["topic_metadata"]["name"] for t in info["topics_with_message_count"]}
    assert names == {"/" + name for name in topics.BAG_TOPICS}
    for entry in info["topics_with_message_count"]:
        (qos,) = entry["topic_metadata"]["offered_qos_profiles"]
        assert (qos["reliability"], qos["durability"], qos["history"], qos["depth"]) == (
            "reliable", "transient_local", "keep_last", 1024)
    start = info["starting_time"]["nanoseconds_since_epoch"]
    assert before <= start <= time.time_ns()  # wall time at recording, not 1970
    assert info["ros_distro"] in ("kilted", "")  # never the writer library's name
    assert info["ros_distro"] != "rosbags"


def test_foxglove_mcap_reader_validates_chunk_crcs_and_sees_one_10_hz_clock(bag):
    path, _, episode = bag
    (mcap_file,) = path.glob("*.mcap")
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, validate_crcs=True)
        messages = list(reader.iter_messages())
        chunks = [c for c in reader.get_summary().chunk_indexes]
    assert chunks
    images = [(message.log_time, channel.topic) for _, channel, message in messages
              if channel.topic == "/modem/image"]
    assert len(images) == len(episode) + 1
    gaps = {b[0] - a[0] for a, b in zip(images, images[1:], strict=False)}
    assert gaps == {round(topics.AGENT_PERIOD * 1e9)}
    data = bytearray(mcap_file.read_bytes())
    offset = chunks[0].chunk_start_offset + 200  # a byte inside the first chunk's records
    data[offset] ^= 0xFF
    mcap_file.write_bytes(bytes(data))
    with open(mcap_file, "rb") as f, pytest.raises(CRCValidationError):
        list(make_reader(f, validate_crcs=True).iter_messages())
