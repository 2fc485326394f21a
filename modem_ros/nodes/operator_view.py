"""operator_view: what the operator sees while recording demos in sim — the agent's camera, live, scaled
up, with the task's progress (episode, step of its length, distance to goal, success) and the keys that
act in this session (teleop's latched key line).

Drawn with Tk, the standard library's GUI (no extra package; a PPM image, zoomed). Without a display
($DISPLAY unset, over SSH) or with window:=false it logs each finished episode's progress instead, and
the graph runs on either way; closing the window does the same.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import String

from modem_ros import topics
from modem_ros.nodes.common import FOLLOW, LATCHED, ModemNode, NoFrame, image_array, keep_spinning, run_node, spin_once

GREEN, GREY = "#1b7f2a", "#333333"
PROGRESS_KEYS = {"episode": int, "t": int, "length": int, "return": float, "goal_distance": float, "succeeded": bool}


def parse_progress(text: str) -> dict:
    """The sim bridge's progress JSON, only its known keys of the right types; ValueError naming the rest."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    out = {}
    for key, kind in PROGRESS_KEYS.items():
        if key not in data:
            continue
        value = data[key]
        ok = isinstance(value, bool) if kind is bool else (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (kind is float or value == int(value)))
        if not ok:
            raise ValueError(f"'{key}' must be {kind.__name__}, got {str(value)[:40]!r}")
        out[key] = kind(value)
    return out


def progress_text(task: str, progress: dict) -> str:
    """The progress lines under the image."""
    lines = [f"{task}   episode {progress.get('episode', '-')}   step {progress.get('t', 0)}/"
             f"{progress.get('length', '?')}   return {progress.get('return', 0.0):.2f}"]
    distance = progress.get("goal_distance")
    state = "SUCCESS" if progress.get("succeeded") else "not yet"
    lines.append((f"distance to goal {distance:.3f}   " if distance is not None else "") + f"success: {state}")
    return "\n".join(lines)


class OperatorView(ModemNode):
    NAME = "operator_view"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        self.cfg = self.task_config()
        self.zoom = self.param("zoom", 4, "Image magnification (84 px x 4 = 336 px on screen).")
        want_window = self.param("window", True, "Show the window (false: log each episode's progress instead).")
        self.progress: dict = {}
        self.keys = ""
        self.frame: np.ndarray | None = None
        self.dirty = False
        self.create_subscription(Image, topics.IMAGE, self.on_image, FOLLOW)
        self.create_subscription(String, topics.PROGRESS, self.on_progress, 10)
        self.create_subscription(String, topics.TELEOP_KEYS, self.on_keys, LATCHED)
        self.root = None
        if want_window and not os.environ.get("DISPLAY"):
            self.get_logger().warning("no display ($DISPLAY unset): the operator view logs each episode's "
                                      "progress here instead of showing a window")
        elif want_window:
            self.open_window()

    # ------------------------------------------------------------------ window
    def open_window(self) -> None:
        import tkinter as tk

        self.root = tk.Tk()
        self.root.title(f"modem_ros: {self.cfg.task}")
        self.root.protocol("WM_DELETE_WINDOW", self.close_window)
        size = self.cfg.img_size * self.zoom
        self.canvas = tk.Label(self.root, width=size, height=size, bg="black")
        self.canvas.pack()
        self.status = tk.Label(self.root, font=("TkFixedFont", 12), justify="left", anchor="w")
        self.status.pack(fill="x")
        self.help = tk.Label(self.root, font=("TkFixedFont", 10), justify="left", anchor="w", wraplength=size)
        self.help.pack(fill="x")
        self.photo = None
        self.refresh()

    def close_window(self) -> None:
        self.get_logger().info("view closed; progress goes to the log from now on")
        self.root.destroy()
        self.root = None

    def refresh(self) -> None:
        """Draw what arrived since the last refresh (Tk calls stay on this thread)."""
        if self.root is None:
            return
        import tkinter as tk

        if self.frame is not None and self.dirty:
            h, w = self.frame.shape[:2]
            ppm = f"P6 {w} {h} 255\n".encode() + np.ascontiguousarray(self.frame).tobytes()
            self.photo = tk.PhotoImage(data=ppm, format="PPM").zoom(self.zoom)
            self.canvas.configure(image=self.photo, width=w * self.zoom, height=h * self.zoom)
        self.status.configure(text=progress_text(self.cfg.task, self.progress),
                              fg=GREEN if self.progress.get("succeeded") else GREY)
        self.help.configure(text=self.keys)
        self.dirty = False
        self.root.update()

    # ------------------------------------------------------------------ topics
    def on_image(self, msg: Image) -> None:
        try:
            self.frame = image_array(msg)
        except NoFrame:  # the camera had no fresh frame: keep showing the last one
            return
        except ValueError as err:
            self.get_logger().error(f"{topics.IMAGE}: not shown: {err}", throttle_duration_sec=5.0)
            return
        self.dirty = True

    def on_progress(self, msg: String) -> None:
        try:
            progress = parse_progress(msg.data)
        except ValueError as err:
            self.get_logger().error(f"{topics.PROGRESS}: ignored ({err})", throttle_duration_sec=5.0)
            return
        self.progress = progress
        if self.root is None and progress.get("t") == progress.get("length"):
            self.get_logger().info(progress_text(self.cfg.task, progress).replace("\n", "; "))

    def on_keys(self, msg: String) -> None:
        self.keys = msg.data

    def run(self) -> None:
        while keep_spinning():
            spin_once(self, timeout_sec=0.03)
            if self.root is not None:
                try:
                    self.refresh()
                except Exception as err:  # noqa: BLE001 - the X server went away: go on without the window
                    self.get_logger().error(f"view lost ({err}); progress goes to the log from now on")
                    self.root = None


def main(args=None) -> int:
    return run_node(OperatorView, args)


if __name__ == "__main__":
    raise SystemExit(main())
