"""The render's estimate against the time it really took: a Gatys render of the clip with the
estimator recording the estimated total when it first speaks (before frame 0 ends), each
revision (``estimate`` events) and the bar's total at 10%, 25% and 50% of the frames, against
the real total. ``--set replay=EVENTS.jsonl`` feeds a render's ``--progress-file`` through the
estimator again instead (its times included), and ``--set scan=1`` scans the clip again at the
render's size and gives the estimator that scan's motion and cuts in place of the recorded ones
(or, for a file written without a scan, before its first frame): the estimator and the scan can
be checked, and changed, against a long render without rendering it again."""

from __future__ import annotations

import dataclasses
import gzip
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Column, Context, Row, Scenario
from benchmarks.scenarios.common import config


def recorder(clock: Callable[[], float] = time.perf_counter) -> Any:
    from videostyle.report import FrameDone, Reporter

    class Recorder(Reporter):
        def __init__(self) -> None:
            self.said: list[tuple[float, float, float, float, int]] = []  # (elapsed, total, low, high, revision)
            self.lefts: list[tuple[float, float]] = []  # (elapsed, the bar's time left)
            self.at: dict[str, tuple[float, float]] = {}
            self.t0, self.total, self.line = clock(), None, ""
            self.frames: list[FrameDone] = []

        def begin(self, total: int | None, what: str) -> None:
            self.t0, self.total = clock(), total

        def estimate(self, e: Any) -> None:
            self.said.append((clock() - self.t0, e.total_seconds, e.low_seconds or e.total_seconds,
                              e.high_seconds or e.total_seconds, e.revision))
            self.line = self.line or e.line()

        def frame(self, done: FrameDone) -> None:
            self.frames.append(done)

        def progress(self, p: Any) -> None:
            if not self.total or p.seconds_left is None:
                return
            self.lefts.append((p.elapsed, p.seconds_left))
            for mark in (0.10, 0.25, 0.50):
                key = f"{mark:.0%} of the frames"
                if key not in self.at and p.done >= mark * self.total and p.done == int(p.done):
                    self.at[key] = (p.elapsed, p.elapsed + p.seconds_left)

    return Recorder()


def swing(rec: Any) -> float:
    """The largest ratio between two of the bar's times left less than a minute apart, in the
    minute after the first estimate."""
    if not rec.said:
        return float("nan")
    start = rec.said[0][0]
    pts = [(t, v) for t, v in rec.lefts if start <= t <= start + 60 and v > 0]
    return max((max(a, b) / min(a, b) for i, (t, a) in enumerate(pts) for u, b in pts[i:] if u - t <= 60), default=1.0)


def replayed(path: Path, clip: Path | None = None) -> tuple[Any, float]:
    """A --progress-file's events through the estimator again, at their own times; and the real
    total. ``clip``: scanned again at the render's size, and its motion and cuts given to the
    estimator where the render gave its own (or, for a file written without them, before the
    first frame's event): the recorded render replayed with today's scan."""
    from videostyle.estimate import Estimating, RenderPlan, replay

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    scanned = rescan(clip, lines) if clip else None
    if scanned is not None:
        lines = [json.dumps({**e, "motion": list(scanned.unreliable), "cuts": list(scanned.cuts)})
                 if e["event"] == "plan" and e.get("motion") else ln for ln, e in ((ln, json.loads(ln)) for ln in lines)]
    now = [0.0]
    rec = recorder(lambda: now[0])

    def scan_in(est: Estimating, plan: RenderPlan | None) -> None:
        if scanned is not None and plan is not None and not est.plan_.motion:  # type: ignore[union-attr]
            est.plan(dataclasses.replace(plan, motion=scanned.unreliable, cuts=scanned.cuts, early_stop=True))

    real = replay(lines, Estimating(rec, clock=lambda: now[0]), now, scan_in)
    return rec, real


def rescan(clip: Path, lines: list[str]) -> Any:
    """``clip`` scanned as the render of ``lines`` scanned it: its plan's frames, at its size."""
    from videostyle import config as C
    from videostyle.engines import scan_spec, span
    from videostyle.io.media import probe
    from videostyle.render.scan import scan

    plan = next(json.loads(ln) for ln in lines if '"plan"' in ln)
    cfg = C.apply(C.Config(), {"optim.size": max(plan["size"]), "render.max_frames": plan["frames"]}, "bench")
    return scan(clip, scan_spec(cfg), span(cfg), probe(clip))


def measure(ctx: Context) -> list[Row]:
    from videostyle.engines import render_spec
    from videostyle.estimate import Estimating
    from videostyle.render.pipeline import render_video

    clip, style = ctx.media()
    if ctx.options.get("replay"):
        rec, real = replayed(Path(ctx.options["replay"]), clip if ctx.options.get("scan") else None)
    else:
        cfg = config(ctx, style, optim__size=int(ctx.options.get("size", ctx.pick(256, 64))),
                     render__max_frames=int(ctx.options.get("frames", ctx.pick(0, 3))),
                     **ctx.pick({}, {"model__name": "random", "optim__iterations": 12, "optim__iterations_later": 2}))
        rec = recorder()
        real = render_video(clip, ctx.work / "out.mp4", render_spec(cfg), Estimating(rec), overwrite=True).seconds
    rows: list[Row] = [{"when": f"estimate {r} ({'first' if not r else 'revised'})", "elapsed": t / 60, "total": e / 60,
                        "range": f"{lo / 60:.1f}-{hi / 60:.1f}", "real": real / 60, "ratio": e / real,
                        "inside": "yes" if lo <= real <= hi else "no"} for t, e, lo, hi, r in rec.said]
    rows += [{"when": when, "elapsed": t / 60, "total": e / 60, "real": real / 60, "ratio": e / real}
             for when, (t, e) in rec.at.items()]
    rows.append({"when": f"the bar's largest swing within a minute after the first estimate: {swing(rec):.2f}x"})
    return rows + frame_times(rec.frames)


def frame_times(frames: list[Any]) -> list[Row]:
    """Where the time went: the frames in tenths of the clip, their median seconds and iterations."""
    frames = [f for f in frames if not f.settled]
    n, rows = len(frames), []
    for k in range(10 if n >= 10 else 0):
        part = frames[k * n // 10:(k + 1) * n // 10]
        later = [f for f in part if f.index > 0 and not f.restarted] or part
        rows.append({"when": f"frames {part[0].index}-{part[-1].index}: median "
                             f"{statistics.median(f.seconds for f in later):.1f} s/frame, "
                             f"{statistics.median(f.iterations for f in later):.0f} iterations, "
                             f"{sum(f.restarted for f in part)} scene cut(s)"})
    return rows


SCENARIOS = [
    Scenario("estimate", "The estimate against the real time of the render",
             (Column("when", "when"), Column("elapsed", "elapsed (min)", "{:.1f}"),
              Column("total", "estimated total (min)", "{:.1f}"), Column("range", "range (min)"),
              Column("real", "real total (min)", "{:.1f}"), Column("ratio", "estimate / real", "{:.2f}"),
              Column("inside", "real within the range")),
             measure, "The shared clip, every frame, at 256 px with the defaults (300 iterations for frame 0 and "
                      "scene cuts, up to 20 for later frames, the settle pass); --set size=512 --set frames=48 for "
                      "others, --set replay=EVENTS.jsonl[.gz] [--set scan=1] to replay a render's --progress-file."),
]
