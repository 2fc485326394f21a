from __future__ import annotations

import pytest
import torch

from modem_ros.agent import schedules
from modem_ros.agent.augment import random_shift
from modem_ros.config import load_config


def test_kappa_schedule_values():
    mw = load_config("mw-assembly")
    assert [schedules.kappa(mw, s) for s in (0, 25_000, 50_000, 90_000)] == pytest.approx([0.5, 0.375, 0.25, 0.25])
    door = load_config("adroit-door")
    assert [schedules.kappa(door, s) for s in (0, 10_000, 50_000)] == pytest.approx([0.75, 0.65, 0.25])


def test_std_and_horizon_schedules():
    cfg = load_config("mw-assembly")
    assert [schedules.std_bound(cfg, s) for s in (0, 6250, 12_500, 20_000)] == pytest.approx([0.1, 0.075, 0.05, 0.05])
    assert [schedules.planning_horizon(cfg, s) for s in (0, 6250, 12_500, 25_000, 99_999)] == [1, 2, 3, 5, 5]


def _find_shift(original, shifted, pad):
    """The (dy, dx) that reproduces `shifted` from `original` by a replicate-padded crop, or None."""
    h, w = original.shape[-2:]
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            rows = (torch.arange(h) + dy).clamp(0, h - 1)
            cols = (torch.arange(w) + dx).clamp(0, w - 1)
            if torch.equal(original[:, rows][:, :, cols], shifted):
                return dy, dx
    return None


def test_random_shift_is_a_translation_within_the_pad():
    pad = 4
    x = torch.randint(0, 256, (64, 6, 20, 20), dtype=torch.uint8)
    y = random_shift(x, pad)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    shifts = [_find_shift(x[i], y[i], pad) for i in range(len(x))]
    assert all(s is not None for s in shifts)  # every sample is a translated copy, shift <= pad
    assert len(set(shifts)) > 10  # and the shifts differ between samples


def test_random_shift_never_exceeds_the_pad():
    x = torch.zeros(200, 3, 16, 16, dtype=torch.uint8)
    x[:, :, 8, 8] = 255  # a single bright pixel: its displacement is the shift
    y = random_shift(x, 2)
    pos = torch.stack([torch.nonzero(img[0] == 255)[0] for img in y])
    assert (pos - 8).abs().max() <= 2 and (pos - 8).abs().max() == 2
