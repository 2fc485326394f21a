"""`modem-ros bench weights`: from the trainer's checkpoint to the planner acting on it, over DDS.

A real planner node (its own process, weights_from:=dds) waits for weights; this process plays the
trainer: for each version it takes the planner's part of an agent's state dict, packs it into chunks
(torch.save + SHA-256) and publishes them on modem/weights with the trainer's QoS. The planner logs how
long after `sent` (the end of packing) it swapped them in: transfer + reassembly + hash check + load.
checkpoint -> swap = pack + that. Timed per version after one warm-up version.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from modem_ros import topics
from modem_ros.config import ModemConfig

LOADED = re.compile(r"loaded weights v(\d+) \(step \d+\) over DDS, (\d+) ms after the trainer sent them")


def _planner(cfg: ModemConfig, run_id: str, env: dict[str, str]) -> tuple[subprocess.Popen, queue.Queue]:
    overrides = " ".join(f"{k}={v}" for k, v in cfg.to_dict().items() if k not in ("task", "suite", "seed"))
    command = [sys.executable, "-m", "modem_ros.nodes.planner", "--ros-args", "-p", f"task:={cfg.task}",
               "-p", f"config_overrides:={overrides}", "-p", f"run_id:={run_id}", "-p", "device:=cpu",
               "-p", "weights_from:=dds"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def _wait_for(lines: queue.Queue, proc: subprocess.Popen, version: int, timeout: float = 120.0) -> float:
    """The planner's reported ms from `sent` to swapped-in for `version`."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = LOADED.search(line)
        if match and int(match.group(1)) == version:
            return float(match.group(2))
    raise RuntimeError(f"planner did not load weights v{version}:\n" + "".join(seen[-20:]))


def run_weights_bench(cfg: ModemConfig, versions: int) -> dict[str, Any]:
    import rclpy
    from std_msgs.msg import MultiArrayDimension, UInt8MultiArray

    from modem_ros.agent.modem import ModemAgent
    from modem_ros.launcher import ros_environment
    from modem_ros.nodes.common import WEIGHTS
    from modem_ros.weights import pack, planner_state

    domain = os.environ.get("ROS_DOMAIN_ID", str(random.randint(100, 199)))  # away from a user's default 0
    env = ros_environment(dict(os.environ, ROS_DOMAIN_ID=domain))
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                            "FASTDDS_DEFAULT_PROFILES_FILE")})
    agent = ModemAgent(cfg)
    run_id = f"bench-{os.getpid()}"
    proc, lines = _planner(cfg, run_id, env)
    rclpy.init()
    node = rclpy.create_node("bench_weights_trainer")
    pub = node.create_publisher(UInt8MultiArray, topics.WEIGHTS, WEIGHTS)
    timings = []
    try:
        deadline = time.monotonic() + 120
        while not pub.get_subscription_count():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the planner never subscribed to " + topics.WEIGHTS)
            rclpy.spin_once(node, timeout_sec=0.1)
        size = chunks = 0
        for version in range(versions + 1):  # version 0 warms up (first allocation, DDS matching)
            for p in agent.model.parameters():  # new weights each version, as after an update burst
                p.data.add_(1e-3)
            start = time.time()
            packed = pack(planner_state(agent.state_dict()), run_id, version, 100 * version, version)
            pack_ms = 1000 * (packed[0][0]["sent"] - start)
            for header, data in packed:
                msg = UInt8MultiArray(data=data)
                msg.layout.dim = [MultiArrayDimension(label=json.dumps(header), size=len(data), stride=len(data))]
                pub.publish(msg)
            swap_ms = _wait_for(lines, proc, version)
            size, chunks = packed[0][0]["size"], len(packed)
            if version:
                timings.append((pack_ms, swap_ms))
    finally:
        node.destroy_node()
        rclpy.shutdown()
        proc.terminate()
        proc.wait(timeout=30)
    pack_ms, swap_ms = (np.asarray(column) for column in zip(*timings, strict=True))
    total = pack_ms + swap_ms
    from modem_ros.bench import machine_info
    from modem_ros.bench_learn import COMMIT

    return {"bench": "weights", "commit": COMMIT, "machine": machine_info(agent.device), "task": cfg.task,
            "img_size": cfg.img_size, "payload_mb": round(size / 2**20, 2),
            "chunks": chunks, "versions": versions, "pack_median_ms": round(float(np.median(pack_ms)), 1),
            "sent_to_swap_median_ms": round(float(np.median(swap_ms)), 1),
            "checkpoint_to_swap_median_ms": round(float(np.median(total)), 1),
            "checkpoint_to_swap_max_ms": round(float(total.max()), 1)}


def format_weights_line(r: dict[str, Any]) -> str:
    return (f"{r['task']} {r['img_size']} px: {r['payload_mb']} MiB in {r['chunks']} chunks; pack "
            f"{r['pack_median_ms']} ms + sent -> swapped {r['sent_to_swap_median_ms']} ms = checkpoint -> swap "
            f"{r['checkpoint_to_swap_median_ms']} ms median (max {r['checkpoint_to_swap_max_ms']}) over "
            f"{r['versions']} versions")
