"""docs/figures/tile_seam.png: a crop around a corner where four tiles meet (the unshifted grid's),
the same crop with the edges marked, and the untiled render's crop, from the tiles benchmark's
largest size that ran both ways.

    python -m benchmarks figure tile-seam [--clip ...] [--style ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.figures import CLIP, OUT, STYLE


def seam_crop(image: np.ndarray, core: int, control: np.ndarray | None = None, side: int = 192) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    side = min(side, h, w)
    y0, x0 = min(max(0, core - side // 2), h - side), min(max(0, core - side // 2), w - side)
    crop = image[y0:y0 + side, x0:x0 + side].copy()
    marked = crop.copy()
    marked[:, min(core - x0, side - 1)] = (255, 0, 0)
    marked[min(core - y0, side - 1), :] = (255, 0, 0)
    gap = np.full((side, 8, 3), 255, np.uint8)
    parts = [crop, gap, marked] + ([gap, control[y0:y0 + side, x0:x0 + side]] if control is not None else [])
    sheet = np.concatenate(parts, 1)
    return cv2.resize(sheet, (sheet.shape[1] * 2, side * 2), interpolation=cv2.INTER_NEAREST)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.harness import Context
    from benchmarks.scenarios.tiles import plan, runs
    from videostyle.io.images import write_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--style", type=Path, default=STYLE)
    ap.add_argument("--out", type=Path, default=OUT / "tile_seam.png")
    args = ap.parse_args(argv)
    ctx = Context(clip=args.clip, style=args.style)
    _, images = runs(ctx)
    both = [s for s, got in images.items() if "tiled" in got and "untiled" in got]
    if not both:
        raise SystemExit("tile-seam: no size ran both tiled and untiled")
    size = max(both)
    p = plan(ctx)
    write_image(args.out, seam_crop(images[size]["tiled"], p["tile"] - 2 * p["margin"], images[size]["untiled"]))
    print(f"wrote {args.out} ({size} px: tiled | edges marked | untiled)")
