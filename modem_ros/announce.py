"""The trainer's checkpoint announcements on modem/checkpoint, and loading what they point to.

An announcement is JSON {"path", "version", "step", "episodes", "run_id"}, and with several actors
"actors": {actor: episodes of it trained on}; the file it names carries the same run_id and its episode
count (= version). Anything on the topic is untrusted: a malformed message,
another run's announcement, a file that does not load, or a version the file does not confirm is
refused with one line, so one bad message can neither stop the planner nor pin it to foreign weights.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


class AnnouncementError(ValueError):
    """An announcement or the checkpoint it names cannot be used (the message says why)."""


@dataclass(frozen=True)
class Announcement:
    path: str
    version: int
    step: int
    episodes: int
    run_id: str
    actors: dict[str, int] | None = None  # several actors: each one's episodes the weights were trained on


MAX_ACTORS = 64


def parse_actor_counts(value: Any) -> dict[str, int] | None:
    """The optional per-actor episode counts of an announcement or weights header (None: one actor)."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_ACTORS or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()):
        raise AnnouncementError(f"'actors' must map at most {MAX_ACTORS} actor names to episode counts >= 0, "
                                f"got {str(value)[:80]!r}")
    return dict(value)


def trained_episodes(actors: dict[str, int] | None, actor: str, episodes: int) -> int:
    """Episodes of `actor` the weights were trained on: its count, or all episodes with one actor."""
    return episodes if actors is None else actors.get(actor, 0)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_id_of(run_dir: Path) -> str:
    """The run directory's identity: read from run_dir/run_id, created on first use (resume keeps it)."""
    path = Path(run_dir) / "run_id"
    if path.exists():
        text = path.read_text().strip()
        if text:
            return text
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    tmp = path.with_name(".run_id.tmp")
    tmp.write_text(run_id + "\n")
    tmp.replace(path)
    return run_id


def announcement(path: Path, version: int, step: int, episodes: int, run_id: str,
                 actors: dict[str, int] | None = None) -> str:
    data = {"path": str(path), "version": version, "step": step, "episodes": episodes, "run_id": run_id}
    if actors is not None:
        data["actors"] = actors
    return json.dumps(data)


def parse_announcement(text: str) -> Announcement:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise AnnouncementError(f"not JSON ({err})") from None
    if not isinstance(data, dict):
        raise AnnouncementError(f"expected a JSON object, got {type(data).__name__}")
    fields = {"path": str, "version": int, "step": int, "episodes": int, "run_id": str}
    missing = [k for k in fields if k not in data]
    if missing:
        raise AnnouncementError(f"missing {', '.join(missing)}")
    for key, kind in fields.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise AnnouncementError(f"'{key}' must be {kind.__name__}, got {data[key]!r}")
        if kind is int and data[key] < 0:
            raise AnnouncementError(f"'{key}' must be >= 0, got {data[key]}")
    return Announcement(**{k: data[k] for k in fields}, actors=parse_actor_counts(data.get("actors")))


def load_announced(path: str | Path, device: torch.device | str, run_id: str = "",
                   version: int | None = None) -> dict[str, Any]:
    """The checkpoint dict at `path` (tensors only: weights_only, no pickled code runs). With `run_id`,
    the file must be that run's, and with `version`, saved after that many episodes."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise AnnouncementError(f"no file {path} (on another machine than the trainer, its run directory "
                                "must be shared at the same path)") from None
    except Exception as err:  # noqa: BLE001 - a truncated file fails in many ways (EOFError, IndexError, ...)
        raise AnnouncementError(f"{path} is not a loadable checkpoint ({type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise AnnouncementError(f"{path} is not a modem_ros checkpoint (no 'model')")
    if run_id and state.get("run_id") != run_id:
        raise AnnouncementError(f"{path} belongs to run {state.get('run_id')!r}, not {run_id!r}")
    if version is not None and state.get("episodes") != version:
        raise AnnouncementError(f"announced as version {version} but {path} was saved after "
                                f"{state.get('episodes')} episodes")
    return state
