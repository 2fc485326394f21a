"""`modem-ros demos validate | export | view` on real bags: every defect named with its file and step,
a LeRobot v3.0 export that reads back with the same frames and actions, a traced MP4."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from modem_ros.cli import main
from modem_ros.data.demos import next_episode_path, read_episode, write_episode
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.trainer import scripted_demos

pytest.importorskip("imageio_ffmpeg", reason="videos need the sim extra")


@pytest.fixture
def dataset(tmp_path):
    directory = tmp_path / "demos"
    for episode in scripted_demos(PointReachEnv(img_size=48, episode_length=12), 3, seed=0):
        write_episode(episode, next_episode_path(directory), {"task": "toy-reach", "suite": "toy"})
    return directory


def test_validate_passes_a_good_dataset_and_names_every_problem_of_a_bad_one(dataset, tmp_path, capsys):
    assert main(["demos", "validate", str(dataset)]) == 0
    assert "3 episodes, 0 with problems" in capsys.readouterr().out
    bad = read_episode(dataset / "episode_000001", frame_stack=1).episode
    bad.action[3] = np.array([1.5, 0.0], np.float32)
    bad.action[5] = np.array([np.nan, 0.0], np.float32)
    write_episode(bad, dataset / "episode_000003", {"task": "toy-reach"})
    mcap = next((dataset / "episode_000002").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])  # truncated copy
    good = read_episode(dataset / "episode_000000", frame_stack=1).episode
    write_episode(good, dataset / "episode_000004", {"task": "mw-pick-place"})  # another task's episode
    (dataset / ".staging-episode_000005-123").mkdir()  # what a killed writer leaves
    assert main(["demos", "validate", str(dataset)]) == 1
    out = capsys.readouterr().out
    assert f"{dataset / 'episode_000003'}: action 3 is outside [-1, 1]: [1.5, 0.0]" in out
    assert f"{dataset / 'episode_000003'}: action 5 has non-finite values" in out
    assert f"{dataset / 'episode_000002'}: " in out and "checksum mismatch" in out
    assert "task mw-pick-place differs from the dataset's toy-reach" in out
    assert "interrupted writes (not episodes, safe to delete): .staging-episode_000005-123" in out
    assert "episode_000000" in out and "5 episodes, 3 with problems, 1 dataset problem(s)" in out


def test_lerobot_export_round_trip_preserves_frames_actions_and_states(dataset, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from modem_ros.data.lerobot import read_lerobot

    out = tmp_path / "lerobot"
    assert main(["demos", "export", str(dataset), "--format", "lerobot", "--out", str(out), "--fps", "10"]) == 0
    assert "3 episodes, 36 frames at 10 fps" in capsys.readouterr().out
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_frames"] == 36 and info["total_episodes"] == 3
    assert (out / "meta" / "tasks.parquet").exists() and (out / "meta" / "stats.json").exists()
    episodes = read_lerobot(out)
    originals = [read_episode(p, frame_stack=1).episode for p in sorted(dataset.iterdir())]
    assert [e["length"] for e in episodes] == [len(o) for o in originals] == [12, 12, 12]
    for exported, original in zip(episodes, originals, strict=True):
        arr = original.arrays()
        np.testing.assert_array_equal(exported["action"], arr["action"])  # bit for bit
        np.testing.assert_array_equal(exported["state"], arr["state"][:-1])
        np.testing.assert_array_equal(exported["reward"], arr["reward"])
        assert exported["frames"].shape == (12, 48, 48, 3)
        error = np.abs(exported["frames"].astype(int) - arr["rgb"][:-1].transpose(0, 2, 3, 1)).mean()
        assert error < 8.0  # H.264 is lossy, but these are the same pictures in the same order
    assert main(["demos", "export", str(dataset), "--out", str(out)]) == 1  # never overwrites


def test_export_refuses_a_dataset_with_an_unreadable_episode(dataset, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    shutil.rmtree(next((dataset / "episode_000001").glob("*.mcap")).parent / "metadata.yaml", ignore_errors=True)
    (dataset / "episode_000001" / "metadata.yaml").unlink(missing_ok=True)
    assert main(["demos", "export", str(dataset), "--out", str(tmp_path / "x")]) == 1
    assert "episode_000001" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_view_writes_every_frame_with_traces(dataset, tmp_path):
    import imageio.v2 as imageio

    from modem_ros.data.video import SIZE, STRIP, TRACE

    video = tmp_path / "view.mp4"
    assert main(["demos", "view", str(dataset), "--out", str(video)]) == 0
    frames = [frame for frame in imageio.get_reader(video)]  # list() would ask its length: inf
    assert len(frames) == 3 * 13 and frames[0].shape == (SIZE + STRIP + TRACE, SIZE, 3)
    plot = frames[-1][SIZE + STRIP:].astype(int)
    assert plot[:, -4:, 0].mean() > plot[:, -4:, 1].mean() + 40  # the red cursor sits at the last step


def test_lerobot_export_carries_quantiles_per_episode_stats_and_names(dataset, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from modem_ros.data.lerobot import QUANTILES, export_lerobot, feature_names

    out = tmp_path / "lerobot"
    export_lerobot(dataset, out, fps=10)
    stats = json.loads((out / "meta" / "stats.json").read_text())
    keys = {"min", "max", "mean", "std", "count", *QUANTILES}
    for feature in ("observation.state", "action", "next.reward", "next.success", "next.done",
                    "observation.images.camera"):
        assert set(stats[feature]) == keys, feature  # pi0.5 normalises by q01 / q99
    state = np.concatenate([read_episode(p, frame_stack=1).episode.arrays()["state"][:-1]
                            for p in sorted(dataset.iterdir())])
    np.testing.assert_allclose(stats["observation.state"]["q99"], np.quantile(state, 0.99, axis=0), rtol=1e-6)
    assert np.asarray(stats["observation.images.camera"]["q50"]).shape == (3, 1, 1)
    assert stats["next.success"]["count"] == [36]
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["stats/action/count"] for e in episodes] == [[12], [12], [12]]
    assert all(len(e["stats/observation.state/q01"]) == state.shape[1] for e in episodes)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["action"]["names"] == ["action_0", "action_1"]
    assert feature_names("franka-push", 11, 4)[0][:4] == ["tcp_x", "tcp_y", "tcp_z", "gripper_width"]
    assert feature_names("franka-push", 11, 4)[1] == ["tcp_dx", "tcp_dy", "tcp_dz", "gripper"]
