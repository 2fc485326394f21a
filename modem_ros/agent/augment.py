"""Random-shift augmentation (DrQ) as MoDem applies it to every encoder input."""

from __future__ import annotations

import torch


def random_shift(rgb: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image of [B, C, H, W] by an integer offset in [-pad, pad] per axis, edges replicated.

    The reference pads by `pad` pixels (replicate) and bilinearly grid-samples a random crop at integer
    offsets, which is exactly a replicate-padded integer crop. Doing it as two index gathers keeps the
    data uint8 and costs a fraction of a float grid_sample. All channels of one sample (the stacked
    frames) share one shift.
    """
    if rgb.dim() != 4:
        raise ValueError(f"random_shift expects [B, C, H, W], got shape {tuple(rgb.shape)}")
    b, c, h, w = rgb.shape
    shifts = torch.randint(-pad, pad + 1, (2, b, 1), device=rgb.device, generator=generator)
    rows = (torch.arange(h, device=rgb.device) + shifts[0]).clamp_(0, h - 1)      # [B, H]
    cols = (torch.arange(w, device=rgb.device) + shifts[1]).clamp_(0, w - 1)      # [B, W]
    out = rgb.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w))
    return out.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))
