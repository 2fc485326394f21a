"""The augmentation as two gathers (modem_ros) against pad once + per-sample slices + stack, same output."""

import time

import torch

from modem_ros.agent.augment import random_shift


def shift_slices(rgb, pad, generator=None):
    b, c, h, w = rgb.shape
    shifts = torch.randint(-pad, pad + 1, (2, b, 1), device=rgb.device, generator=generator)
    rows = torch.arange(-pad, h + pad, device=rgb.device).clamp_(0, h - 1)
    cols = torch.arange(-pad, w + pad, device=rgb.device).clamp_(0, w - 1)
    padded = rgb.index_select(2, rows).index_select(3, cols)
    tops, lefts = (shifts[0, :, 0] + pad).tolist(), (shifts[1, :, 0] + pad).tolist()
    return torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(zip(tops, lefts, strict=True))])


x = torch.randint(0, 256, (6 * 64, 9, 84, 84), dtype=torch.uint8)
g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
assert torch.equal(random_shift(x, 4, g1), shift_slices(x, 4, g2))
for name, fn in (("gather", random_shift), ("slices", shift_slices)) * 2:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        fn(x, 4)
        times.append(time.perf_counter() - start)
    times.sort()
    print(name, f"median {1000 * times[10]:.1f} ms")
