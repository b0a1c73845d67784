#!/usr/bin/env python
"""Disk used by an interrupted render's work folder: frames kept as PNGs until the end (one chunk
as long as the clip) against encoded chunks of 120, 60 and 20 frames (the default is 240: the
bunny clip is only 240 frames long), and what that comes to for an hour of 24 fps video.

Renders the clip with the fast engine (the folder holds the same frames whatever the engine) and
samples the work folder's size after every frame: its peak is what a long render needs free, and
what an interruption leaves behind.

    python scripts/bench_workdir.py [--clip ...] [--size 512] [--frames 0 (all)]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

from videostyle.config import Config, apply  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402
from videostyle.report import FrameDone, Reporter  # noqa: E402


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Sampler(Reporter):
    def __init__(self, work: Path) -> None:
        self.work, self.peak, self.frames = work, 0, 0

    def frame(self, done: FrameDone) -> None:
        self.frames += 1
        self.peak = max(self.peak, folder_bytes(self.work))


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=512)
    args = ap.parse_args()
    print(f"# {args.clip.name}, {args.size} px, fast engine, frames {args.frames or 'all'}")
    print("| chunk frames | frames | peak work folder MB | MB per frame | output MB | wall s |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for chunk in (10**6, 120, 60, 20):
            out = Path(tmp) / f"out{chunk}.mp4"
            cfg = apply(Config(), {"fast.method": "fast", "style.images": [str(args.style)], "optim.size": args.size,
                                   "render.max_frames": args.frames, "render.chunk_frames": chunk})
            sampler = Sampler(out.with_name(f".{out.name}.videostyle-work"))
            t = time.perf_counter()
            res = render_video(args.clip, out, render_spec(cfg), sampler)
            wall = time.perf_counter() - t
            label = "whole clip (all PNGs)" if chunk == 10**6 else str(chunk)
            print(f"| {label} | {res.frames} | {sampler.peak / 2**20:.1f} | {sampler.peak / 2**20 / res.frames:.3f} | "
                  f"{out.stat().st_size / 2**20:.1f} | {wall:.1f} |", flush=True)
            rows.append((chunk, res.frames, sampler.peak, out.stat().st_size))
    png = rows[0][2] / rows[0][1]  # bytes per frame kept as PNG
    enc = rows[0][3] / rows[0][1]  # bytes per encoded frame
    hour = 24 * 3600
    print(f"\none hour at 24 fps and {args.size} px: all PNGs {png * hour / 2**30:.1f} GB; 240-frame chunks "
          f"{(enc * hour + png * 240) / 2**30:.2f} GB (the encoded hour plus one chunk of PNGs)")


if __name__ == "__main__":
    main()
