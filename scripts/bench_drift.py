#!/usr/bin/env python
"""Colour drift over a long render: does a warm-started chain of frames creep darker (or
lighter) as it goes? (artistic-videos #59: static backgrounds drift over long clips.)

The clip: the bunny clip's first --seconds / 2 played forward then backward (ping-pong), so the
last frame's content is the first frame's, or with --static one frame held for --seconds. The
table gives the stylized first and last frames' mean colour (0-255) and their difference, and
for --static the largest drift of any frame's mean from the first's. Target: <= 2/255.

    python scripts/bench_drift.py [--seconds 10] [--size 128] [--static] [--model auto]
        [--iterations 100] [--iterations-later 12] [--consistency ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402

from videostyle.config import Config, apply  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402


def make_clip(src: Path, dest: Path, seconds: float, static: bool) -> int:
    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        fps = vs.average_rate
        n = int(round(seconds * float(fps)))
        frames = []
        for f in c.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= (1 if static else (n + 1) // 2):
                break
    seq = [frames[0]] * n if static else (frames + frames[::-1])[:n]
    with av.open(str(dest), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = seq[0].shape[1], seq[0].shape[0], "yuv420p"
        s.options = {"crf": "12", "preset": "veryfast"}
        for img in seq:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return len(seq)


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=128)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--static", action="store_true")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--iterations-later", type=int, default=12)
    ap.add_argument("--consistency", type=float, nargs="*", default=[])
    ap.add_argument("--variants", nargs="*", default=[],
                    help="extra rows: each a comma list of config KEY=VALUE overrides, e.g. optim.stop_loss_ratio=0.9")
    args = ap.parse_args()
    model = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        n = make_clip(args.clip, clip, args.seconds, args.static)
        with av.open(str(clip)) as c:
            fps = float(c.streams.video[0].average_rate)
        kind = "one frame held" if args.static else "ping-pong"
        print(f"# {args.clip.name}: {args.seconds:g} s {kind} ({n} frames) at {args.size} px, {args.style.name}, "
              f"model {model}, iterations {args.iterations}/{args.iterations_later}")
        print("| settings | first frame mean RGB | last frame mean RGB | |last - first| (max channel, /255) "
              "| largest drift of any frame (/255) | same content, 1 s in and 1 s before the end / largest such pair (/255) "
              "| s/frame |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        rows: list[tuple[str, dict[str, object]]] = [
            ("defaults" if c is None else f"consistency {c:g}", {} if c is None else {"temporal.consistency": c})
            for c in args.consistency or [None]]
        for v in args.variants:
            rows.append((v, {k: yaml.safe_load(x) for k, _, x in (kv.partition("=") for kv in v.split(","))}))
        for i, (label, extra) in enumerate(rows):
            over = {"model.name": model, "style.images": [str(args.style)], "optim.size": args.size,
                    "optim.iterations": args.iterations, "optim.iterations_later": args.iterations_later,
                    "encode.crf": 10, **extra}
            out = Path(tmp) / f"out{i}.mp4"
            t0 = time.perf_counter()
            res = render_video(clip, out, render_spec(apply(Config(), over)))
            secs = (time.perf_counter() - t0) / max(res.frames, 1)
            with av.open(str(out)) as o:
                means = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0) for f in o.decode(video=0)]
            first, last = means[0], means[-1]
            worst = max(float(np.abs(m - first).max()) for m in means)
            # Ping-pong: frames i and n-1-i show the same content; from 1 s in, both are warm-started
            # links of the chain, up to 10 s apart: their difference is the chain's own drift.
            k = max(1, round(fps))
            pairs = [float(np.abs(means[i] - means[-1 - i]).max()) for i in range(k, len(means) // 2 - k)]
            chain = f"{pairs[0]:.2f} / {max(pairs):.2f}" if pairs and not args.static else "-"
            fmt = lambda v: "(" + ", ".join(f"{x:.1f}" for x in v) + ")"  # noqa: E731
            print(f"| {label} | {fmt(first)} | {fmt(last)} | {float(np.abs(last - first).max()):.2f} | {worst:.2f} "
                  f"| {chain} | {secs:.2f} |", flush=True)


if __name__ == "__main__":
    main()
