"""Frames between numpy and torch: (H, W, 3) arrays to (1, 3, H, W) tensors and back, resized
with antialiasing, and temporal terms brought to another size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videostyle.engine import TemporalTerm


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 3) uint8 or float [0, 1] -> (1, 3, H, W) float32."""
    arr = np.asarray(image)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()
    return t.permute(2, 0, 1).unsqueeze(0).to(device)


def to_numpy(t: Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) float32 on the CPU, clamped to [0, 1]."""
    return t.detach().float().clamp(0, 1)[0].permute(1, 2, 0).contiguous().cpu().numpy()


def resize(t: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)


def scaled_terms(temporal: Sequence[TemporalTerm], hw: tuple[int, int]) -> list[TemporalTerm]:
    """Temporal terms at size ``hw`` (targets and masks resized as frames are, antialiased; terms
    already at that size as they are)."""
    out = []
    for t in temporal:
        if t.target.shape[:2] == hw:
            out.append(t)
            continue
        tgt = resize(to_tensor(t.target), hw)
        mask = resize(torch.from_numpy(np.ascontiguousarray(t.mask, np.float32))[None, None], hw)
        out.append(TemporalTerm(to_numpy(tgt), mask[0, 0].numpy(), t.weight))
    return out
