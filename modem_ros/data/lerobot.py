"""`modem-ros demos export --format lerobot`: a LeRobotDataset (codebase v3.0) from our episode bags.

Layout (what the Hugging Face lerobot tools read): meta/info.json (features, fps, path templates),
meta/stats.json, meta/tasks.parquet, meta/episodes/chunk-000/file-000.parquet (per-episode lengths and
offsets into the data and video files), data/chunk-000/file-000.parquet (one row per frame) and
videos/observation.images.camera/chunk-000/file-000.mp4 (every episode's frames, one after another).

A LeRobot frame is an observation and the action taken from it, so an episode of T steps is T frames;
its final observation (after the last action) has no frame, and the reward and success that followed
each action are next.reward / next.success. Written to a temp directory and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from modem_ros import topics
from modem_ros.data.demos import DemoError, load_demo_dir

CODEBASE_VERSION = "v3.0"
CAMERA = "observation.images.camera"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's (pi0.5 normalises by them)


def _stats(values: np.ndarray) -> dict:
    """LeRobot's per-feature statistics over the first axis, quantiles included."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    out = {"min": values.min(0).tolist(), "max": values.max(0).tolist(), "mean": values.mean(0).tolist(),
           "std": values.std(0).tolist(), "count": [int(values.shape[0])]}
    out.update({name: np.quantile(values, q, axis=0).tolist() for name, q in QUANTILES.items()})
    return out


def _image_stats(frames: list[np.ndarray]) -> dict:
    """Per-channel statistics of uint8 HWC frames in [0, 1], shaped [3, 1, 1] as LeRobot keeps them."""
    pixels = np.stack(frames).reshape(-1, 3) / 255.0
    return {k: ([[[v]] for v in values] if k != "count" else [len(frames)]) for k, values in _stats(pixels).items()}


def feature_names(task: str, state_dim: int, action_dim: int) -> tuple[list[str], list[str]]:
    """Names of the state and action dimensions: the Franka tasks' (robots/franka_spec.py), else indexed."""
    if task.startswith("franka-"):
        from modem_ros.robots import franka_spec

        if (state_dim, action_dim) == (franka_spec.STATE_DIM, franka_spec.ACTION_DIM):
            return list(franka_spec.STATE_FIELDS), list(franka_spec.ACTION_FIELDS)
    return [f"state_{i}" for i in range(state_dim)], [f"action_{i}" for i in range(action_dim)]


NUMERIC = ("observation.state", "action", "next.reward", "next.success", "next.done", "timestamp", "frame_index",
           "episode_index", "index", "task_index")


def export_lerobot(dataset: str | Path, out: str | Path, fps: int = topics.AGENT_HZ, robot_type: str = "") -> dict:
    """Export every readable episode; refuses if any is unreadable (say which) or `out` exists."""
    import imageio.v2 as imageio
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; export writes a new dataset")
    bags, bad = load_demo_dir(dataset, frame_stack=1)
    if bad:
        raise DemoError(f"{len(bad)} unreadable episode(s), run `modem-ros demos validate`: {bad[0]}")
    if not bags:
        raise DemoError(f"{dataset}: no episodes to export")
    sizes = {bag.episode.rgb[0].shape for bag in bags}
    if len(sizes) > 1:  # one video stream of one size: mixed datasets cannot be one LeRobotDataset
        first = {shape: next(b.path.name for b in bags if b.episode.rgb[0].shape == shape) for shape in sizes}
        raise DemoError(f"{dataset}: episodes of several image sizes {sorted(first.items())}; export each size apart")
    tasks = sorted({bag.meta.get("task", "unknown") for bag in bags})
    tmp = out.with_name(f".export-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        rows, episodes, frames_all = [], [], []
        index = 0
        for e, bag in enumerate(bags):
            arr = bag.episode.arrays()
            steps = len(bag.episode)
            task_index = tasks.index(bag.meta.get("task", "unknown"))
            for t in range(steps):
                rows.append({"observation.state": arr["state"][t], "action": arr["action"][t],
                             "next.reward": np.float32(arr["reward"][t]), "next.success": bool(arr["success"][t]),
                             "next.done": t == steps - 1, "timestamp": np.float32(t / fps), "frame_index": t,
                             "episode_index": e, "index": index + t, "task_index": task_index})
            frames = [arr["rgb"][t].transpose(1, 2, 0) for t in range(steps)]
            frames_all += frames
            start = index / fps
            episode_stats = {key: _stats([row[key] for row in rows[index:index + steps]]) for key in NUMERIC}
            episode_stats[CAMERA] = _image_stats(frames)
            episodes.append({"episode_index": e, "tasks": [tasks[task_index]], "length": steps,
                             "data/chunk_index": 0, "data/file_index": 0,
                             "dataset_from_index": index, "dataset_to_index": index + steps,
                             f"videos/{CAMERA}/chunk_index": 0, f"videos/{CAMERA}/file_index": 0,
                             f"videos/{CAMERA}/from_timestamp": start,
                             f"videos/{CAMERA}/to_timestamp": start + steps / fps,
                             "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                             "source_bag": bag.path.name,
                             **{f"stats/{key}/{name}": value for key, st in episode_stats.items()
                                for name, value in st.items()}})
            index += steps
        height, width = frames_all[0].shape[:2]
        state_dim, action_dim = len(rows[0]["observation.state"]), len(rows[0]["action"])
        state_names, action_names = feature_names(tasks[0], state_dim, action_dim)

        data = tmp / DATA_PATH.format(chunk_index=0, file_index=0)
        data.parent.mkdir(parents=True)
        columns = {key: [row[key] for row in rows] for key in rows[0]}
        table = pa.table({key: (pa.array([v.tolist() for v in values], pa.list_(pa.float32()))
                                if isinstance(values[0], np.ndarray) else pa.array(values))
                          for key, values in columns.items()})
        pq.write_table(table, data)
        video = tmp / VIDEO_PATH.format(video_key=CAMERA, chunk_index=0, file_index=0)
        video.parent.mkdir(parents=True)
        with imageio.get_writer(video, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2,
                                quality=9) as writer:
            for frame in frames_all:
                writer.append_data(frame)
        meta = tmp / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(episodes), meta / "episodes" / "chunk-000" / "file-000.parquet")
        pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(tasks, name="task")).to_parquet(
            meta / "tasks.parquet")
        stats = {key: _stats(np.stack([np.asarray(v, np.float64) for v in columns[key]])) for key in NUMERIC}
        stats[CAMERA] = _image_stats(frames_all)
        (meta / "stats.json").write_text(json.dumps(stats, indent=1))
        scalar = {"shape": [1], "names": None}
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": robot_type or bags[0].meta.get("suite", "unknown"),
            "total_episodes": len(bags), "total_frames": len(rows), "total_tasks": len(tasks),
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": fps,
            "splits": {"train": f"0:{len(bags)}"}, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
            "features": {
                CAMERA: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                         "info": {"video.height": height, "video.width": width, "video.codec": "h264",
                                  "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                  "video.channels": 3, "has_audio": False}},
                "observation.state": {"dtype": "float32", "shape": [state_dim], "names": state_names},
                "action": {"dtype": "float32", "shape": [action_dim], "names": action_names},
                "next.reward": {"dtype": "float32", **scalar}, "next.success": {"dtype": "bool", **scalar},
                "next.done": {"dtype": "bool", **scalar}, "timestamp": {"dtype": "float32", **scalar},
                **{k: {"dtype": "int64", **scalar} for k in ("frame_index", "episode_index", "index", "task_index")},
            },
        }
        (meta / "info.json").write_text(json.dumps(info, indent=2))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"episodes": len(bags), "frames": len(rows), "tasks": tasks, "fps": fps, "path": str(out)}


def read_lerobot(root: str | Path) -> list[dict[str, np.ndarray]]:
    """Episodes of a v3.0 LeRobotDataset (ours or any single-camera one): state, action, reward arrays
    and decoded frames, split by the episodes table's offsets. For round-trip checks and inspection."""
    import imageio.v2 as imageio
    import pyarrow.parquet as pq

    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ValueError(f"{root}: codebase_version {info.get('codebase_version')}, expected {CODEBASE_VERSION}")
    episodes = pq.read_table(sorted((root / "meta" / "episodes").rglob("*.parquet"))[0]).to_pylist()
    data = pq.read_table(root / info["data_path"].format(chunk_index=0, file_index=0)).to_pydict()
    camera = next(k for k, f in info["features"].items() if f["dtype"] == "video")
    video = root / info["video_path"].format(video_key=camera, chunk_index=0, file_index=0)
    frames = np.stack([frame for frame in imageio.get_reader(video)])  # (list() asks len(): inf)
    result = []
    for ep in episodes:
        lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
        first = round(ep[f"videos/{camera}/from_timestamp"] * info["fps"])
        result.append({"state": np.asarray(data["observation.state"][lo:hi], np.float32),
                       "action": np.asarray(data["action"][lo:hi], np.float32),
                       "reward": np.asarray(data["next.reward"][lo:hi], np.float32),
                       "frames": frames[first:first + ep["length"]], "length": ep["length"]})
    return result
