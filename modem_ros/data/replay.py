"""Prioritized episode buffers preallocated on the training device, sampling horizon-length snippets.

Frames are stored once: an episode of T steps with k stacked frames keeps its first observation's k-1
older frames plus the newest frame of each of its T+1 observations, and a stacked observation is a
slice of k consecutive frames. That halves memory at frame_stack 2 (a 224 px run of 100K steps fits
in ~15 GB) and sampling is one gather on the device, with no per-sample Python.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from modem_ros.agent.modem import Batch
from modem_ros.config import ModemConfig
from modem_ros.data.episode import Episode


class BufferFullError(RuntimeError):
    pass


class EpisodeBuffer:
    def __init__(self, cfg: ModemConfig, capacity_steps: int, device: torch.device | str, name: str = "replay"):
        self.cfg, self.name, self.device = cfg, name, torch.device(device)
        k = cfg.frame_stack
        max_episodes = math.ceil(capacity_steps / cfg.episode_length) + 1
        self.obs_capacity = capacity_steps + max_episodes
        frame_capacity = self.obs_capacity + max_episodes * (k - 1)
        size = cfg.img_size
        # empty, not zeros: only written slots are ever read, and zero-filling ~15 GB at 224 px costs time
        self.frames = torch.empty(frame_capacity, 3, size, size, dtype=torch.uint8, device=self.device)
        self.state = torch.zeros(self.obs_capacity, cfg.state_dim, device=self.device)
        self.action = torch.zeros(self.obs_capacity, cfg.action_dim, device=self.device)
        self.reward = torch.zeros(self.obs_capacity, device=self.device)
        self.frame_start = torch.zeros(self.obs_capacity, dtype=torch.long, device=self.device)
        # Priority of a snippet starting at each observation; 0 where fewer than `horizon` steps follow.
        self.priority = torch.zeros(self.obs_capacity, device=self.device)
        self.num_obs = self.num_frames = self.num_steps = self.num_episodes = 0

    def __len__(self) -> int:
        """Number of transitions stored."""
        return self.num_steps

    def add(self, episode: Episode) -> None:
        arr = episode.arrays()
        rgb, horizon, k = arr["rgb"], self.cfg.horizon, self.cfg.frame_stack
        steps = len(episode)
        if steps < horizon:
            raise ValueError(f"{self.name} buffer: episode of {steps} steps is shorter than horizon {horizon}")
        if rgb.shape[1:] != self.cfg.rgb_shape:
            raise ValueError(f"{self.name} buffer: episode rgb has shape {rgb.shape[1:]}, "
                             f"expected {self.cfg.rgb_shape}")
        for name in ("state", "action", "reward"):
            if not np.all(np.isfinite(arr[name])):
                raise ValueError(f"{self.name} buffer: episode has non-finite values in '{name}'")
        # Stacks must be consecutive frames: obs[t] = [f(t-k+1) .. f(t)], 3 channels each.
        if k > 1 and not np.array_equal(rgb[1:, :-3], rgb[:-1, 3:]):
            raise ValueError(f"{self.name} buffer: rgb observations are not stacks of consecutive frames")
        n_obs, n_frames = steps + 1, steps + k
        if self.num_obs + n_obs > self.obs_capacity or self.num_frames + n_frames > self.frames.shape[0]:
            raise BufferFullError(f"{self.name} buffer is full ({self.num_steps} steps in "
                                  f"{self.num_episodes} episodes); raise its capacity")
        frames = np.concatenate([rgb[0].reshape(k, 3, *rgb.shape[2:]), rgb[1:, -3:]])
        o, f = self.num_obs, self.num_frames
        self.frames[f:f + n_frames] = torch.from_numpy(frames).to(self.device)
        self.state[o:o + n_obs] = torch.from_numpy(arr["state"]).to(self.device)
        self.action[o:o + steps] = torch.from_numpy(np.clip(arr["action"], -1, 1)).to(self.device)
        self.reward[o:o + steps] = torch.from_numpy(arr["reward"]).to(self.device)
        self.frame_start[o:o + n_obs] = torch.arange(f, f + n_obs, device=self.device)
        max_priority = self.priority[:o].max() if o else torch.ones((), device=self.device)
        self.priority[o:o + steps - horizon + 1] = max_priority  # new data gets the current max
        self.num_obs, self.num_frames = o + n_obs, f + n_frames
        self.num_steps += steps
        self.num_episodes += 1

    def sample(self, batch_size: int) -> tuple[Batch, torch.Tensor]:
        """Draw `batch_size` snippets by priority^alpha; return the batch and the start indices."""
        if self.num_episodes == 0:
            raise RuntimeError(f"{self.name} buffer is empty")
        prios = self.priority[:self.num_obs]
        probs = prios.pow(self.cfg.per_alpha)
        idx = torch.multinomial(probs, batch_size, replacement=True)
        p = probs[idx] / probs.sum()
        weights = (p * (prios > 0).sum()).pow(-self.cfg.per_beta)
        weights = (weights / weights.max()).unsqueeze(1)
        steps = idx.unsqueeze(0) + torch.arange(self.cfg.horizon + 1, device=self.device).unsqueeze(1)
        frame_idx = self.frame_start[steps].unsqueeze(-1) + torch.arange(self.cfg.frame_stack, device=self.device)
        rgb = self.frames[frame_idx]                                       # [H+1, B, k, 3, S, S]
        rgb = rgb.flatten(2, 3)
        return Batch(rgb=rgb, state=self.state[steps], action=self.action[steps[:-1]],
                     reward=self.reward[steps[:-1]].unsqueeze(-1), weights=weights), idx

    def update_priorities(self, idx: torch.Tensor, priorities: torch.Tensor) -> None:
        self.priority[idx] = priorities.to(self.priority.dtype) + 1e-6


def sample_mixed(demo: EpisodeBuffer, replay: EpisodeBuffer | None, kappa: float,
                 batch_size: int) -> tuple[Batch, dict[str, tuple[EpisodeBuffer, slice, torch.Tensor]]]:
    """A batch with int(kappa * batch_size) demo snippets and the rest from interaction data.

    Returns the batch and, per buffer, the batch rows it supplied with their indices, so priorities can
    be written back to the buffer they came from.
    """
    n_demo = batch_size if replay is None or len(replay) == 0 else int(kappa * batch_size)
    if len(demo) == 0:  # no demonstrations (TD-MPC): interaction data only
        n_demo = 0
    parts, sources = [], {}
    for buffer, n, rows in ((demo, n_demo, slice(0, n_demo)), (replay, batch_size - n_demo,
                                                               slice(n_demo, batch_size))):
        if n > 0:
            part, idx = buffer.sample(n)
            parts.append(part)
            sources[buffer.name] = (buffer, rows, idx)
    if len(parts) == 1:
        return parts[0], sources
    fields = {name: torch.cat([getattr(p, name) for p in parts], dim=0 if name == "weights" else 1)
              for name in ("rgb", "state", "action", "reward", "weights")}
    return Batch(**fields), sources


def write_back_priorities(sources: dict[str, tuple[EpisodeBuffer, slice, torch.Tensor]],
                          priorities: torch.Tensor) -> None:
    for buffer, rows, idx in sources.values():
        buffer.update_priorities(idx, priorities[rows])
