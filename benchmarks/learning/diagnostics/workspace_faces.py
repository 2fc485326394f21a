"""Where the Franka cell's TCP sits against the safety layer's workspace box, and how hard the actions push
(issue 18: are the workspace clips the exploration's, or the cell's box?).

    python benchmarks/learning/diagnostics/workspace_faces.py EPISODES_DIR [EPISODES_DIR ...]

For each directory of stored episodes (a run's `episodes/`, or a demo directory): the share of agent steps
whose measured TCP is within 1 cm of each face of the box (the deploy limits, robots/safety.py), the mean
|action| per dimension and the share saturated (|a| > 0.95), and the per-episode share of steps the
bridge's SafetyLayer would clip (robots/safety_audit.py).
"""

from __future__ import annotations

import sys

import numpy as np

from modem_ros.data.demos import episode_dirs
from modem_ros.robots.safety import SafetyLimits
from modem_ros.robots.safety_audit import audit_episode, states_and_actions

NEAR = 0.01  # metres from a face that count as "at" it
ACTION_REPEAT = 2  # cpu-small's, as the bench runs


def faces(directory: str) -> str:
    limits = SafetyLimits()
    low, high = np.asarray(limits.workspace_low), np.asarray(limits.workspace_high)
    positions, actions, clip_shares = [], [], []
    for path in episode_dirs(directory):
        states, acts = states_and_actions(path)
        positions.append(states[:-1, :3])
        actions.append(acts)
        counts = audit_episode(states, acts, ACTION_REPEAT)
        clip_shares.append(counts["clips"] / max(counts["steps"], 1))
    tcp, act = np.concatenate(positions), np.concatenate(actions)
    at_low, at_high = (tcp - low < NEAR).mean(0), (high - tcp < NEAR).mean(0)
    shares = np.asarray(clip_shares)
    return "\n".join([
        f"# {directory}: {len(clip_shares)} episodes, {len(tcp)} steps",
        f"  at the low faces  x/y/z: {np.round(at_low, 2).tolist()}   "
        f"high faces x/y/z: {np.round(at_high, 2).tolist()}",
        f"  mean |a| (dx, dy, dz, grip): {np.round(np.abs(act).mean(0), 2).tolist()}   "
        f"saturated: {np.round((np.abs(act) > 0.95).mean(0), 2).tolist()}",
        f"  clipped share per episode: min {shares.min():.2f} median {np.median(shares):.2f} max {shares.max():.2f}; "
        f"first 10 episodes {np.round(shares[:10], 2).tolist()}",
    ])


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(faces(arg))
