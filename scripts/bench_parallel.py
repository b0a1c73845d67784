#!/usr/bin/env python
"""Parallel segment renders on a local Ray cluster: wall time of 1 vs 2 workers (one torch
thread each) and the temporal error of the frames at segment boundaries against the median of
the rest, with and without overlap.

The local cluster listens on loopback only (videostyle.render.cluster.import_ray sees to it).

    python scripts/bench_parallel.py [--clip ...] [--frames 48] [--size 128]
"""

from __future__ import annotations

import os
import sys
import statistics
import tempfile
from pathlib import Path

from videostyle.config import Config, apply
from videostyle.io.media import Span
from videostyle.metrics import temporal_error
from videostyle.io.media import probe
from videostyle.engines import span
from videostyle.render.parallel import plan_segments, render_parallel
from videostyle.engines import render_spec  # noqa: E402
from videostyle.render.scan import scan
from videostyle.engines import scan_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402



def main() -> None:
    ap = media_parser(__doc__, frames=48, size=128)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--iterations-later", type=int, default=10)
    args = ap.parse_args()
    base = apply(Config(), {"model.name": "random", "style.images": [str(args.style)], "optim.size": args.size,
                            "optim.iterations": args.iterations, "optim.iterations_later": args.iterations_later,
                            "render.max_frames": args.frames, "render.threads": 1, "encode.crf": 12})
    default_overlap = base.render.overlap
    print(f"# {args.clip.name}: {args.frames} frames at {args.size} px, --model random, iterations "
          f"{args.iterations}/{args.iterations_later}, one torch thread per worker, {os.cpu_count()} cores")
    print("| workers | overlap | wall s | speedup | boundary frames | boundary temporal error | median of the rest "
          "| ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    wall1 = None
    with tempfile.TemporaryDirectory() as tmp:
        found = scan(args.clip, scan_spec(base), span(base), probe(args.clip))
        n, cuts = found.frames, list(found.cuts)
        for workers, overlap in ((1, 0), (2, 0), (2, default_overlap)):
            cfg = apply(base, {"render.workers": workers, "render.overlap": overlap})
            out = Path(tmp) / f"w{workers}_o{overlap}.mkv"
            res = render_parallel(args.clip, out, render_spec(cfg))
            wall1 = wall1 or res.seconds
            rep = temporal_error(out, args.clip, span=Span(max_frames=args.frames))
            per = rep.per_frame[1]  # per[t - 1] = error of frame t against frame t - 1
            segs = plan_segments(n, cuts, workers, overlap)
            boundary = sorted({t for s in segs[1:] for t in range(max(1, s.first), s.start + 1)})
            rest = [e for t, e in enumerate(per, start=1) if t not in boundary]
            if boundary:
                b = statistics.mean(per[t - 1] for t in boundary)
                med = statistics.median(rest)
                cells = f"{boundary[0]}..{boundary[-1]} | {b:.5f} | {med:.5f} | {b / med:.2f}x"
            else:
                cells = f"none | | {statistics.median(rest):.5f} |"
            print(f"| {workers} | {overlap} | {res.seconds:.1f} | {wall1 / res.seconds:.2f}x | {cells} |", flush=True)


if __name__ == "__main__":
    main()
