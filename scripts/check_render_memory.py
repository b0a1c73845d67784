#!/usr/bin/env python
"""Memory across renders in one process (a batch, the studio): the resident memory after each
of N small Gatys renders of a synthetic clip. A render that leaks shows as a column that grows.
Prints one table.

    python scripts/check_render_memory.py --renders 8
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
from pathlib import Path

import av
import numpy as np

from videostyle.cli import main as cli
from videostyle.io.images import write_image


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def clip(path: Path, frames: int = 4) -> None:
    with av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        yy, xx = np.mgrid[0:48, 0:64]
        for i in range(frames):
            img = np.dstack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256]).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip(d / "c.mp4")
        stripes = np.zeros((48, 48, 3), np.uint8)
        stripes[:, ::6] = (230, 40, 30)
        write_image(d / "s.png", stripes)
        print("| render | resident MB after it |")
        print("| --- | --- |")
        for i in range(args.renders):
            cli(["render", str(d / "c.mp4"), "--style", str(d / "s.png"), "-o", str(d / "o.mp4"), "-y", "--model",
                 "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--device", "cpu",
                 "--precision", "fp32", "--settle", "0", "-q"])
            gc.collect()
            print(f"| {i + 1} | {resident_mb():.0f} |", flush=True)


if __name__ == "__main__":
    main()
