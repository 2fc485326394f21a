"""A learned success detector for training on the robot (`reward_source: classifier`), as HIL-SERL does:
a small CNN on the agent's camera frame, trained on recorded episodes whose per-step success flags come
from the scripted expert (sim demos) or the operator's mark (robot recordings), with its threshold chosen
on held-out episodes for a target false-positive rate. A false positive rewards the agent for a task
not done, so the threshold is set on negatives it never trained on, and the report says what it costs
in missed successes (the true-positive rate at that threshold).

Labels: an episode's observation t+1 is the result of its action t, so frame rgb[t+1] is labelled
success[t]; the first frame (before any action) is a negative unless the task was done at reset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modem_ros.agent.augment import random_shift
from modem_ros.data.episode import Episode

FORMAT = "modem_ros.success_classifier/1"


class ClassifierError(ValueError):
    """A classifier file, frame or training set that cannot be used; the message says which and why."""


class SuccessNet(nn.Module):
    """Frame [B, 3, S, S] uint8 -> success logit [B]. Small on purpose: it runs beside the planner.
    `pool`: the conv features' average pool to pool x pool before the linear head (None: no pool, the
    head sees every position of an img_size frame; benchmarks/classifier/diagnose.py compares both)."""

    def __init__(self, channels: int = 32, pool: int | None = 4, img_size: int = 84):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2), nn.ReLU(),
            *([nn.AdaptiveAvgPool2d(pool)] if pool else []), nn.Flatten())
        features = channels * pool * pool if pool else self.conv(torch.zeros(1, 3, img_size, img_size)).shape[1]
        self.head = nn.Linear(features, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(frames.float() / 255.0)).squeeze(-1)


def fit(net: SuccessNet, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int, lr: float,
        rng: np.random.Generator) -> SuccessNet:
    """Adam on balanced batches (positives are rare: half of each batch), augmented with the agent's
    random shift (pad ~4 px at 84 px)."""
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    pad = max(1, x.shape[-1] // 21)
    for _ in range(steps):
        idx = np.concatenate([rng.choice(pos, batch_size // 2), rng.choice(neg, batch_size - batch_size // 2)])
        frames = random_shift(torch.from_numpy(x[idx]), pad)
        loss = F.binary_cross_entropy_with_logits(net(frames), torch.from_numpy(y[idx]).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@dataclass
class ClassifierReport:
    threshold: float          # success when the predicted probability exceeds this
    target_fpr: float         # the false-positive rate the threshold was chosen for (held-out negatives)
    heldout_fpr: float        # measured on the held-out episodes' negatives
    heldout_tpr: float        # measured on the held-out episodes' positives (missed successes = 1 - this)
    train_episodes: int
    heldout_episodes: int
    train_frames: dict[str, int]    # {"positive": n, "negative": n}
    heldout_frames: dict[str, int]


def labelled_frames(episode: Episode) -> tuple[np.ndarray, np.ndarray]:
    """The episode's camera frames (the newest of each frame stack) [T+1, 3, S, S] and their labels."""
    frames = np.stack([np.asarray(rgb)[-3:] for rgb in episode.rgb])
    labels = np.zeros(len(frames), bool)
    labels[1:] = np.asarray(episode.success, bool)[:len(frames) - 1]
    return frames, labels


def split_episodes(count: int, heldout_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Whole episodes held out (frames of one episode are near-duplicates: a frame split would leak)."""
    if count < 2:
        raise ClassifierError(f"{count} episode(s): at least 2 are needed (one to train on, one held out)")
    order = np.random.default_rng(seed).permutation(count)
    n_heldout = min(count - 1, max(1, round(heldout_fraction * count)))
    return sorted(order[n_heldout:].tolist()), sorted(order[:n_heldout].tolist())


def _stack(episodes: list[Episode], indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [labelled_frames(episodes[i]) for i in indices]
    return np.concatenate([f for f, _ in pairs]), np.concatenate([y for _, y in pairs])


def _counts(labels: np.ndarray) -> dict[str, int]:
    return {"positive": int(labels.sum()), "negative": int((~labels).sum())}


def train_classifier(episodes: list[Episode], steps: int = 500, batch_size: int = 64, lr: float = 1e-3,
                     target_fpr: float = 0.01, heldout_fraction: float = 0.25, seed: int = 0,
                     ) -> tuple[SuccessNet, ClassifierReport]:
    """Train on balanced batches (positives are rare), augmented with the agent's random shift; choose
    the threshold on the held-out episodes' negatives for `target_fpr`; report both rates there."""
    if not 0.0 < target_fpr < 1.0:
        raise ClassifierError(f"target_fpr is {target_fpr}: expected a rate in (0, 1)")
    train_idx, heldout_idx = split_episodes(len(episodes), heldout_fraction, seed)
    x, y = _stack(episodes, train_idx)
    xh, yh = _stack(episodes, heldout_idx)
    for name, labels in (("training", y), ("held-out", yh)):
        if labels.all() or not labels.any():
            raise ClassifierError(f"the {name} episodes have {_counts(labels)} frames: both successes and "
                                  f"failures are needed (record failed or unfinished episodes too)")
    torch.manual_seed(seed)  # before the network: its initialisation draws from it
    rng = np.random.default_rng(seed)
    net = fit(SuccessNet(), x, y, steps, batch_size, lr, rng)
    scores = predict(net, xh)
    negatives = np.sort(scores[~yh])
    # the smallest threshold that lets at most target_fpr of the held-out negatives through
    allowed = int(np.floor(target_fpr * len(negatives)))
    threshold = float(negatives[len(negatives) - allowed - 1]) if allowed < len(negatives) else 0.0
    report = ClassifierReport(
        threshold=threshold, target_fpr=target_fpr,
        heldout_fpr=float(np.mean(scores[~yh] > threshold)), heldout_tpr=float(np.mean(scores[yh] > threshold)),
        train_episodes=len(train_idx), heldout_episodes=len(heldout_idx),
        train_frames=_counts(y), heldout_frames=_counts(yh))
    return net, report


@torch.no_grad()
def predict(net: SuccessNet, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    net.eval()
    out = [torch.sigmoid(net(torch.from_numpy(frames[i:i + batch]))).numpy() for i in range(0, len(frames), batch)]
    net.train()
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def save_classifier(net: SuccessNet, report: ClassifierReport, img_size: int, task: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": FORMAT, "state_dict": net.state_dict(), "img_size": img_size, "task": task,
                "report": asdict(report)}, tmp)
    tmp.replace(path)
    return path


@dataclass
class CheckReport:
    """A saved classifier judged on labelled episodes it never saw (`modem-ros classifier --check`). Its own
    report's held-out rates come from the episodes its threshold was chosen on; these do not."""
    threshold: float
    fpr: float                      # frames: failures judged successes
    tpr: float                      # frames: successes judged successes
    frames: dict[str, int]          # {"positive": n, "negative": n}
    episodes: int
    failed_episodes: int            # episodes whose task was never done
    false_success_episodes: int     # of those, how many it judged done at least once (a reward for nothing)
    success_episodes: int
    missed_success_episodes: int    # successful episodes it never judged done
    early_episodes: int             # successful episodes it judged done before the task was
    mean_detection_delay: float | None  # steps from the first true success to its first detection (detected only)


def check_classifier(detector: SuccessDetector, episodes: list[Episode]) -> CheckReport:
    """Frame and episode rates of `detector` at its threshold on `episodes` (labels as labelled_frames)."""
    if not episodes:
        raise ClassifierError("no episodes to check the classifier on")
    fired, labels = [], []
    for episode in episodes:
        frames, y = labelled_frames(episode)
        if frames.shape[-1] != detector.img_size:
            raise ClassifierError(f"episode frames are {frames.shape[-1]} px, the classifier's {detector.img_size} px")
        fired.append(predict(detector.net, frames) > detector.threshold)
        labels.append(y)
    f, y = np.concatenate(fired), np.concatenate(labels)
    failed = [(p, t) for p, t in zip(fired, labels, strict=True) if not t.any()]
    done = [(p, t) for p, t in zip(fired, labels, strict=True) if t.any()]
    delays = [int(np.argmax(p)) - int(np.argmax(t)) for p, t in done if p.any()]
    return CheckReport(
        threshold=detector.threshold,
        fpr=float(f[~y].mean()) if (~y).any() else 0.0, tpr=float(f[y].mean()) if y.any() else 0.0,
        frames=_counts(y), episodes=len(episodes), failed_episodes=len(failed),
        false_success_episodes=sum(bool(p.any()) for p, _ in failed), success_episodes=len(done),
        missed_success_episodes=sum(not p.any() for p, _ in done), early_episodes=sum(d < 0 for d in delays),
        mean_detection_delay=float(np.mean(delays)) if delays else None)


class SuccessDetector:
    """A saved classifier, ready to judge frames: `detector(frame_hwc_uint8) -> (success, probability)`."""

    def __init__(self, path: str | Path, img_size: int | None = None, task: str | None = None):
        try:
            blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is one clear error
            raise ClassifierError(f"{path}: not a readable success classifier ({type(err).__name__}: {err})") from err
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        if found != FORMAT:
            raise ClassifierError(f"{path}: not a success classifier (format {found!r}, expected {FORMAT!r})")
        if img_size is not None and blob["img_size"] != img_size:
            raise ClassifierError(f"{path}: trained on {blob['img_size']} px frames, the agent's are {img_size} px")
        if task is not None and blob["task"] != task:
            raise ClassifierError(f"{path}: trained for task {blob['task']}, this graph runs {task}")
        self.net = SuccessNet()
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval()
        self.img_size, self.task = blob["img_size"], blob["task"]
        self.report = ClassifierReport(**blob["report"])
        self.threshold = self.report.threshold

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> tuple[bool, float]:
        frame = np.asarray(frame)
        if frame.shape != (self.img_size, self.img_size, 3) or frame.dtype != np.uint8:
            raise ClassifierError(f"frame {frame.shape} {frame.dtype}: expected ({self.img_size}, {self.img_size}, 3) "
                                  f"uint8")
        chw = torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))[None]
        probability = float(torch.sigmoid(self.net(chw))[0])
        return probability > self.threshold, probability
