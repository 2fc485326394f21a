"""Diagnostic (issue 18): how separable push success is for the classifier's CNN, past one threshold.

    diagnose.py DATA_DIR VARIANT STEPS     VARIANT: base (SuccessNet's head: 4x4 average pool) | flat (no pool)

Trains the variant on push_classifier.sh's training episodes in DATA_DIR (success_classifier.fit, as
train_classifier does) and prints, on its check episodes, the ROC AUC and the rates at a few thresholds:
frames of successes detected (tpr), failure frames passed (fpr), and frames of failed episodes passed.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from modem_ros.data.demos import episode_dirs, read_episode
from modem_ros.success_classifier import SuccessNet, fit, labelled_frames, predict

TRAIN = ["train-noise0.3", "train-noise1.0"]
CHECK = ["test-noise0.3", "test-noise1.0", "test-noise1.0-b"]


def frames_of(data: str, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, labels and 'frame of a failed episode' flags of every episode in the named datasets."""
    pairs = [labelled_frames(read_episode(p, 3).episode) for n in names for p in episode_dirs(f"{data}/{n}")]
    failed = [np.full(len(y), not y.any()) for _, y in pairs]
    return (np.concatenate([f for f, _ in pairs]), np.concatenate([y for _, y in pairs]), np.concatenate(failed))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = scores[labels], scores[~labels]
    above = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return float(above)


def main(data: str, variant: str, steps: int) -> None:
    x, y, _ = frames_of(data, TRAIN)
    xt, yt, failed = frames_of(data, CHECK)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    start = time.time()
    net = fit(SuccessNet(pool={"base": 4, "flat": None}[variant]), x, y, steps, 64, 1e-3, rng)
    s = predict(net, xt)
    rates = " ".join(f"q{q}: tpr {(s[yt] > q).mean():.3f} fpr {(s[~yt] > q).mean():.3f} "
                     f"failed-episode frames {(s[failed] > q).mean():.3f};" for q in (0.5, 0.9, 0.97))
    print(f"{variant} {steps} steps ({time.time() - start:.0f} s): auc {auc(s, yt):.3f} {rates}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
