#!/usr/bin/env python
"""Temporal coherence vs cost: independent per-frame stylization against warm starts.

Rows: independent (every frame from its content, full iterations), `prev`, `prev-warped`, and
`prev-warped` + temporal loss (later frames at 1/5 of the first frame's iterations by default).
Columns: seconds per frame (median of the later frames), temporal error (gap 1) and long-term
error (gap 4) from `videostyle eval`'s measure, and the mean style / content loss per frame
relative to the independent run.

    python scripts/bench_temporal.py [--clip ...] [--frames 48] [--size 256] [--model random]
        [--temporal-weights 10,30,100] [--long-term 1,2,4] [--compare-stop] [--strip docs/temporal_strip.jpg]

With --strip, six consecutive frames (source above, the last temporal-loss row below) are written
as one image, to be checked by eye for ghosting and smearing.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from videostyle.engines import new_stylizer, configure
from videostyle.config import Config, apply
from videostyle.io.media import Span
from videostyle.metrics import frame_losses, temporal_error
from videostyle.engines import flow_params
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402



def main() -> None:
    ap = media_parser(__doc__, frames=48, size=256)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--later-fraction", type=float, default=0.2)
    ap.add_argument("--temporal-weights", default=str(Config().temporal.weight or 30),
                    help="temporal loss weights, one row each (default: the config's)")
    ap.add_argument("--long-term", default="1,2,4",
                    help="frame gaps of a last row with long-term terms at the last temporal weight ('' = no row)")
    ap.add_argument("--compare-stop", action="store_true",
                    help="add the last row again without the early stop at the first frame's loss "
                         "(how temporal terms rendered before the stop left them out of its comparison)")
    ap.add_argument("--strip", type=Path, default=None, help="write six consecutive frames here")
    ap.add_argument("--strip-start", type=int, default=24)
    ap.add_argument("--model", default="auto", help="vgg19, random, or auto (vgg19 when its weights are here)")
    ap.add_argument("--flow", default="farneback")
    args = ap.parse_args()
    model = resolve_model(args.model)
    later = max(1, round(args.iterations * args.later_fraction))
    base = {"model.name": model, "style.images": [str(args.style)], "optim.size": args.size,
            "optim.iterations": args.iterations, "optim.iterations_later": later,
            "render.max_frames": args.frames, "flow.method": args.flow, "encode.crf": 12}
    rows = [
        ("independent", {"temporal.init_later": "content", "optim.iterations_later": args.iterations,
                         "temporal.scene_cut": 0.0, "optim.stop_loss_ratio": 0.0}),
        ("prev", {"temporal.init_later": "prev"}),
        ("prev-warped", {"temporal.init_later": "prev-warped"}),
    ] + [(f"prev-warped + temporal loss {float(w):g}", {"temporal.init_later": "prev-warped", "temporal.weight": float(w)})
         for w in args.temporal_weights.split(",")]
    if args.long_term:
        w = float(args.temporal_weights.split(",")[-1])
        gaps = [int(g) for g in args.long_term.split(",")]
        rows.append((f"prev-warped + temporal loss {w:g}, frames {args.long_term}",
                     {"temporal.init_later": "prev-warped", "temporal.weight": w, "temporal.frames": gaps}))
    if args.compare_stop:
        name, over = rows[-1]
        rows.append((f"{name}, no early stop", {**over, "optim.stop_loss_ratio": 0.0}))
    print(f"# {args.clip.name}: {args.frames} frames at {args.size} px, model {model}, first frame {args.iterations} "
          f"iterations, later {later} (independent: {args.iterations}), flow {args.flow}")
    print("| variant | later iters | total iters | s/frame (median) | temporal error | vs independent | long-term (gap 4) "
          "| style loss rel. | content loss rel. |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ref: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stylizer = None
        for name, over in rows:
            cfg = apply(Config(), {**base, **over})
            if stylizer is None:
                stylizer = new_stylizer(cfg)
            configure(stylizer, cfg)
            out = Path(tmp) / f"{name.replace(' ', '_')}.mkv"
            res = render_video(args.clip, out, render_spec(cfg), stylizer=stylizer)
            rep = temporal_error(out, args.clip, gaps=(1, 4), params=flow_params(cfg), span=Span(max_frames=args.frames))
            losses = frame_losses(out, args.clip, stylizer, Span(max_frames=args.frames))
            spf = statistics.median(res.frame_seconds[1:]) if len(res.frame_seconds) > 1 else res.frame_seconds[0]
            if not ref:
                ref = {"te": rep.error[1], "style": losses["style"], "content": losses["content"]}
            iters = statistics.median(res.iterations[1:]) if len(res.iterations) > 1 else res.iterations[0]
            print(f"| {name} | {iters:g} | {sum(res.iterations)} | {spf:.2f} | {rep.error[1]:.5f} | {rep.error[1] / ref['te']:.2f}x | "
                  f"{rep.error[4]:.5f} | {losses['style'] / ref['style']:.2f} | {losses['content'] / ref['content']:.2f} |",
                  flush=True)
        if args.strip:
            write_strip(args.clip, out, args.strip, args.strip_start, args.size)
            print(f"\nstrip: {args.strip} (frames {args.strip_start}-{args.strip_start + 5} of the last row)")


def frames_at(path: Path, start: int, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    got = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= start:
                got.append(cv2.resize(f.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA))
            if len(got) == n:
                break
    return got


def write_strip(clip: Path, out: Path, dest: Path, start: int, size: int) -> None:
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        wh = (s.width, s.height)
    src, sty = frames_at(clip, start, 6, wh), frames_at(out, start, 6, wh)
    sheet = np.concatenate([np.concatenate(src, 1), np.concatenate(sty, 1)], 0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
