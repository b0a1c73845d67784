#!/usr/bin/env python
"""K chains in one batch (--chains) against one chain, in one run: the whole render of a clip's
first frames at each K (wall time, frames/s, frame-iterations/s: each frame's iterations, all
summed, a second), each chain's temporal error over the frames it owns (the cross-faded seams
counted in the later chain), and the network's cost per image at batch K (forward and input
gradient, ``gatys.throughput.per_image``), at the render's size.

    python scripts/bench_chains.py [--clip ...] [--frames 24] [--size 256] [--chains 1,2,4]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from videostyle.config import Config, apply
from videostyle.engines import new_stylizer, render_spec
from videostyle.io.images import fit_size
from videostyle.io.media import Span, probe
from videostyle.metrics import temporal_error
from videostyle.render.chains import Chains
from videostyle.render.pipeline import render_video
from videostyle.gatys.throughput import per_image
from videostyle.report import Reporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402


def main() -> None:
    ap = media_parser(__doc__, frames=24, size=256)
    ap.add_argument("--chains", default="1,2,4")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--net-sizes", default="256,512", help="long sides to time the network's batches at")
    args = ap.parse_args()
    ks = [int(k) for k in args.chains.split(",")]
    model = resolve_model(args.model)
    cfg = apply(Config(), {"model.name": model, "style.images": [str(args.style)], "optim.size": args.size,
                           "render.max_frames": args.frames, "render.device": args.device, "encode.crf": 12})
    info = probe(args.clip)
    hw = fit_size(info.height, info.width, args.size)
    st = new_stylizer(cfg)
    print(f"# {args.clip.name}: first {args.frames} frames at {hw[1]}x{hw[0]}, {model}, iterations "
          f"{cfg.optim.iterations}/{cfg.optim.iterations_later}, overlap {cfg.render.overlap}, {args.device} "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {st.precision})")
    net = {side: {k: per_image(st, fit_size(info.height, info.width, side), k, seconds=2.0)
                  for k in sorted(set(ks) | {1})} for side in map(int, args.net_sizes.split(","))}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # (untimed: the first render pays for the network's first passes and the style targets)
        render_video(args.clip, Path(tmp) / "warm.mp4", render_spec(apply(cfg, {"render.max_frames": 2})), stylizer=st)
        t0 = time.perf_counter()
        res = render_video(args.clip, Path(tmp) / "one.mp4", render_spec(cfg), stylizer=st)
        wall = time.perf_counter() - t0
        rows.append(("one chain (a plain render)", wall, sum(res.iterations), _errors(Path(tmp) / "one.mp4", args, [(0, args.frames)])))
        for k in ks:
            out = Path(tmp) / f"k{k}.mp4"
            t0 = time.perf_counter()
            ch = Chains(args.clip, out, render_spec(cfg), k, Reporter(), restart=True, overwrite=True, stylizer=st)
            ch.run()
            ch.pr.mux()
            wall = time.perf_counter() - t0
            assert ch.lockstep is not None
            owned = [(s.start, s.end) for s in ch.pr.segs]
            rows.append((f"--chains {k}", wall, ch.lockstep.iterations, _errors(out, args, owned)))
    base = rows[0][1]
    print("\n| render | wall s | frames/s | vs one chain | frame-iterations/s | temporal error per chain |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, wall, its, errs in rows:
        print(f"| {name} | {wall:.1f} | {args.frames / wall:.3f} | {base / wall:.2f}x | {its / wall:.2f} | "
              f"{' / '.join(f'{e:.4f}' for e in errs)} |")
    print("\n| size | batch K | network per image (ms, median) | vs batch 1 |")
    print("| --- | --- | --- | --- |")
    for side, costs in net.items():
        for k, v in costs.items():
            print(f"| {side} | {k} | {v * 1e3:.1f} | {costs[1] / v:.2f}x |")


def _errors(out: Path, args: object, owned: list[tuple[int, int]]) -> list[float]:
    """The mean temporal error (gap 1) over each chain's frames (a frame against the one before)."""
    rep = temporal_error(out, args.clip, span=Span(max_frames=args.frames))  # type: ignore[attr-defined]
    per = rep.per_frame[1]  # per[t - 1]: frame t against frame t - 1
    return [statistics.fmean(per[max(a, 1) - 1:b - 1]) for a, b in owned]


if __name__ == "__main__":
    main()
