"""`modem-ros demos validate`: every problem of every episode, each naming the file and the step.

Unlike the loader (which stops at the first defect), this reads each bag through and lists everything:
metadata and checksums, topics present, stream lengths consistent, images decodable and of one size,
states and rewards finite, actions finite and within [-1, 1], and episodes that disagree with the rest
of the dataset (task, image size, state or action size).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modem_ros import topics
from modem_ros.data.demos import DemoError, episode_dirs, read_meta, read_streams, verify_checksums
from modem_ros.images import is_no_frame

ACTION_LIMIT = 1.0 + 1e-6  # actions are normalized to [-1, 1]


@dataclass
class EpisodeReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    steps: int = 0
    shapes: dict[str, tuple] = field(default_factory=dict)  # image (h, w), state (d,), action (d,)
    task: str = ""


def _check_stream(report: EpisodeReport, name: str, values: list[np.ndarray], limit: float | None = None) -> None:
    sizes = Counter(v.shape for v in values)
    if len(sizes) > 1:
        report.problems.append(f"{name} sizes differ within the episode: {dict(sizes)}")
    if values:
        report.shapes[name] = sizes.most_common(1)[0][0]
    for t, value in enumerate(values):
        if not np.all(np.isfinite(value)):
            report.problems.append(f"{name} {t} has non-finite values {value.tolist()}")
        elif limit is not None and np.any(np.abs(value) > limit):
            report.problems.append(f"{name} {t} is outside [-1, 1]: {np.round(value, 4).tolist()}")


def validate_episode(path: Path) -> EpisodeReport:
    report = EpisodeReport(path)
    try:
        meta = read_meta(path)
        report.task = meta.get("task", "")
        verify_checksums(path, meta)
        messages = read_streams(path)
    except DemoError as err:
        report.problems.append(str(err).removeprefix(f"{path}").lstrip(": "))
        return report
    missing = [name for name, msgs in messages.items() if not msgs]
    if missing:
        report.problems.append(f"topics missing or empty: {', '.join(missing)}")
    steps = len(messages[topics.ACTION])
    report.steps = steps
    expected = {topics.IMAGE: steps + 1, topics.STATE: steps + 1, topics.ACTION: steps, topics.REWARD: steps,
                topics.SUCCESS: steps}
    counts = {name: len(msgs) for name, msgs in messages.items()}
    if counts != expected:
        report.problems.append(f"stream lengths {counts}; {steps} actions need {expected}")
    sizes = Counter()
    for t, msg in enumerate(messages[topics.IMAGE]):
        if is_no_frame(msg):
            report.problems.append(f"image {t} is the camera's no-frame placeholder: that observation has no image")
        elif msg.encoding != "rgb8" or len(msg.data) != msg.height * msg.width * 3:
            report.problems.append(f"image {t} is not decodable: {msg.encoding}, {len(msg.data)} bytes for "
                                   f"{msg.width}x{msg.height} (expected rgb8)")
        else:
            sizes[(msg.height, msg.width)] += 1
    if len(sizes) > 1:
        report.problems.append(f"image sizes differ within the episode: {dict(sizes)}")
    if sizes:
        report.shapes["image"] = sizes.most_common(1)[0][0]
    _check_stream(report, "state", [np.asarray(m.data, np.float32) for m in messages[topics.STATE]])
    _check_stream(report, "action", [np.asarray(m.data, np.float32) for m in messages[topics.ACTION]],
                  limit=ACTION_LIMIT)
    _check_stream(report, "reward", [np.asarray([m.data], np.float32) for m in messages[topics.REWARD]])
    return report


def validate_dataset(directory: str | Path) -> tuple[list[EpisodeReport], list[str]]:
    """A report per episode, and dataset-level problems (episodes disagreeing with the majority,
    interrupted writes)."""
    directory = Path(directory)
    reports = [validate_episode(path) for path in episode_dirs(directory)]
    problems = []
    if not reports:
        problems.append(f"{directory}: no episodes")
    for key in ("task", "image", "state", "action"):
        value = {r.path: r.task if key == "task" else r.shapes.get(key) for r in reports}
        counts = Counter(v for v in value.values() if v)
        if len(counts) > 1:
            majority = counts.most_common(1)[0][0]
            for r in reports:
                if value[r.path] and value[r.path] != majority:
                    r.problems.append(f"{key} {value[r.path]} differs from the dataset's {majority}")
    staging = sorted(p.name for p in directory.iterdir() if p.name.startswith(".staging-"))
    if staging:
        problems.append(f"interrupted writes (not episodes, safe to delete): {', '.join(staging)}")
    return reports, problems
