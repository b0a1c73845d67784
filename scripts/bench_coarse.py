#!/usr/bin/env python
"""Later video frames: the flat schedule (all iterations at full size) against coarse-to-fine
(--coarse-later K: K iterations at half size, then the full-size ones).

Each row renders the same frames (first frame identical); columns: seconds per later frame
(median), the frames' mean content + style loss as `videostyle eval` scores them (the first frame is the same in every row), and
the temporal error (gap 1). A coarse row wins when it reaches a flat row's loss in less time.

    python scripts/bench_coarse.py [--clip ...] [--frames 8] [--size 512] [--iterations 40]
        [--rows flat:5,flat:10,flat:20,coarse:10+5,coarse:10+10] [--model auto]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from videostyle.engines import new_stylizer, configure
from videostyle.config import Config, apply
from videostyle.engines import flow_params
from videostyle.io.media import Span
from videostyle.metrics import frame_losses, temporal_error
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402


def parse_row(text: str) -> tuple[str, int, int]:
    kind, _, iters = text.partition(":")
    if kind == "flat":
        return text, 0, int(iters)
    coarse, _, full = iters.partition("+")
    return text, int(coarse), int(full)


def main() -> None:
    ap = media_parser(__doc__, frames=8, size=512)
    ap.add_argument("--iterations", type=int, default=40, help="first frame")
    ap.add_argument("--rows", default="flat:5,flat:10,flat:20,coarse:10+5,coarse:10+10")
    ap.add_argument("--model", default="auto")
    args = ap.parse_args()
    model = resolve_model(args.model)
    base = {"model.name": model, "style.images": [str(args.style)], "optim.size": args.size,
            "optim.iterations": args.iterations, "render.max_frames": args.frames, "encode.crf": 12,
            "optim.stop_loss_ratio": 0.0}
    print(f"# {args.clip.name}: {args.frames} frames at {args.size} px, model {model}, first frame "
          f"{args.iterations} iterations, warped warm starts, no early stop")
    print("| later frames | iterations (half + full) | s/frame (median) | content + style loss (mean per frame) | temporal error |")
    print("| --- | --- | --- | --- | --- |")
    span = Span(max_frames=args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        stylizer = None
        for name, coarse, full in map(parse_row, args.rows.split(",")):
            cfg = apply(Config(), {**base, "optim.iterations_later": full, "optim.coarse_later": coarse})
            if stylizer is None:
                stylizer = new_stylizer(cfg)
            configure(stylizer, cfg)
            out = Path(tmp) / f"{name.replace(':', '_').replace('+', '_')}.mkv"
            res = render_video(args.clip, out, render_spec(cfg), stylizer=stylizer)
            losses = frame_losses(out, args.clip, stylizer, span)
            loss = losses["content"] + losses["style"]
            te = temporal_error(out, args.clip, gaps=(1,), params=flow_params(cfg), span=span).error[1]
            spf = statistics.median(res.frame_seconds[1:])
            print(f"| {name} | {coarse} + {full} | {spf:.2f} | {loss:.4f} | {te:.5f} |", flush=True)


if __name__ == "__main__":
    main()
