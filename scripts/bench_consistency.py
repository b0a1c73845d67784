#!/usr/bin/env python
"""What --consistency does: temporal error and seconds per frame at each setting, for the
optimising engine (real network when its weights are here) and the fast engine.

    python scripts/bench_consistency.py [--clip ...] [--style ...] [--frames 24] [--size 192]
        [--settings 0,0.25,0.5,0.75,1] [--iterations 60] [--iterations-later 12] [--engines gatys,fast]

The temporal error is `videostyle eval`'s: the mean squared difference between each stylized frame
and the previous one warped by the source's flow, on reliable pixels (gap 1).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402

from videostyle.config import Config, apply  # noqa: E402
from videostyle.io.media import Span  # noqa: E402
from videostyle.metrics import temporal_error  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402
from videostyle.engines import dial  # noqa: E402


def main() -> None:
    ap = media_parser(__doc__, frames=24, size=192)
    ap.add_argument("--settings", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--iterations-later", type=int, default=12)
    ap.add_argument("--engines", default="gatys,fast")
    ap.add_argument("--model", default="auto")
    args = ap.parse_args()
    model = resolve_model(args.model)
    print(f"# {args.clip.name}, {args.frames} frames at {args.size} px, {args.style.name}, model {model}, "
          f"iterations {args.iterations}/{args.iterations_later}")
    print("| engine | consistency | warm start | temporal weight | fast blend | later iterations (median) "
          "| s/later frame | temporal error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            for c in [float(x) for x in args.settings.split(",")]:
                cfg = apply(Config(), {"model.name": model, "style.images": [str(args.style)], "optim.size": args.size,
                                       "optim.iterations": args.iterations,
                                       "optim.iterations_later": args.iterations_later,
                                       "render.max_frames": args.frames, "temporal.consistency": c,
                                       "fast.method": engine, "encode.crf": 12})
                out = Path(tmp) / f"{engine}_{c}.mp4"
                res = render_video(args.clip, out, render_spec(cfg))
                err = temporal_error(out, args.clip, span=Span(max_frames=args.frames)).error[1]
                warm, tw, fb = dial(cfg)
                later = res.frame_seconds[1:] or res.frame_seconds
                its = res.iterations[1:] or res.iterations
                print(f"| {engine} | {c:g} | {warm:g} | {tw:g} | {fb:g} | "
                      f"{statistics.median(its) if engine != 'fast' else '-'} | {statistics.median(later):.2f} | "
                      f"{err:.5f} |", flush=True)


if __name__ == "__main__":
    main()
