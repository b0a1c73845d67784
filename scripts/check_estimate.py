#!/usr/bin/env python
"""The render's estimate against the time it really took: a Gatys render of a clip, in process,
with the estimator recording the estimated total when it first speaks (before frame 0 ends), at
10%, 25% and 50% of the frames, and the real total at the end. Prints one table.

    python scripts/check_estimate.py --size 256                  # the shared bunny clip, every frame
    python scripts/check_estimate.py --size 512 --frames 48
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

from videostyle import config as C  # noqa: E402
from videostyle.estimate import Estimating  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.report import Reporter  # noqa: E402


class Recorder(Reporter):
    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None  # (elapsed, estimated total) when it first spoke
        self.at: dict[str, tuple[float, float]] = {}
        self.t0 = time.perf_counter()
        self.total: int | None = None
        self.line = ""

    def begin(self, total: int | None, what: str) -> None:
        self.t0, self.total = time.perf_counter(), total

    def estimate(self, e) -> None:  # type: ignore[override]
        self.first = (time.perf_counter() - self.t0, e.total_seconds)
        self.line = e.line()

    def progress(self, p) -> None:  # type: ignore[override]
        if not self.total or p.seconds_left is None:
            return
        for mark in (0.10, 0.25, 0.50):
            key = f"{mark:.0%} of the frames"
            if key not in self.at and p.done >= mark * self.total and p.done == int(p.done):
                self.at[key] = (p.elapsed, p.elapsed + p.seconds_left)


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=256)
    args = ap.parse_args()
    over = {"style.images": [str(args.style)], "optim.size": args.size, "render.max_frames": args.frames}
    cfg = C.apply(C.Config(), over, "check_estimate")
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        res = render_video(args.clip, Path(tmp) / "out.mp4", cfg, Estimating(rec))
    real = res.seconds
    print(f"# {args.clip.name} at {args.size} px, {res.frames} frames, defaults (300 + 20 iterations, settle 1 s)")
    print(f"# {rec.line}")
    print("| when | elapsed (min) | estimated total (min) | real total (min) | estimate / real |")
    print("| --- | --- | --- | --- | --- |")
    rows = ([("first estimate (frame 0)", rec.first)] if rec.first else []) + list(rec.at.items())
    for when, (elapsed, est) in rows:
        print(f"| {when} | {elapsed / 60:.1f} | {est / 60:.1f} | {real / 60:.1f} | {est / real:.2f} |")


if __name__ == "__main__":
    main()
