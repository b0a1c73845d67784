"""What a render will take, from what it has measured so far.

``Estimating`` sits between a render and any ``Reporter`` (the terminal bar, ``--progress
json``, the studio): it passes every event on, and from the render's plan and the timing of its
first iterations it adds two more, ``estimate`` (once, before frame 0 ends: the plan and the whole
render's time on this machine, with faster alternatives when that is long) and ``progress`` (after
each iteration and frame: the fraction done and the seconds left).

The model: an iteration costs what the last few cost, per pixel of the size being optimised
(frame 0's pyramid levels differ in size); a later frame costs its iteration budget at that
rate until later frames have been measured, then what they took (their median, so that frames
that stop early refine it). Frame 0 counts its iterations left; the settle pass renders its
frames a second time, as later frames. Scene cuts are not foreseen: each one adds its time when it
happens. Nothing here prints; the clock is injectable for tests.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from videostyle.report import FrameDone, Reporter, STIterate

WARMUP_ITERATIONS = 4  # iterations measured before the estimate (the first ones carry start-up costs)
LONG = 600.0  # seconds: an estimate above this lists the faster alternatives


@dataclass(frozen=True)
class RenderPlan:
    """What a render is about to do, as its estimate needs it."""

    frames: int | None  # frames in the span (None: unknown)
    first_iterations: int  # frame 0's (and a scene cut's) iterations; 0: no optimiser (the fast engine)
    later_iterations: int  # the budget of each later frame
    size: tuple[int, int]  # (H, W) the optimiser works at
    settle_frames: int = 0  # frames the settle pass renders again
    resumed: int = 0  # frames an earlier run finished
    device: str = "cpu"


@dataclass(frozen=True)
class Estimate:
    """The render's estimate, once its first iterations are measured."""

    total_seconds: float  # the whole render, start to end
    iteration_seconds: float  # one iteration at the full size
    first_frame_seconds: float
    later_frame_seconds: float
    plan: RenderPlan
    alternatives: tuple[str, ...] = ()  # faster ways to a first look, when the estimate is long

    def line(self) -> str:
        """One line for a person."""
        p = self.plan
        h, w = p.size
        if not p.first_iterations:  # a network, no optimiser
            return (f"plan: {p.frames or '?'} frame(s) at {w}x{h} through the feed-forward network (about "
                    f"{self.later_frame_seconds:.2f} s a frame); estimated {duration(self.total_seconds)} on this "
                    f"machine ({p.device})")
        later = (f"; later frames up to {p.later_iterations} iterations each (about {self.later_frame_seconds:.1f} s)"
                 if (p.frames or 0) > 1 else "")
        head = (f"plan: frame 0 at {w}x{h}, {p.first_iterations} iterations at {1 / self.iteration_seconds:.2f} "
                f"it/s{later}; estimated {duration(self.total_seconds)} for {p.frames or '?'} frame(s) on this "
                f"machine ({p.device})")
        return head + (f"; faster: {', '.join(self.alternatives)}" if self.alternatives else "")


@dataclass(frozen=True)
class Progress:
    """Where a render is: frames done (fractional within the frame at hand) and seconds left."""

    done: float
    total: int | None
    seconds_left: float | None
    elapsed: float


def duration(seconds: float) -> str:
    """"45 s", "12 min", "1 h 10 min"."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def alternatives(plan: RenderPlan, total: float) -> tuple[str, ...]:
    """Faster ways to a first look at a render estimated at ``total`` seconds."""
    if total < LONG or plan.first_iterations == 0:
        return ()
    out = ["--method fast (a feed-forward network, no optimisation)"]
    long_side = max(plan.size)
    if long_side > 256:
        out.append(f"--size 256 (about {duration(total * (256 / long_side) ** 2)})")
    out += ["--config preview", "videostyle preview to try settings on one frame"]
    return tuple(out)


class Estimating(Reporter):
    """A Reporter that passes every event to ``inner`` and adds ``estimate`` and ``progress``."""

    def __init__(self, inner: Reporter, clock: Callable[[], float] = time.perf_counter) -> None:
        self.inner, self.clock = inner, clock
        self.plan_: RenderPlan | None = None
        self.t0 = clock()
        self.last_tick: float | None = None
        self.per_px: deque[float] = deque(maxlen=8)  # recent seconds per iteration per pixel
        self.later_secs: deque[float] = deque(maxlen=24)  # recent later frames' wall times
        self.frames_done = 0
        self.it_in_frame = (0, 0)  # (iterations done, planned) of the frame at hand
        self.frame_started: float | None = None
        self.told = False
        self.iterations_seen = 0
        self.settled = 0  # frames the settle pass has rendered again

    # -- events passed on -------------------------------------------------------------------

    def notice(self, message: str) -> None:
        self.inner.notice(message)

    def begin(self, total: int | None, what: str) -> None:
        self.t0 = self.frame_started = self.clock()
        self.inner.begin(total, what)

    def plan(self, plan: RenderPlan) -> None:
        self.plan_ = plan
        self.frames_done = plan.resumed
        self.inner.plan(plan)

    def iterate(self, it: STIterate) -> None:
        now = self.clock()
        if self.last_tick is not None and it.i > 1:
            self.per_px.append((now - self.last_tick) / (it.size[0] * it.size[1]))
        self.last_tick = now
        self.iterations_seen += 1
        self.it_in_frame = (it.i + sum_levels_before(it), it.iterations * it.levels)
        self.inner.iterate(it)
        if not self.told and self.plan_ is not None and self.iterations_seen >= WARMUP_ITERATIONS and self.per_px:
            self.told = True
            self.inner.estimate(self._estimate(now))
        self.inner.progress(self._progress(now))

    def frame(self, done: FrameDone) -> None:
        now = self.clock()
        # A later frame's time: a frame after the first (not a scene cut or one restored from the
        # work folder), or one the settle pass rendered again (no new frame).
        later = done.settled or (not done.resumed and done.index > 0 and not done.restarted)
        if later and self.frame_started is not None:
            self.later_secs.append(now - self.frame_started)
        self.frame_started, self.last_tick = now, None
        self.it_in_frame = (0, 0)
        if done.settled:
            self.settled += 1
        elif not (done.resumed and self.plan_ and done.index < self.plan_.resumed):
            self.frames_done += 1
        self.inner.frame(done)
        if not self.told and self.plan_ is not None and self.plan_.first_iterations == 0 and self.later_secs:
            self.told = True
            self.inner.estimate(self._estimate(now))
        self.inner.progress(self._progress(now))

    def end(self) -> None:
        self.inner.end()

    # -- the model -------------------------------------------------------------------------

    def _iteration_seconds(self) -> float:
        assert self.plan_ is not None
        h, w = self.plan_.size
        return statistics.median(self.per_px) * h * w if self.per_px else float("nan")

    def _later_seconds(self) -> float:
        assert self.plan_ is not None
        if self.later_secs:
            return statistics.median(self.later_secs)
        return self.plan_.later_iterations * self._iteration_seconds()

    def _left(self, now: float) -> float | None:
        p = self.plan_
        if p is None or p.frames is None:
            return None
        later = self._later_seconds()
        if later != later:  # nothing measured yet
            return None
        done_it, planned = self.it_in_frame
        frames_left = max(p.frames - self.frames_done, 0)
        left = 0.0
        if self.frames_done == p.resumed and p.first_iterations:  # frame 0 at hand
            left += max((planned or p.first_iterations) - done_it, 0) * self._iteration_seconds()
            frames_left -= 1
        elif frames_left and self.frame_started is not None:
            left += max(later - (now - self.frame_started), 0.0)
            frames_left -= 1
        settle = max(p.settle_frames - self.settled, 0)
        return left + (frames_left + settle) * later

    def _estimate(self, now: float) -> Estimate:
        assert self.plan_ is not None
        left = self._left(now) or 0.0
        total = (now - self.t0) + left
        it_s = self._iteration_seconds()
        first = self.plan_.first_iterations * it_s if self.plan_.first_iterations else self._later_seconds()
        return Estimate(total, it_s, first, self._later_seconds(), self.plan_, alternatives(self.plan_, total))

    def _progress(self, now: float) -> Progress:
        done_it, planned = self.it_in_frame
        part = min(done_it / planned, 0.999) if planned else 0.0
        total = self.plan_.frames if self.plan_ is not None else None
        return Progress(self.frames_done + part, total, self._left(now), now - self.t0)


def sum_levels_before(it: STIterate) -> int:
    """Iterations of the coarser pyramid levels done before ``it``'s level (planned as equal)."""
    return it.level * it.iterations
