"""Demo episodes to MP4: each frame enlarged, with the action and reward of that step drawn beneath,
and the whole episode's action and reward traces under that with a cursor at the current step.

Needs the sim extra (opencv for drawing, imageio-ffmpeg for H.264). Frames are the agent's own
(the last frame of each stack), so what you see is what the policy saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modem_ros import topics
from modem_ros.data.episode import Episode

SIZE = 256    # output frame width/height, pixels
STRIP = 56    # height of the action/reward strip under each frame
TRACE = 72    # height of the trace plot under that
COLORS = [(90, 170, 250), (250, 150, 70), (120, 220, 120), (220, 110, 220), (230, 220, 90), (90, 220, 230)]


def annotate(frame: np.ndarray, action: np.ndarray | None, reward: float | None, success: bool,
             label: str) -> np.ndarray:
    """One video frame: the camera frame (HWC uint8) enlarged, plus bars for each action dimension
    (centre line = 0, full height = +-1) and the step's reward."""
    import cv2

    image = cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    strip = np.full((STRIP, SIZE, 3), 24, np.uint8)
    mid = STRIP // 2 - 6
    if action is not None:
        width = SIZE // max(len(action), 1)
        for i, value in enumerate(np.clip(action, -1, 1)):
            top, bottom = sorted((mid, int(mid - value * (mid - 2))))
            cv2.rectangle(strip, (i * width + 2, top), ((i + 1) * width - 3, bottom), (90, 170, 250), -1)
        cv2.line(strip, (0, mid), (SIZE, mid), (120, 120, 120), 1)
    text = label if reward is None else f"{label}  r={reward:+.2f}" + ("  success" if success else "")
    cv2.putText(strip, text, (4, STRIP - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (230, 230, 230), 1, cv2.LINE_AA)
    return np.concatenate([image, strip], axis=0)


def traces(episode: Episode) -> np.ndarray:
    """The episode's actions (one colour per dimension, [-1, 1] full height) and its reward (white, scaled
    to its own range) over the steps, as an image TRACE x SIZE."""
    import cv2

    plot = np.full((TRACE, SIZE, 3), 16, np.uint8)
    steps = max(len(episode), 1)
    xs = np.linspace(2, SIZE - 3, steps).astype(np.int32)

    def line(values: np.ndarray, color) -> None:
        ys = (TRACE / 2 - np.clip(values, -1, 1) * (TRACE / 2 - 3)).astype(np.int32)
        cv2.polylines(plot, [np.stack([xs, ys], 1)], False, color, 1, cv2.LINE_AA)

    cv2.line(plot, (0, TRACE // 2), (SIZE, TRACE // 2), (70, 70, 70), 1)
    actions = np.stack(episode.action) if episode.action else np.zeros((1, 1))
    for i in range(actions.shape[1]):
        line(actions[:, i], COLORS[i % len(COLORS)])
    rewards = np.asarray(episode.reward or [0.0], np.float64)
    span = rewards.max() - rewards.min()
    line(2 * (rewards - rewards.min()) / span - 1 if span > 0 else np.zeros_like(rewards), (235, 235, 235))
    return plot


def episode_frames(episode: Episode, name: str) -> list[np.ndarray]:
    """Video frames of one episode: the first observation, then the observation after each step."""
    frames = []
    plot = traces(episode)
    for t, rgb in enumerate(episode.rgb):
        frame = np.ascontiguousarray(rgb[-3:].transpose(1, 2, 0))
        step = t - 1  # observation t follows action t-1
        top = annotate(frame, episode.action[step] if step >= 0 else None,
                       episode.reward[step] if step >= 0 else None,
                       bool(episode.success[step]) if step >= 0 else False, f"{name} t={t}")
        cursor = plot.copy()
        x = int(2 + max(step, 0) * (SIZE - 5) / max(len(episode) - 1, 1))
        cursor[:, x] = (255, 60, 60)
        frames.append(np.concatenate([top, cursor], axis=0))
    return frames


def write_video(episodes: list[tuple[str, Episode]], out: str | Path, fps: int = topics.AGENT_HZ) -> int:
    """Write every episode, one after another, to an H.264 MP4. Returns the number of frames."""
    import imageio.v2 as imageio

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with imageio.get_writer(out, fps=fps, codec="libx264", macro_block_size=8, quality=8) as writer:
        for name, episode in episodes:
            for frame in episode_frames(episode, name):
                writer.append_data(frame)
                count += 1
    return count
