#!/usr/bin/env python
"""Video pipeline cost: decode, stylize and encode time per frame and peak RSS, for a short clip
and one 4x longer, so flat memory and linear time can be checked.

Each length runs in its own process (peak RSS is per process). ``--model random`` is used: the
speed of a pretrained VGG-19 is the same.

    python scripts/bench_video.py [--clip ../shared/media/video/bunny_640x360_24fps_aac.mp4]
        [--frames 24] [--size 128] [--iterations 20] [--iterations-later 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared/media/video/bunny_640x360_24fps_aac.mp4"
DEFAULT_STYLE = Path(__file__).resolve().parents[1].parent / "shared/media/style/starry_night.jpg"


def child(args: argparse.Namespace) -> None:
    from videostyle.config import Config, apply
    from videostyle.render.pipeline import render_video
    from videostyle.engines import render_spec  # noqa: E402

    cfg = apply(Config(), {"model.name": "random", "style.images": [str(args.style)], "optim.size": args.size,
                           "optim.iterations": args.iterations, "optim.iterations_later": args.iterations_later,
                           "render.max_frames": args.n})
    with tempfile.TemporaryDirectory() as tmp:
        res = render_video(args.clip, Path(tmp) / "out.mp4", render_spec(cfg))
    s = res.stages
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": res.frames, "seconds": res.seconds, "decode": s.decode, "flow": s.flow,
                      "stylize": s.stylize, "encode": s.encode, "io": s.io, "rss_mb": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    ap.add_argument("--frames", type=int, default=24, help="frames of the short run (the long run has 4x)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--iterations-later", type=int, default=5)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.n = args.child
        child(args)
        return
    print(f"# {args.clip.name}, {args.size} px, --model random, iterations {args.iterations}/{args.iterations_later}")
    print("| frames | decode ms/frame | flow ms/frame | stylize ms/frame | encode ms/frame | total s | s/frame | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for n in (args.frames, 4 * args.frames):
        cmd = [sys.executable, __file__, "--child", str(n), "--clip", str(args.clip), "--style", str(args.style),
               "--size", str(args.size), "--iterations", str(args.iterations),
               "--iterations-later", str(args.iterations_later)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        rows.append(r)
        f = r["frames"]
        print(f"| {f} | {1e3 * r['decode'] / f:.1f} | {1e3 * r['flow'] / f:.1f} | {1e3 * r['stylize'] / f:.1f} | "
              f"{1e3 * r['encode'] / f:.1f} | {r['seconds']:.1f} | {r['seconds'] / f:.3f} | {r['rss_mb']:.0f} |",
              flush=True)
    a, b = rows
    print(f"\nlong/short: time {b['seconds'] / a['seconds']:.2f}x for {b['frames'] / a['frames']:.0f}x frames; "
          f"peak RSS {b['rss_mb'] / a['rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
