"""`modem-ros demos import --format lerobot SRC --out DIR`: a LeRobotDataset (v3.0) as our episode bags.

What maps, and how:
- frames: one video feature (`--camera KEY` when there are several), centre-cropped square and resized
  to the task's img_size as the camera node does;
- `observation.state` and `action`: must have the task's state_dim / action_dim (else refused, naming both);
- rate: the source fps must be an integer multiple of our agent rate (topics.AGENT_HZ); every r-th frame
  is kept, its action is the one taken there, the reward is the source's `next.reward` at the end of
  the r frames and success any `next.success` within them; without `next.reward`, reward = success - 1
  (the sparse convention of our tasks); with neither, reward 0 and the episode metadata says so;
- a LeRobot episode of T frames has no observation after its last action, so it becomes T'-1 steps.
Anything that cannot map is refused with one line naming the key or number; nothing is written then.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from modem_ros import topics
from modem_ros.config import ModemConfig
from modem_ros.data.demos import DemoError, write_episode
from modem_ros.data.episode import Episode
from modem_ros.envs.base import FrameStack
from modem_ros.images import square_resize


def _episodes_meta(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not files:
        raise DemoError(f"{root}: no meta/episodes/*.parquet (not a LeRobotDataset v3.0?)")
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["episode_index"])


def _data_rows(root: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Every frame row of the dataset's data files, ordered by the global `index`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise DemoError(f"{root}: no data/*.parquet files")
    table = pa.concat_tables([pq.read_table(f, columns=[k for k in keys if k in pq.read_schema(f).names])
                              for f in files])
    order = np.argsort(np.asarray(table.column("index")))
    return {name: np.asarray(table.column(name).to_pylist(), dtype=object)[order] for name in table.column_names}


def _camera(info: dict, camera: str | None, root: Path) -> str:
    videos = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    if camera:
        if camera not in videos:
            raise DemoError(f"{root}: camera key {camera!r} is not a video feature; video features: {videos}")
        return camera
    if len(videos) != 1:
        images = [k for k, f in info["features"].items() if f.get("dtype") == "image"]
        raise DemoError(f"{root}: {'no video feature' if not videos else 'several video features'} "
                        f"{videos}{f' (image-dtype cameras {images} are not supported)' if images else ''}; "
                        "name one with --camera")
    return videos[0]


def import_lerobot(src: str | Path, out: str | Path, cfg: ModemConfig, camera: str | None = None) -> dict:
    """Convert every episode of `src` into episode bags under `out` (a new directory). Returns a summary."""
    import imageio.v2 as imageio

    root, out = Path(src), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; import writes a new dataset")
    try:
        info = json.loads((root / "meta" / "info.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DemoError(f"{root}: cannot read meta/info.json ({err})") from None
    if info.get("codebase_version") != "v3.0":
        raise DemoError(f"{root}: codebase_version {info.get('codebase_version')!r}; only v3.0 is read "
                        "(convert older datasets with lerobot's own converter first)")
    features = info["features"]
    cam = _camera(info, camera, root)
    for key, want in (("observation.state", cfg.state_dim), ("action", cfg.action_dim)):
        if key not in features:
            raise DemoError(f"{root}: no '{key}' feature; {cfg.task} needs {want} values of it")
        have = int(np.prod(features[key]["shape"]))
        if have != want:
            raise DemoError(f"{root}: '{key}' has {have} values per frame, task {cfg.task} expects {want}")
    fps = float(info["fps"])
    ratio = fps / topics.AGENT_HZ
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
        raise DemoError(f"{root}: fps {fps:g} is not an integer multiple of our agent rate {topics.AGENT_HZ} Hz")
    ratio = round(ratio)
    reward_key = "next.reward" if "next.reward" in features else None
    success_key = "next.success" if "next.success" in features else None
    rows = _data_rows(root, ["index", "observation.state", "action", "next.reward", "next.success"])
    index_of = {int(i): n for n, i in enumerate(rows["index"])}
    decoded: dict[Path, np.ndarray] = {}
    tmp = out.with_name(f".import-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written = 0
    try:
        for ep in _episodes_meta(root):
            video = root / info["video_path"].format(video_key=cam, chunk_index=ep[f"videos/{cam}/chunk_index"],
                                                     file_index=ep[f"videos/{cam}/file_index"])
            if video not in decoded:
                decoded[video] = np.stack(list(imageio.get_reader(video).iter_data()))
            first = round(ep[f"videos/{cam}/from_timestamp"] * fps)
            lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
            frames = decoded[video][first:first + (hi - lo)]
            if len(frames) != hi - lo:
                raise DemoError(f"{video}: episode {ep['episode_index']} needs {hi - lo} frames from {first}, "
                                f"the video has {len(decoded[video])}")
            at = [index_of[i] for i in range(lo, hi)]
            kept = list(range(0, hi - lo, ratio))
            if len(kept) < cfg.horizon + 1:
                continue  # too short to train on at this rate (fewer than horizon steps)
            episode = _episode(cfg, frames, rows, at, kept, ratio, reward_key, success_key)
            write_episode(episode, tmp / f"episode_{written:06d}", {
                "task": cfg.task, "source": f"lerobot:{root.resolve()}", "source_episode": ep["episode_index"],
                "source_fps": fps, "camera": cam, "reward": reward_key or (
                    "success - 1" if success_key else "absent (0)")})
            written += 1
        if not written:
            raise DemoError(f"{root}: no episode long enough (horizon {cfg.horizon} steps at {topics.AGENT_HZ} Hz)")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"episodes": written, "camera": cam, "fps": fps, "every": ratio, "path": str(out)}


def _episode(cfg: ModemConfig, frames: np.ndarray, rows: dict, at: list[int], kept: list[int], ratio: int,
             reward_key: str | None, success_key: str | None) -> Episode:
    stack = FrameStack(cfg.frame_stack)

    def obs(k: int, first: bool = False) -> dict:
        frame = square_resize(frames[k], cfg.img_size)[0].transpose(2, 0, 1)
        rgb = stack.reset(frame) if first else stack.push(frame)
        return {"rgb": rgb, "state": np.asarray(rows["observation.state"][at[k]], np.float32)}

    episode = Episode.start(obs(kept[0], first=True))
    for a, b in zip(kept, kept[1:], strict=False):
        window = [at[k] for k in range(a, b)]
        success = bool(any(rows[success_key][i] for i in window)) if success_key else False
        reward = float(rows[reward_key][window[-1]]) if reward_key else (float(success) - 1.0 if success_key else 0.0)
        action = np.asarray(rows["action"][at[a]], np.float32)
        episode.add(np.clip(action, -1.0, 1.0), obs(b), reward, success)
    return episode
