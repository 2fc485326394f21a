"""Weights as messages: what the planner needs of a checkpoint, packed into chunks with a header each,
and reassembled, integrity-checked, on the other side. No ROS here (the nodes carry the chunks on
modem/weights as std_msgs/UInt8MultiArray, the header JSON in the layout's first dimension label), so a
trainer on a GPU box and a planner beside the robot need no shared disk.

Header: {"run_id", "version", "step", "episodes", "chunk", "chunks", "size", "sha256", "sent"}, and with
several actors "actors" (announce.py: each actor's episodes trained on); the SHA-256 covers the whole
payload (a torch.save of tensors only, loaded with weights_only=True).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from modem_ros.announce import AnnouncementError, parse_actor_counts

CHUNK_BYTES = 1 << 20          # 1 MiB per message: below the shared-memory profile's 4 MiB limit
MAX_CHUNKS = 256               # keep-last depth of the transient-local topic: a late planner gets a whole set
HEADER_KEYS = {"run_id": str, "version": int, "step": int, "episodes": int, "chunk": int, "chunks": int,
               "size": int, "sha256": str, "sent": float}


class WeightsError(ValueError):
    """A chunk or an assembled payload cannot be used (the message says why)."""


def planner_state(agent_state: dict[str, Any]) -> dict[str, Any]:
    """The part of an agent's state dict acting needs: config (shapes), model, schedules' step, BC policy,
    the extensions' heads that change planning (MOTO's ensemble, the conservative Q ensemble)."""
    from modem_ros.agent.conservative import ConservativeQ  # here: the nodes importing this module need no agent
    from modem_ros.agent.moto import Moto

    keep = ("config", "model", "last_update_step", "bc_pi", Moto.state_key, ConservativeQ.state_key, "step",
            "episodes", "run_id")
    return {k: agent_state[k] for k in keep if k in agent_state}


def pack(state: dict[str, Any], run_id: str, version: int, step: int, episodes: int,
         chunk_bytes: int = CHUNK_BYTES, actors: dict[str, int] | None = None) -> list[tuple[dict[str, Any], bytes]]:
    buffer = io.BytesIO()
    torch.save({**state, "run_id": run_id, "episodes": episodes, "step": step}, buffer)
    payload = buffer.getvalue()
    chunks = [payload[i:i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)] or [b""]
    if len(chunks) > MAX_CHUNKS:
        raise WeightsError(f"{len(payload)} bytes need {len(chunks)} chunks, more than {MAX_CHUNKS}")
    digest, sent = hashlib.sha256(payload).hexdigest(), time.time()
    extra = {} if actors is None else {"actors": actors}
    return [({"run_id": run_id, "version": version, "step": step, "episodes": episodes, "chunk": i,
              "chunks": len(chunks), "size": len(payload), "sha256": digest, "sent": sent, **extra}, data)
            for i, data in enumerate(chunks)]


def parse_header(text: str) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise WeightsError("chunk header is not JSON") from None
    if not isinstance(header, dict):
        raise WeightsError("chunk header is not a JSON object")
    for key, kind in HEADER_KEYS.items():
        value = header.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise WeightsError(f"chunk header '{key}' must be {kind.__name__}, got {value!r}")
    if not 0 <= header["chunk"] < header["chunks"] <= MAX_CHUNKS or header["version"] < 0:
        raise WeightsError(f"chunk {header['chunk']} of {header['chunks']} (version {header['version']}) is impossible")
    try:
        parse_actor_counts(header.get("actors"))
    except AnnouncementError as err:
        raise WeightsError(f"chunk header: {err}") from None
    return header


@dataclass
class Reassembly:
    """Chunks of one (run_id, version) until all are in."""

    header: dict[str, Any]
    parts: dict[int, bytes] = field(default_factory=dict)


class WeightsAssembler:
    """Collects chunks of any number of versions; complete() hands out a verified payload once."""

    def __init__(self, keep: int = 3):
        self.pending: dict[tuple[str, int], Reassembly] = {}
        self.keep = keep

    def add(self, header: dict[str, Any], data: bytes) -> dict[str, Any] | None:
        """Add one chunk; returns the loaded state dict when its version is complete and verified."""
        key = (header["run_id"], header["version"])
        entry = self.pending.setdefault(key, Reassembly(header))
        if (header["chunks"], header["sha256"], header["size"]) != (
                entry.header["chunks"], entry.header["sha256"], entry.header["size"]):
            del self.pending[key]
            raise WeightsError(f"chunks of version {header['version']} disagree on their payload; dropped")
        entry.parts[header["chunk"]] = bytes(data)
        while len(self.pending) > self.keep:  # versions that will never complete (a lost chunk)
            del self.pending[next(iter(self.pending))]
        if len(entry.parts) < header["chunks"]:
            return None
        del self.pending[key]
        payload = b"".join(entry.parts[i] for i in range(header["chunks"]))
        if len(payload) != header["size"] or hashlib.sha256(payload).hexdigest() != header["sha256"]:
            raise WeightsError(f"version {header['version']}: payload fails its SHA-256 (corrupted in transit)")
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unpickling failure is a refused payload
            raise WeightsError(f"version {header['version']}: not loadable ({type(err).__name__})") from None
        if not isinstance(state, dict) or "model" not in state:
            raise WeightsError(f"version {header['version']}: no model weights in the payload")
        if state.get("run_id") != header["run_id"] or state.get("episodes") != header["version"]:
            raise WeightsError(f"version {header['version']}: payload says run {state.get('run_id')!r} after "
                               f"{state.get('episodes')} episodes; the header disagrees")
        return state
