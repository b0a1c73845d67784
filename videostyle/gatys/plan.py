"""The plan of one optimisation, as pure functions of sizes and numbers (no torch): the levels
of a coarse-to-fine run and their iterations, and the tile a frame is optimised in when it does
not fit the memory budget whole."""

from __future__ import annotations

import math

from videostyle.io.images import MIN_SIDE

ALIGN = 16  # tiles are multiples of the network's total stride


def levels(hw: tuple[int, int], *, pyramid: bool, pyramid_levels: int, scale: float, stroke_side: int) -> int:
    """How many coarse-to-fine levels a fresh image of ``hw`` runs: ``pyramid_levels``, or more
    for an image larger than ``stroke_side``, whose strokes form at that side and are refined at
    each larger level; 1 without ``pyramid`` (warm-started frames are already close)."""
    if not pyramid:
        return 1
    n = pyramid_levels
    side = max(hw)
    if stroke_side and side > stroke_side:
        n = max(n, 1 + math.ceil(math.log(side / stroke_side, scale) - 1e-9))
    return n


def sizes_and_steps(hw: tuple[int, int], n_levels: int, scale: float, iterations: int,
                    coarse: int = 0) -> tuple[list[tuple[int, int]], list[int]]:
    """The (H, W) of each level, smallest first and ending at ``hw``, and each level's iterations.
    Levels smaller than MIN_SIDE are left out. ``coarse``: a single-level run (a later frame)
    first takes that many iterations at half size."""
    h, w = hw
    sizes = []
    for k in range(n_levels):
        f = scale ** (n_levels - 1 - k)
        lh, lw = round(h / f), round(w / f)
        if min(lh, lw) >= MIN_SIDE:
            sizes.append((lh, lw))
    if not sizes or sizes[-1] != (h, w):
        sizes.append((h, w))
    steps = [iterations] * len(sizes)
    if coarse and len(sizes) == 1 and min(h, w) // 2 >= MIN_SIDE:
        sizes, steps = [(round(h / 2), round(w / 2)), (h, w)], [coarse, iterations]
    return sizes, steps


def auto_tile(pixels: int, available: float, fixed: float, per_pixel: float, whole_state: float,
              tiled_state: float, margin: int) -> int:
    """The tile (px of the network's input) for a frame of ``pixels``: 0 when its whole pass
    (``fixed`` + ``per_pixel`` bytes a pixel) and the optimiser's state (``whole_state`` bytes)
    fit in ``available``; else the largest multiple of ALIGN whose pass fits beside the tiled
    optimiser's state (``tiled_state``) and the content's maps kept whole (32 bytes a pixel at
    most); -1 when not even the smallest useful tile (2 x ``margin`` + 4 x ALIGN) fits."""
    if fixed + per_pixel * pixels + whole_state <= available:
        return 0
    left = available - tiled_state - 32 * pixels
    side = int(math.sqrt(max(0.0, left - fixed) / per_pixel)) if left > fixed else 0
    tile = side // ALIGN * ALIGN
    return tile if tile >= 2 * margin + 4 * ALIGN else -1
