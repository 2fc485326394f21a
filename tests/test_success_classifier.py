"""The success classifier behind reward_source classifier: labels aligned with the frames they judge,
a threshold set on held-out episodes for the false-positive rate asked, files that refuse misuse, and the
CLI trained on real generated episodes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from modem_ros.data.demos import generate
from modem_ros.data.episode import Episode
from modem_ros.success_classifier import (
    ClassifierError,
    SuccessDetector,
    check_classifier,
    labelled_frames,
    save_classifier,
    train_classifier,
)
from tests.conftest import small_config

SIZE = 32


def synthetic_episode(rng: np.random.Generator, steps: int, done_at: int | None, size: int = SIZE) -> Episode:
    """Noise frames; from the step the task is done on, a bright square in a corner (what 'done' looks like)."""
    episode = Episode()
    for t in range(steps + 1):
        frame = rng.integers(0, 120, (3, size, size), dtype=np.uint8)
        if done_at is not None and t > done_at:  # frame t shows the result of action t-1
            frame[:, :8, :8] = 255
        episode.rgb.append(np.concatenate([frame, frame]))  # a frame stack of 2, newest last
        episode.state.append(np.zeros(2, np.float32))
        if t < steps:
            episode.action.append(np.zeros(2, np.float32))
            episode.reward.append(0.0)
            episode.success.append(done_at is not None and t >= done_at)
    return episode


def test_frame_t_plus_1_is_labelled_with_the_success_of_action_t():
    episode = Episode()
    for t in range(5):
        episode.rgb.append(np.full((6, 4, 4), t, np.uint8))
    episode.success = [False, False, True, True]
    frames, labels = labelled_frames(episode)
    assert frames.shape == (5, 3, 4, 4) and [int(f[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4]
    assert labels.tolist() == [False, False, False, True, True]


def test_threshold_meets_the_false_positive_rate_on_held_out_episodes(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [synthetic_episode(rng, 20, done_at=int(rng.integers(5, 15)) if i % 3 else None) for i in range(12)]
    net, report = train_classifier(episodes, steps=150, target_fpr=0.05, seed=0)
    assert report.train_episodes + report.heldout_episodes == 12 and report.heldout_episodes == 3
    assert report.heldout_fpr <= 0.05 and report.heldout_tpr >= 0.9, report
    assert sum(report.heldout_frames.values()) == 3 * 21
    path = save_classifier(net, report, SIZE, "toy-reach", tmp_path / "clf.pt")
    detector = SuccessDetector(path, img_size=SIZE, task="toy-reach")
    done = synthetic_episode(rng, 3, done_at=0).rgb[-1][-3:].transpose(1, 2, 0)
    not_done = synthetic_episode(rng, 3, done_at=None).rgb[-1][-3:].transpose(1, 2, 0)
    assert detector(np.ascontiguousarray(done))[0] and not detector(np.ascontiguousarray(not_done))[0]
    with pytest.raises(ClassifierError, match="expected \\(32, 32, 3\\) uint8"):
        detector(np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(ClassifierError, match="trained on 32 px frames, the agent's are 84 px"):
        SuccessDetector(path, img_size=84)
    with pytest.raises(ClassifierError, match="trained for task toy-reach, this graph runs franka-reach"):
        SuccessDetector(path, task="franka-reach")


class _TopLeftBright(torch.nn.Module):
    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # logit > 0 where the top-left pixel is above 200
        return frames[:, 0, 0, 0].float() - 200.0


class _FixedDetector:
    """A detector whose verdicts are set by hand: fires on frames whose top-left pixel is bright."""
    img_size, threshold, net = SIZE, 0.5, _TopLeftBright()


def test_check_counts_frames_and_episodes_it_would_reward_wrongly():
    rng = np.random.default_rng(2)
    late = synthetic_episode(rng, 10, done_at=4)          # fires 1 step late: a bright square from frame 6
    for t in range(len(late.rgb)):
        late.rgb[t][:, :8, :8] = 255 if t > 5 else 0
    early = synthetic_episode(rng, 10, done_at=6)         # fires from frame 3, the task is done at frame 7
    for t in range(len(early.rgb)):
        early.rgb[t][:, :8, :8] = 255 if t > 2 else 0
    missed = synthetic_episode(rng, 10, done_at=8)
    for frame in missed.rgb:
        frame[:, :8, :8] = 0
    false = synthetic_episode(rng, 10, done_at=None)      # a failure with one bright frame: a reward for nothing
    false.rgb[4][:, :8, :8] = 255
    clean = synthetic_episode(rng, 10, done_at=None)
    report = check_classifier(_FixedDetector(), [late, early, missed, false, clean])
    assert (report.episodes, report.success_episodes, report.failed_episodes) == (5, 3, 2)
    assert report.false_success_episodes == 1 and report.missed_success_episodes == 1 and report.early_episodes == 1
    assert report.mean_detection_delay == (1 + -4) / 2
    # frames: positives 6 (late) + 4 (early) + 2 (missed) = 12, detected 5 + 4 + 0; negatives 55 - 12 = 43,
    # fired on 4 (early, frames 3-6) + 1 (false)
    assert report.frames == {"positive": 12, "negative": 43}
    assert report.tpr == pytest.approx(9 / 12) and report.fpr == pytest.approx(5 / 43)
    with pytest.raises(ClassifierError, match="no episodes"):
        check_classifier(_FixedDetector(), [])


def test_training_needs_both_outcomes_and_files_must_be_classifiers(tmp_path):
    rng = np.random.default_rng(1)
    with pytest.raises(ClassifierError, match="both successes and failures are needed"):
        train_classifier([synthetic_episode(rng, 10, None) for _ in range(4)], steps=1)
    with pytest.raises(ClassifierError, match="at least 2 are needed"):
        train_classifier([synthetic_episode(rng, 10, 3)], steps=1)
    torch.save({"state_dict": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ClassifierError, match="not a success classifier"):
        SuccessDetector(tmp_path / "checkpoint.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x04not a file")
    with pytest.raises(ClassifierError, match="not a readable success classifier"):
        SuccessDetector(tmp_path / "garbage.pt")


def test_cli_trains_on_generated_episodes_and_writes_a_loadable_detector(tmp_path):
    cfg = small_config(img_size=48)
    generate(cfg, 4, tmp_path / "demos")  # the expert's successes, each with frames before the goal
    generate(cfg, 4, tmp_path / "random", only_success=False, policy="random")  # mostly failures
    out = tmp_path / "clf.pt"
    done = subprocess.run([sys.executable, "-m", "modem_ros.cli", "classifier", f"{tmp_path}/demos,{tmp_path}/random",
                           "--out", str(out), "--steps", "30", "img_size=48", "frame_stack=2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[:done.stdout.index("(written to")])
    assert report["train_episodes"] + report["heldout_episodes"] == 8
    assert 0.0 <= report["heldout_fpr"] <= 1.0 and report["target_fpr"] == 0.01
    assert SuccessDetector(out, img_size=48, task="toy-reach").threshold == report["threshold"]
    assert ("detects only" in done.stderr) == (report["heldout_tpr"] < 0.5), done.stderr  # warned when weak
    generate(small_config(img_size=48, seed=5), 2, tmp_path / "fresh", only_success=False, policy="random")
    checked = subprocess.run([sys.executable, "-m", "modem_ros.cli", "classifier", f"{tmp_path}/fresh,{tmp_path}/demos",
                              "--check", str(out), "img_size=48", "frame_stack=2"],
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    check = json.loads(checked.stdout)
    assert check["episodes"] == 6 and check["threshold"] == report["threshold"]
    assert check["success_episodes"] >= 4 and check["frames"]["positive"] > 0 and check["frames"]["negative"] > 0
    both = subprocess.run([sys.executable, "-m", "modem_ros.cli", "classifier", f"{tmp_path}/demos", "--check",
                           str(out), "--out", str(tmp_path / "y.pt"), "img_size=48"], capture_output=True, text=True)
    assert both.returncode != 0 and "--out FILE to train one, or --check FILE" in both.stderr + both.stdout
    wrong = subprocess.run([sys.executable, "-m", "modem_ros.cli", "classifier", f"{tmp_path}/demos", "--out",
                            str(tmp_path / "x.pt"), "img_size=84"], capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "48 px frames, the toy-reach config 84 px" in wrong.stderr + wrong.stdout
