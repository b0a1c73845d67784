#!/usr/bin/env python
"""Time before a parallel render submits its first segment, on a 720p clip.

Before anything is submitted, the planner decodes the span and looks for scene cuts with
optical flow. Rows: the scan at the stylized size (every segment's own detection; what the
planner did first) and at the planner's small size (scan.SCAN_SIDE). Each row builds the
render's plan from scratch (probe, styles, scan, work folder); medians of --repeats runs.

    python scripts/bench_parallel_plan.py [--clip ...] [--seconds 10] [--size 512] [--repeats 3]

The clip is upscaled to 1280x720 first (H.264), so the decoding is that of a 720p file.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2

from videostyle.render import parallel
from videostyle.render import scan as span_scan
from videostyle.config import Config, apply
from videostyle.engines import render_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402


def make_720p(src: Path, dest: Path, seconds: float) -> int:
    n = 0
    with av.open(str(src)) as c, av.open(str(dest), "w") as out:
        s = c.streams.video[0]
        fps = s.average_rate or Fraction(24)
        v = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "20"})
        v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
        for f in c.decode(s):
            if f.time is not None and f.time >= seconds:
                break
            img = cv2.resize(f.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_CUBIC)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts, fr.time_base = n, 1 / fps
            for p in v.encode(fr):
                out.mux(p)
            n += 1
        for p in v.encode(None):
            out.mux(p)
    return n


def _recording(scan):  # noqa: ANN001, ANN202
    def wrapped(*a, **k):  # noqa: ANN002, ANN003, ANN202
        found = scan(*a, **k)
        wrapped.last_cuts = list(found.cuts)
        return found
    return wrapped


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=512)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    parallel.scan = _recording(parallel.scan)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip720.mp4"
        n = make_720p(args.clip, clip, args.seconds)
        cfg = apply(Config(), {"style.images": [str(args.style)], "optim.size": args.size, "render.workers": 2})
        print(f"# {args.clip.name} upscaled to 1280x720, {n} frames; stylized size {args.size}; "
              f"median of {args.repeats}")
        print("| scan at | seconds to first submit | frames/s | cuts found | vs stylized size |")
        print("| --- | --- | --- | --- | --- |")
        base = None
        for label, side in ((f"stylized size ({args.size} px)", 0), (f"{span_scan.SCAN_SIDE} px", span_scan.SCAN_SIDE)):
            times: list[float] = []
            found: list[list[int]] = []
            span_scan.SCAN_SIDE = side
            for k in range(args.repeats):
                t0 = time.perf_counter()
                pr = parallel.ParallelRender(clip, Path(tmp) / f"out{k}.mp4", render_spec(cfg), restart=True)
                times.append(time.perf_counter() - t0)
                found.append(parallel.scan.last_cuts)
                pr.work.remove()
            cuts = found[-1]
            t = statistics.median(times)
            base = base or t
            print(f"| {label} | {t:.2f} | {n / t:.0f} | {cuts} | {t / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
