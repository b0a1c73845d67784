"""Renders split into segments on a local Ray cluster: the wall time of 1 and 2 workers (one
torch thread each) and the temporal error at the segments' seams against the rest, with and
without overlap; and the time before a parallel render submits its first segment (the scan for
scene cuts, at the stylized size and at the scan's own small size)."""

from __future__ import annotations

import statistics
from fractions import Fraction
from pathlib import Path

from benchmarks.harness import Column, Context, Row, Scenario, whole
from benchmarks.scenarios.common import config


def workers(ctx: Context) -> list[Row]:
    from videostyle.config import apply
    from videostyle.engines import render_spec, scan_spec, span
    from videostyle.io.media import Span, probe
    from videostyle.metrics import temporal_error
    from videostyle.render.parallel import plan_segments, render_parallel
    from videostyle.render.scan import scan

    clip, style = ctx.media()
    frames = ctx.pick(48, 4)
    base = config(ctx, style, model__name="random", optim__size=ctx.pick(128, 64), optim__iterations=ctx.pick(40, 2),
                  optim__iterations_later=ctx.pick(10, 1), render__max_frames=frames, render__threads=1, encode__crf=12)
    found = scan(clip, scan_spec(base), span(base), probe(clip))
    assert found is not None
    rows: list[Row] = []
    wall1 = None
    for n, overlap in ctx.pick(((1, 0), (2, 0), (2, base.render.overlap)), ((2, 1),)):
        cfg = apply(base, {"render.workers": n, "render.overlap": overlap})
        out = ctx.work / f"w{n}_o{overlap}.mkv"
        res = render_parallel(clip, out, render_spec(cfg))
        wall1 = wall1 or res.seconds
        per = temporal_error(out, clip, span=Span(max_frames=frames)).per_frame[1]  # per[t - 1]: frame t
        segs = plan_segments(found.frames, list(found.cuts), n, overlap)
        seams = sorted({t for s in segs[1:] for t in range(max(1, s.first), s.start + 1)})
        rest = statistics.median([e for t, e in enumerate(per, start=1) if t not in seams])
        seam = statistics.mean(per[t - 1] for t in seams) if seams else None
        rows.append({"workers": n, "overlap": overlap, "wall": res.seconds, "speedup": wall1 / res.seconds,
                     "frames": f"{seams[0]}..{seams[-1]}" if seams else "none", "seam": seam, "rest": rest,
                     "ratio": seam / rest if seam is not None else None})
    return rows


def make_720p(src: Path, dest: Path, seconds: float) -> int:
    import av
    import cv2

    n = 0
    with av.open(str(src)) as c, av.open(str(dest), "w") as out:
        s = c.streams.video[0]
        fps = s.average_rate or Fraction(24)
        v = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "20"})
        v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
        for f in c.decode(s):
            if f.time is not None and f.time >= seconds:
                break
            fr = av.VideoFrame.from_ndarray(cv2.resize(f.to_ndarray(format="rgb24"), (1280, 720),
                                                       interpolation=cv2.INTER_CUBIC), format="rgb24")
            fr.pts, fr.time_base = n, 1 / fps
            for p in v.encode(fr):
                out.mux(p)
            n += 1
        for p in v.encode(None):
            out.mux(p)
    return n


def plan(ctx: Context) -> list[Row]:
    """The scan of a 720p clip (the shared clip scaled up) at the stylized size (what every
    segment's own detection did) and at the planner's small size, and the whole plan (probe,
    styles, scan, work folder) before the first segment is submitted."""
    from videostyle.engines import render_spec, scan_spec, span
    from videostyle.io.media import probe
    from videostyle.render import scan as span_scan
    from videostyle.render.parallel import ParallelRender

    clip, style = ctx.media()
    big = ctx.work / "clip720.mp4"
    n = make_720p(clip, big, ctx.pick(10.0, 0.3))
    cfg = config(ctx, style, optim__size=ctx.pick(512, 64), render__workers=2)
    info, rows, base = probe(big), [], None
    for label, side in ((f"stylized size ({cfg.optim.size} px)", 0), (f"{span_scan.SCAN_SIDE} px", None)):
        got: list[tuple[int, ...]] = []
        t = whole(lambda: got.append(span_scan.scan(big, scan_spec(cfg), span(cfg), info, side=side).cuts),
                  ctx.pick(3, 1)).median
        base = base or t
        rows.append({"what": f"scan at {label}", "s": t, "fps": n / t, "cuts": list(got[-1]), "vs": t / base})

    def planned() -> None:
        ParallelRender(big, ctx.work / "out.mp4", render_spec(cfg), restart=True).work.remove()

    t = whole(planned, ctx.pick(3, 1)).median
    rows.append({"what": "the whole plan, to the first submit", "s": t, "fps": n / t, "cuts": "", "vs": t / base})
    return rows


SCENARIOS = [
    Scenario("parallel", "Segments on a local Ray cluster: wall time and the seams' temporal error",
             (Column("workers", "workers"), Column("overlap", "overlap"), Column("wall", "wall s", "{:.1f}"),
              Column("speedup", "speedup", "{:.2f}x"), Column("frames", "seam frames"),
              Column("seam", "seam temporal error", "{:.5f}"), Column("rest", "median of the rest", "{:.5f}"),
              Column("ratio", "ratio", "{:.2f}x")),
             workers, "48 frames at 128 px, random weights, 40/10 iterations, one torch thread per worker."),
    Scenario("parallel-plan", "Time before a parallel render submits its first segment, on a 720p clip",
             (Column("what", "what"), Column("s", "seconds (median of 3)", "{:.2f}"), Column("fps", "frames/s", "{:.0f}"),
              Column("cuts", "cuts found"), Column("vs", "vs the stylized size's scan", "{:.2f}x")),
             plan, "The shared clip's first 10 s scaled up to 1280x720 (H.264); the stylized size 512 px."),
]
