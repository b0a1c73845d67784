#!/usr/bin/env python
"""The render's estimate against the time it really took: a Gatys render of a clip, in process,
with the estimator recording the estimated total when it first speaks (before frame 0 ends),
each revision (``estimate`` events), the bar's total at 10%, 25% and 50% of the frames, and the
real total at the end. Prints one table, and the largest swing of the bar's time left within a
minute after the first estimate.

    python scripts/check_estimate.py --size 256                  # the shared bunny clip, every frame
    python scripts/check_estimate.py --size 512 --frames 48
    python scripts/check_estimate.py --replay events.jsonl       # a render's --progress-file, again

``--replay`` feeds the events a render wrote with ``--progress-file`` (their times included)
through the estimator again, on the clock they were written at: the estimator can be checked,
and changed, against a long render without rendering it again.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser  # noqa: E402

from videostyle import config as C  # noqa: E402
from videostyle.estimate import Estimating, RenderPlan  # noqa: E402
from videostyle.estimate import replay as replay_events  # noqa: E402
from videostyle.io.media import probe  # noqa: E402
from videostyle.engines import span  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402
from videostyle.render.scan import SpanScan, scan  # noqa: E402
from videostyle.engines import scan_spec  # noqa: E402
from videostyle.report import FrameDone, Reporter  # noqa: E402


class Recorder(Reporter):
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.said: list[tuple[float, float, float, float, int]] = []  # (elapsed, total, low, high, revision)
        self.lefts: list[tuple[float, float]] = []  # (elapsed, the bar's time left)
        self.at: dict[str, tuple[float, float]] = {}
        self.t0 = clock()
        self.total: int | None = None
        self.line = ""
        self.frames: list[FrameDone] = []

    def begin(self, total: int | None, what: str) -> None:
        self.t0, self.total = self.clock(), total

    def estimate(self, e) -> None:  # type: ignore[override]
        self.said.append((self.clock() - self.t0, e.total_seconds, e.low_seconds or e.total_seconds,
                          e.high_seconds or e.total_seconds, e.revision))
        self.line = self.line or e.line()

    def swing(self) -> float:
        """The largest ratio between two of the bar's times left less than a minute apart, in
        the minute after the first estimate."""
        if not self.said:
            return float("nan")
        start = self.said[0][0]
        pts = [(t, v) for t, v in self.lefts if start <= t <= start + 60 and v > 0]
        return max((max(a, b) / min(a, b) for i, (t, a) in enumerate(pts) for u, b in pts[i:] if u - t <= 60),
                   default=1.0)

    def frame(self, done: FrameDone) -> None:
        self.frames.append(done)

    def progress(self, p) -> None:  # type: ignore[override]
        if not self.total or p.seconds_left is None:
            return
        self.lefts.append((p.elapsed, p.seconds_left))
        for mark in (0.10, 0.25, 0.50):
            key = f"{mark:.0%} of the frames"
            if key not in self.at and p.done >= mark * self.total and p.done == int(p.done):
                self.at[key] = (p.elapsed, p.elapsed + p.seconds_left)


def replay(path: Path, scanned: SpanScan | None = None) -> tuple[Recorder, float]:
    """A --progress-file's events through the estimator again, at their own times; and the real
    total (the time of the last event). ``scanned``: the span's scan, given to the estimator where
    a render gives it (before the first frame's event), for a file written without one."""
    now = [0.0]
    rec = Recorder(clock=lambda: now[0])

    def scan_in(est: Estimating, plan: RenderPlan | None) -> None:
        if scanned is not None and plan is not None and not est.plan_.motion:  # type: ignore[union-attr]
            est.plan(dataclasses.replace(plan, motion=scanned.unreliable, cuts=scanned.cuts, early_stop=True))

    real = replay_events(path.read_text().splitlines(), Estimating(rec, clock=lambda: now[0]), now, scan_in)
    return rec, real


def frame_times(rec: Recorder) -> None:
    """Where the time went: the frames in tenths of the clip, their median seconds and iterations."""
    frames = [f for f in rec.frames if not f.settled]
    if len(frames) < 10:
        return
    print("\n| frames | median s/frame | median iterations | scene cuts | settle pass frames |")
    print("| --- | --- | --- | --- | --- |")
    n = len(frames)
    for k in range(10):
        part = frames[k * n // 10:(k + 1) * n // 10]
        later = [f for f in part if f.index > 0 and not f.restarted] or part
        settled = [f for f in rec.frames if f.settled and part[0].index <= f.index <= part[-1].index]
        print(f"| {part[0].index}-{part[-1].index} | {statistics.median(f.seconds for f in later):.1f} | "
              f"{statistics.median(f.iterations for f in later):.0f} | {sum(f.restarted for f in part)} | "
              f"{len(settled)} |")


def main() -> None:
    ap = media_parser(__doc__, frames=0, size=256)
    ap.add_argument("--replay", type=Path, help="a render's --progress-file, fed through the estimator again")
    ap.add_argument("--scan", action="store_true", help="with --replay: scan --clip and give the estimator its "
                    "motion and cuts, for a file written without them")
    args = ap.parse_args()
    if args.replay:
        scanned = None
        if args.scan:
            cfg = C.Config()
            scanned = scan(args.clip, scan_spec(cfg), span(cfg), probe(args.clip))
        rec, real = replay(args.replay, scanned)
        print(f"# {args.replay.name}: {len(rec.frames)} frame events, replayed")
    else:
        over = {"style.images": [str(args.style)], "optim.size": args.size, "render.max_frames": args.frames}
        cfg = C.apply(C.Config(), over, "check_estimate")
        rec = Recorder()
        with tempfile.TemporaryDirectory() as tmp:
            res = render_video(args.clip, Path(tmp) / "out.mp4", render_spec(cfg), Estimating(rec))
        real = res.seconds
        print(f"# {args.clip.name} at {args.size} px, {res.frames} frames, defaults (300 + 20 iterations, settle 1 s)")
    print(f"# {rec.line}")
    print("| when | elapsed (min) | estimated total (min) | range (min) | real total (min) | estimate / real | "
          "real within the range |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = [(f"estimate {r} ({'first' if not r else 'revised'})", t, e, lo, hi) for t, e, lo, hi, r in rec.said]
    rows += [(when, t, e, e, e) for when, (t, e) in rec.at.items()]
    for when, elapsed, est, lo, hi in rows:
        inside = "yes" if lo <= real <= hi else "no"
        print(f"| {when} | {elapsed / 60:.1f} | {est / 60:.1f} | {lo / 60:.1f}-{hi / 60:.1f} | {real / 60:.1f} | "
              f"{est / real:.2f} | {inside if lo != hi else '-'} |")
    print(f"\nthe bar's time left, largest swing within a minute after the first estimate: {rec.swing():.2f}x")
    frame_times(rec)


if __name__ == "__main__":
    main()
