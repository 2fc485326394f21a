"""LeRobot datasets in (issue 20 part 1): a v3.0 dataset becomes episode bags the trainer reads, with a
clear refusal for what cannot map; directories take roles (demos, offline)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modem_ros.data.demos import DemoError, load_demo_dir, write_episode
from modem_ros.data.lerobot import export_lerobot
from modem_ros.data.lerobot_import import import_lerobot
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.trainer import scripted_demos
from tests.conftest import small_config

pytest.importorskip("pyarrow", reason="needs the lerobot extra")


@pytest.fixture
def lerobot(tmp_path):
    cfg = small_config(episode_length=18)
    episodes = scripted_demos(PointReachEnv(img_size=cfg.img_size, episode_length=18), 3, seed=0)
    for i, episode in enumerate(episodes):
        write_episode(episode, tmp_path / "bags" / f"episode_{i:06d}", {"task": "toy-reach"})
    export_lerobot(tmp_path / "bags", tmp_path / "lerobot", fps=10)
    return cfg, episodes, tmp_path / "lerobot"


def test_an_exported_dataset_imports_back_with_the_same_actions_states_and_rewards(lerobot, tmp_path):
    cfg, episodes, root = lerobot
    summary = import_lerobot(root, tmp_path / "imported", cfg)
    assert summary["episodes"] == 3 and summary["every"] == 1
    bags, bad = load_demo_dir(tmp_path / "imported", cfg.frame_stack)
    assert not bad
    for bag, original in zip(bags, episodes, strict=True):
        back, orig = bag.episode.arrays(), original.arrays()
        n = len(bag.episode)
        assert n == len(original) - 1  # LeRobot keeps no observation after the last action
        np.testing.assert_array_equal(back["action"], orig["action"][:n])
        np.testing.assert_array_equal(back["state"], orig["state"][:n + 1])
        np.testing.assert_array_equal(back["reward"], orig["reward"][:n])
        assert np.abs(back["rgb"].astype(int) - orig["rgb"][:n + 1].astype(int)).mean() < 6  # H.264, lossy
        assert bag.meta["source"].startswith("lerobot:")


def _edit_info(root, change):
    info = json.loads((root / "meta" / "info.json").read_text())
    change(info)
    (root / "meta" / "info.json").write_text(json.dumps(info))


@pytest.mark.parametrize("change, message", [
    (lambda i: i["features"].pop("observation.images.camera"), "no video feature"),
    (lambda i: i["features"]["action"].update(shape=[3]), "'action' has 3 values per frame, task toy-reach expects 2"),
    (lambda i: i.update(fps=15), "fps 15 is not an integer multiple of our agent rate 10 Hz"),
    (lambda i: i.update(codebase_version="v2.1"), "codebase_version 'v2.1'; only v3.0"),
])
def test_what_cannot_map_is_refused_and_nothing_is_written(lerobot, tmp_path, change, message):
    cfg, _, root = lerobot
    _edit_info(root, change)
    with pytest.raises(DemoError, match=message):
        import_lerobot(root, tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".import-*"))


def test_a_30_fps_source_keeps_every_third_frame(lerobot, tmp_path):
    cfg, episodes, _ = lerobot
    root = tmp_path / "lerobot30"
    export_lerobot(tmp_path / "bags", root, fps=30)  # the same frames as a 30 fps recording
    summary = import_lerobot(root, tmp_path / "imported", cfg)
    assert summary["every"] == 3
    bags, _ = load_demo_dir(tmp_path / "imported", cfg.frame_stack)
    first, orig = bags[0].episode.arrays(), episodes[0].arrays()
    np.testing.assert_array_equal(first["action"], orig["action"][[0, 3, 6, 9, 12]])
    np.testing.assert_array_equal(first["state"], orig["state"][[0, 3, 6, 9, 12, 15]])


def test_offline_directories_fill_the_replay_buffer_and_demo_dirs_combine(lerobot, tmp_path):
    cfg, _, root = lerobot
    import_lerobot(root, tmp_path / "imported", cfg)
    bags = tmp_path / "bags"
    trainer = build_trainer(small_config(episode_length=18, demos=4, demo_dir=f"{bags},{tmp_path / 'imported'}",
                                         offline_dirs=str(tmp_path / "imported")), None, log_stream=io.StringIO())
    assert trainer.demo_buffer.num_episodes == 4  # 3 from bags, then the first imported one
    assert len(trainer.replay_buffer) == 3 * 17 and trainer.step == 0  # offline steps count in no budget


def test_generate_makes_datasets_of_a_chosen_quality(tmp_path, capsys):
    from modem_ros.cli import main
    from modem_ros.data.demos import read_meta

    small = [f"{k}={v}" for k, v in {"img_size": 48, "episode_length": 20, "demos": 3}.items()]
    assert main(["demos", "generate", "--task", "toy-reach", "-n", "3", "--out", str(tmp_path / "noisy"),
                 "--noise", "0.8", *small]) == 0
    assert main(["demos", "generate", "--task", "toy-reach", "-n", "3", "--out", str(tmp_path / "clean"), *small]) == 0
    assert main(["demos", "generate", "--task", "toy-reach", "-n", "2", "--out", str(tmp_path / "random"),
                 "--policy", "random", *small]) == 0
    noisy, _ = load_demo_dir(tmp_path / "noisy", 1)
    clean, _ = load_demo_dir(tmp_path / "clean", 1)
    assert read_meta(noisy[0].path)["source"].endswith("N(0, 0.8) noise")
    assert np.mean([b.episode.total_reward for b in noisy]) < np.mean([b.episode.total_reward for b in clean])
    assert read_meta(tmp_path / "random" / "episode_000000")["policy"] == "random"
    assert main(["demos", "generate", "--task", "toy-reach", "-n", "1", "--out", str(tmp_path / "bc"),
                 "--policy", "bc", *small]) == 1
    assert "policy bc needs --checkpoint" in capsys.readouterr().err
