"""What the robot's safety layer would have done to a run's training actions (issue 18's safety counts).

In the Franka cell the sim executes the policy's actions as they come; on the robot each one passes
franka_bridge's SafetyLayer first. To compare exploration schemes by how hard they lean on that layer,
every stored training episode is replayed through a fresh SafetyLayer built as the bridge builds it
(the limits' defaults = config/deploy.yaml, the command period = action_repeat control periods), fed the
episode's own measured TCP (state[:3]) before each action. Counted per 1000 agent steps:
- clips: commands the layer altered (any `clipped_*` event), with a count per kind;
- holds: commands it replaced by a hold (a rejected action);
- faults: times the measured TCP left the box by more than the margin (the layer is then reset at the
  measured pose, as an operator's recover would, and the replay goes on).
The cell's states carry no orientation, so the tilt check cannot fire here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from modem_ros import topics
from modem_ros.data.demos import episode_dirs, read_streams
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.safety import SafetyLayer, SafetyLimits

HOME_QUATERNION = (1.0, 0.0, 0.0, 0.0)  # x, y, z, w: the tool pointing down, as the bridge starts


def audit_episode(states: np.ndarray, actions: np.ndarray, action_repeat: int,
                  limits: SafetyLimits | None = None) -> Counter[str]:
    """Event counts of one episode (states: [T+1, >=3], TCP first; actions: [T, 4])."""
    layer = SafetyLayer(limits or SafetyLimits(), action_repeat * spec.CONTROL_PERIOD, HOME_QUATERNION)
    layer.reset(states[0][:3], HOME_QUATERNION)
    counts: Counter[str] = Counter()
    for state, action in zip(states[:-1], actions, strict=True):
        decision = layer.command(action, measured_position=state[:3])
        kinds = {event.split(":")[0] for event in decision.events}
        clips = {k for k in kinds if k.startswith("clipped_")}
        counts.update(clips)
        counts["steps"] += 1
        counts["clips"] += bool(clips)
        if layer.faulted:
            counts["faults"] += 1
            layer.reset(state[:3], HOME_QUATERNION)
        elif decision.command.hold:
            counts["holds"] += 1
    return counts


def states_and_actions(episode: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A stored episode's measured states [T+1, S] and executed actions [T, A], as float64."""
    streams = read_streams(episode)
    states = np.stack([np.asarray(m.data, np.float64) for m in streams[topics.STATE]])
    actions = np.stack([np.asarray(m.data, np.float64) for m in streams[topics.ACTION]])
    return states, actions


def audit_run(episodes_dir: str | Path, action_repeat: int) -> dict[str, Any]:
    """Events per 1000 agent steps over every episode stored in a run's `episodes/` directory."""
    total: Counter[str] = Counter()
    paths = episode_dirs(episodes_dir)
    for path in paths:
        total.update(audit_episode(*states_and_actions(path), action_repeat))
    steps = total.pop("steps", 0)
    per_1000 = {k: round(1000.0 * v / steps, 2) for k, v in sorted(total.items())} if steps else {}
    for key in ("clips", "holds", "faults"):
        per_1000.setdefault(key, 0.0)
    return {"episodes": len(paths), "agent_steps": steps, "per_1000_steps": per_1000,
            "how": "stored training episodes replayed through franka_bridge's SafetyLayer at the deploy limits"}
