"""What a render will take, from what it has measured so far.

``Estimating`` sits between a render and any ``Reporter`` (the terminal bar, ``--progress
json``, the studio): it passes every event on, and from the render's plan and the timing of its
first iterations it adds two more, ``estimate`` (once, before frame 0 ends: the plan and the whole
render's time on this machine, with faster alternatives when that is long) and ``progress`` (after
each iteration and frame: the fraction done and the seconds left).

The model: an iteration costs what the last few cost (after the render's first few, which carry
start-up costs: allocations, the first calls into the math library; and after the scan beside
them, which shares the cores: the estimate waits for it, up to ``BESIDE_SCAN`` iterations), per
pixel of the size being optimised
(frame 0's pyramid levels differ in size); a later frame costs its iteration budget at that
rate until later frames have been measured, then what they took (their median, so that frames
that stop early refine it). Frame 0 counts its iterations left; the settle pass renders its
frames a second time, as later frames.

Once the render's scan of the span arrives (a second ``plan`` with ``motion`` and ``cuts``,
``render.scan``), each scene cut costs what frame 0 did, and where later frames stop early
(``optim.stop_loss_ratio``) each one's iterations are foreseen from its motion: a frame whose
flow from the one before is reliable almost everywhere starts near its answer. Iterations are
taken as proportional to the unreliable share, up to the budget, with the smallest factor that
accounts for the frames measured so far (a frame at the budget only says the factor is at
least that large), at the measured seconds per iteration of later frames. Until a later frame
has stopped early, the factor is a prior (``PRIOR_FACTOR``), raised where frames at their
budget say it is larger, and the range's top is every later frame at its budget.
Nothing here prints; the clock is injectable for tests.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from videostyle.errors import setting, worded
from videostyle.report import FrameDone, Reporter, STIterate

START_DELTAS = 3  # the render's first iteration times, left out while later ones are there (start-up costs)
MEASURED = 4  # iteration times measured after those before the estimate speaks
# While the render's scan runs beside frame 0 (``RenderPlan.scanning``), the iterations share the
# cores with it and run slower than the rest of the render: their times count only until times
# measured after the scan are in, and the first estimate waits for those, unless the scan is still
# running after this many iterations (a long clip's scan): then it speaks from these, and is
# revised once the scan is done and MEASURED iterations after it are in.
BESIDE_SCAN = 40
WARMUP_ITERATIONS = 1 + START_DELTAS + MEASURED  # iterations before the estimate
LONG = 600.0  # seconds: an estimate above this lists the faster alternatives
# The estimate is said again (a further ``estimate`` event) as what it stands on grows: when this
# many of frame 0's iterations have been measured, when the scan's motion and cuts arrive, and
# when this many later frames have been measured.
REVISE_ITERATIONS = (MEASURED, 16, 48, 128)  # (MEASURED: where the first was said beside the scan)
REVISE_LATER = (1, 4, 12)
RATE_WINDOW = 64  # recent iteration times the rate is the median of
# The time left the bar shows follows the model's total through a first-order lag of this many
# seconds: a rate that jumps for a few iterations (a stage thread starting beside the optimiser)
# moves it a little, a lasting change fully within a minute or two.
SMOOTHING = 20.0
# Iterations per unit of unreliable flow (the scan's motion) foreseen for a later frame that stops
# early, before any has (a render's first seconds often move too much to stop early, and say
# little of the rest). Read off renders of the shared clips: where the frames that stopped early
# put it, rounded down, since the frames that move most of those that still run their budget
# stop earlier than their motion says (docs/benchmarks.md, the estimate's tables).
PRIOR_FACTOR = 200.0
# Where the total is not bounded by what frames may do (early stops), the range says the
# estimate's own accuracy: the rate measured so far may yet change by this much either way.
SPREAD = 0.25


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
    early_stop: bool = False  # later frames stop once as stylized as the first (optim.stop_loss_ratio)
    motion: tuple[float, ...] = ()  # per frame of the span: the share of unreliable flow (render.scan; () until it is done)
    cuts: tuple[int, ...] = ()  # scene cuts the scan found
    scanning: bool = False  # a scan runs beside frame 0: a later plan brings its motion and cuts, or says it ended


@dataclass(frozen=True)
class Estimate:
    """The render's estimate, once its first iterations are measured."""

    total_seconds: float  # the whole render, start to end
    iteration_seconds: float  # one iteration at the full size
    first_frame_seconds: float
    later_frame_seconds: float
    plan: RenderPlan
    alternatives: tuple[str, ...] = ()  # faster ways to a first look, when the estimate is long
    # The range the render should end in: before later frames are measured, where they may stop
    # early, its low end has each at one iteration (``total_seconds`` has them at their budget,
    # or as the scan's motion foresees them); otherwise the rate's own uncertainty (``SPREAD``).
    low_seconds: float | None = None
    high_seconds: float | None = None
    revision: int = 0  # 0: the first estimate; then each revision

    def line(self, flags: bool = False) -> str:
        """One line for a person, naming settings as the API's keywords (``flags``: as the command
        line's flags)."""
        return worded(self._line(), flags)

    def _line(self) -> str:
        p = self.plan
        h, w = p.size
        if not p.first_iterations and p.later_iterations:  # chains only (painted keyframes' passes)
            return (f"plan: {p.frames or '?'} frame(s) at {w}x{h}, each up to {p.later_iterations} iterations from "
                    f"the frame before (about {self.later_frame_seconds:.1f} s a frame); estimated "
                    f"{duration(self.total_seconds)} on this machine ({p.device})")
        if not p.first_iterations:  # a network, no optimiser
            return (f"plan: {p.frames or '?'} frame(s) at {w}x{h} through the feed-forward network (about "
                    f"{self.later_frame_seconds:.2f} s a frame); estimated {duration(self.total_seconds)} on this "
                    f"machine ({p.device})")
        later = (f"; later frames up to {p.later_iterations} iterations each (about {self.later_frame_seconds:.1f} s)"
                 if (p.frames or 0) > 1 else "")
        head = (f"{'revised: ' if self.revision else ''}estimated {duration(self.total_seconds)}{self._range()} for "
                f"{p.frames or '?'} frame(s) on this machine ({p.device}): frame 0 at {w}x{h}, {p.first_iterations} "
                f"iterations at {1 / self.iteration_seconds:.2f} it/s{later}")
        return head + (f"; faster: {', '.join(self.alternatives)}" if self.alternatives else "")

    def _range(self) -> str:
        if self.low_seconds is None or self.high_seconds is None:
            return ""
        why = (f"later frames stop early, after 1 to {self.plan.later_iterations} iterations"
               if self.low_seconds < (1 - SPREAD) * self.total_seconds - 1 else "as measured so far")
        return f" ({duration(self.low_seconds)} to {duration(self.high_seconds)}: {why})"


@dataclass(frozen=True)
class Progress:
    """Where a render is: frames done (fractional within the frame at hand) and seconds left."""

    done: float
    total: int | None
    seconds_left: float | None  # as a bar shows it: the model's total followed through a lag (``SMOOTHING``)
    elapsed: float
    model_left: float | None = None  # as the model has it now

def duration(seconds: float) -> str:
    """"45 s", "12 min", "1 h 10 min"."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def alternatives(plan: RenderPlan, total: float) -> tuple[str, ...]:
    """Faster ways to a first look at a render estimated at ``total`` seconds (settings marked:
    ``errors.worded`` words them)."""
    if total < LONG or plan.first_iterations == 0:
        return ()
    out = [f"{setting('method', 'fast')} (a feed-forward network, no optimisation)"]
    long_side = max(plan.size)
    if long_side > 256:
        out.append(f"{setting('size', 256)} (about {duration(total * (256 / long_side) ** 2)})")
    out += [setting("config", "preview"), "videostyle preview to try settings on one frame"]
    return tuple(out)


class Estimating(Reporter):
    """A Reporter that passes every event to ``inner`` and adds ``estimate`` and ``progress``."""

    def __init__(self, inner: Reporter, clock: Callable[[], float] = time.perf_counter) -> None:
        self.inner, self.clock = inner, clock
        self.plan_: RenderPlan | None = None
        self.t0 = clock()
        self.last_tick: float | None = None
        self.per_px: deque[float] = deque(maxlen=RATE_WINDOW)  # recent seconds per iteration per pixel
        self.measured = 0  # iteration times measured (after the start-up ones), in all
        self.startup: list[float] = []  # the first START_DELTAS of them (used only while there are no others)
        self.beside: deque[float] = deque(maxlen=RATE_WINDOW)  # those measured while the scan ran (until others are in)
        self.later_secs: deque[float] = deque(maxlen=24)  # recent later frames' wall times
        self.later_rate: deque[float] = deque(maxlen=24)  # their seconds per iteration
        self.later_its: list[tuple[float, int]] = []  # (motion, iterations) of each later frame measured
        self.first_secs: float | None = None  # frame 0's wall time, once it is done
        self._factor: float | None = None  # iterations per unit of motion (``_fit``)
        self._prior = False  # whether ``_factor`` is the prior (no later frame has stopped early yet)
        self.frames_done = 0
        self.it_in_frame = (0, 0)  # (iterations done, planned) of the frame at hand
        self.frame_started: float | None = None
        self.told = False  # whether the first estimate was said
        self.revision = 0  # estimates said after the first
        self.settled = 0  # frames the settle pass has rendered again
        self.shown: tuple[float, float] | None = None  # (time, total) of the smoothed total the time left is from

    # -- events passed on -------------------------------------------------------------------

    def notice(self, message: str) -> None:
        self.inner.notice(message)

    def begin(self, total: int | None, what: str) -> None:
        self.t0 = self.frame_started = self.clock()
        self.inner.begin(total, what)

    def plan(self, plan: RenderPlan) -> None:
        """The render's plan; a second one (the scan's motion and cuts) refines the first."""
        if self.plan_ is None:
            self.frames_done = plan.resumed
        rescanned = self.plan_ is not None and plan.motion != self.plan_.motion
        self.plan_ = plan
        self._fit()
        self.inner.plan(plan)
        if self.told and rescanned:
            self._say(self.clock())

    def iterate(self, it: STIterate) -> None:
        now = self.clock()
        if self.last_tick is not None and it.i > 1:
            d = (now - self.last_tick) / (it.size[0] * it.size[1])
            if len(self.startup) < START_DELTAS:
                self.startup.append(d)
            elif self.plan_ is not None and self.plan_.scanning:
                self.beside.append(d)
            else:
                self.per_px.append(d)
                self.measured += 1
        self.last_tick = now
        self.it_in_frame = (it.i + sum_levels_before(it), it.iterations * it.levels)
        self.inner.iterate(it)
        first = self.measured == MEASURED or (len(self.beside) == BESIDE_SCAN and not self.measured)
        if self.plan_ is not None and (first if not self.told else
                                       self.measured in REVISE_ITERATIONS and not self.later_secs):
            self._say(now)
        self.inner.progress(self._progress(now))

    def frame(self, done: FrameDone) -> None:
        now = self.clock()
        # A later frame's time: a frame after the first (not a scene cut or one restored from the
        # work folder), or one the settle pass rendered again (no new frame).
        later = done.settled or (not done.resumed and done.index > 0 and not done.restarted)
        if later and self.frame_started is not None:
            self.later_secs.append(now - self.frame_started)
            if done.iterations:
                self.later_rate.append((now - self.frame_started) / done.iterations)
                self.later_its.append((self._motion_at(done.index + 1 if done.settled else done.index),
                                       done.iterations))
                self._fit()
        elif not done.resumed and self.frame_started is not None and self.first_secs is None:
            self.first_secs = now - self.frame_started
        self.frame_started, self.last_tick = now, None
        self.it_in_frame = (0, 0)
        if done.settled:
            self.settled += 1
        elif not (done.resumed and self.plan_ and done.index < self.plan_.resumed):
            self.frames_done += 1
        self.inner.frame(done)
        if not self.told and self.plan_ is not None and (
                self.later_secs if self.plan_.first_iterations == 0 else self.per_px or self.beside or self.startup):
            self._say(now)  # (a short frame 0: from what it measured)
        elif self.told and later and len(self.later_secs) in REVISE_LATER and self.plan_ and self.plan_.first_iterations:
            self._say(now)
        self.inner.progress(self._progress(now))

    def _say(self, now: float) -> None:
        """An ``estimate`` event: the first, or a revision."""
        e = self._estimate(now)
        if self.told:
            self.revision += 1
            e = replace(e, revision=self.revision)
        else:
            self.shown = (now, e.total_seconds)  # the bar starts from the number just said
        self.told = True
        self.inner.estimate(e)

    def end(self) -> None:
        self.inner.end()

    # -- the model -------------------------------------------------------------------------

    def _iteration_seconds(self) -> float:
        assert self.plan_ is not None
        h, w = self.plan_.size
        measured = self.per_px or self.beside or self.startup
        return statistics.median(measured) * h * w if measured else float("nan")

    def _later_seconds(self) -> float:
        assert self.plan_ is not None
        if self.later_secs:
            return statistics.median(self.later_secs)
        return self.plan_.later_iterations * self._iteration_seconds()

    def _motion_at(self, index: int) -> float:
        m = self.plan_.motion if self.plan_ is not None else ()
        return m[index] if 0 <= index < len(m) else float("nan")

    def _fit(self) -> None:
        """The factor from motion to iterations: the smallest that accounts for the later frames
        measured (least absolute error of min(budget, factor x motion) against their iterations)."""
        p = self.plan_
        self._factor, self._prior = None, False
        pts = [(u, n) for u, n in self.later_its if u == u and u > 0]
        if p is None or not p.early_stop or not p.motion:
            return
        cap = p.later_iterations
        if all(n >= cap for _, n in pts):
            # Frames that all used their whole budget say only that the factor is at least so
            # large: the prior, unless they say more (taken alone, that bound foresaw a render
            # whose frames all ran their budget at a fraction of its time left).
            self._factor = max([PRIOR_FACTOR] + [cap / u for u, _ in pts])
            self._prior = True
            return
        us, ns = np.array([u for u, _ in pts]), np.array([n for _, n in pts], np.float64)
        candidates = np.unique(np.minimum(ns, cap) / us)
        errors = fit_errors(us, ns, cap, candidates)
        # (the first, smallest, of ties, within the sums' rounding)
        self._factor = float(candidates[int(np.argmax(errors <= errors.min() * (1 + 1e-9) + 1e-9))])

    def _frame_seconds(self, indices: np.ndarray, budget: bool = False) -> float:
        """The foreseen seconds of later frames ``indices`` (scene cuts among them cost a first
        frame); ``budget``: each at its whole budget, whatever the motion foresees."""
        p = self.plan_
        assert p is not None
        if not len(indices):
            return 0.0
        if self._factor is not None and not budget:
            u = np.asarray(p.motion, np.float64)[np.clip(indices, 0, len(p.motion) - 1)]
            its = np.clip(self._factor * u, 1.0, p.later_iterations)
            # (before a later frame is measured, at frame 0's rate: it is most of what they do)
            secs = its * (statistics.median(self.later_rate) if self.later_rate else self._iteration_seconds())
        else:
            secs = np.full(len(indices), self._later_seconds())
        if p.cuts and p.first_iterations:
            first = self.first_secs if self.first_secs is not None else p.first_iterations * self._iteration_seconds()
            secs = np.where(np.isin(indices, p.cuts), first, secs)
        return float(secs.sum())

    def _left(self, now: float, budget: bool = False) -> float | None:
        p = self.plan_
        if p is None or p.frames is None:
            return None
        later = self._later_seconds()
        if later != later:  # nothing measured yet
            return None
        done_it, planned = self.it_in_frame
        nxt = self.frames_done  # the frame at hand
        left = 0.0
        if self.frames_done == p.resumed and p.first_iterations:  # frame 0 at hand
            left += max((planned or p.first_iterations) - done_it, 0) * self._iteration_seconds()
            nxt += 1
        elif nxt < p.frames and self.frame_started is not None:
            left += max(self._frame_seconds(np.array([nxt]), budget) - (now - self.frame_started), 0.0)
            nxt += 1
        left += self._frame_seconds(np.arange(nxt, p.frames), budget)
        # The settle pass renders frames k-1 .. 0 again, each from the frame after it.
        settle = max(p.settle_frames - self.settled, 0)
        return left + self._frame_seconds(np.arange(1, settle + 1), budget) if settle else left

    def _estimate(self, now: float) -> Estimate:
        assert self.plan_ is not None
        p = self.plan_
        left = self._left(now) or 0.0
        total = (now - self.t0) + left
        it_s = self._iteration_seconds()
        first = p.first_iterations * it_s if p.first_iterations else self._later_seconds()
        low, high = (now - self.t0) + (1 - SPREAD) * left, (now - self.t0) + (1 + SPREAD) * left
        if self._prior:
            # Foreseen from the prior: the later frames may yet all run their budget.
            high = max(high, (now - self.t0) + (1 + SPREAD) * (self._left(now, budget=True) or 0.0))
        if p.early_stop and p.later_iterations > 1 and (p.frames or 0) > 1 and not self.later_secs:
            # Later frames may stop after one iteration each: as low as that, whatever the motion says.
            later = (p.frames or 0) - max(p.resumed, 1) + p.settle_frames
            low = min(low, total - self._frame_seconds(np.arange(1, 1 + max(later, 0)))
                      + max(later, 0) * it_s)
        return Estimate(total, it_s, first, self._later_seconds(), p, alternatives(p, total), low, high)

    def _progress(self, now: float) -> Progress:
        done_it, planned = self.it_in_frame
        part = min(done_it / planned, 0.999) if planned else 0.0
        total = self.plan_.frames if self.plan_ is not None else None
        left = self._left(now)
        return Progress(self.frames_done + part, total, self._shown_left(now, left), now - self.t0, left)

    def _shown_left(self, now: float, left: float | None) -> float | None:
        """The time left as the bar shows it: from the first estimate's total (none before it: the
        first iterations' times are not yet the render's), the model's total (elapsed plus
        ``left``) followed through a lag of ``SMOOTHING`` seconds, less the time elapsed."""
        if left is None or not self.told:
            return None
        total = (now - self.t0) + left
        if self.shown is not None:
            then, shown = self.shown
            a = 1.0 - math.exp(-max(now - then, 0.0) / SMOOTHING)
            total = shown + a * (total - shown)
        self.shown = (now, total)
        return max(total - (now - self.t0), 0.0)


def fit_errors(us: np.ndarray, ns: np.ndarray, cap: float, ks: np.ndarray) -> np.ndarray:
    """``sum(|min(cap, k * us) - ns|)`` for each ``k`` of ``ks``, in O((n + m) log n) rather than
    O(n m): a render refits after each later frame, over every later frame it has measured.

    Each point's error is piecewise linear in ``k``: ``n - k u`` up to ``a = min(n, cap) / u``,
    ``k u - n`` from there up to ``b = cap / u`` (nothing when ``n >= cap``), and ``|cap - n|``
    beyond ``b``. Sorted by ``a`` and by ``b``, prefix sums give each piece's total at each ``k``.
    """
    a, b = np.minimum(ns, cap) / us, cap / us
    by_a, by_b = np.argsort(a), np.argsort(b)
    a_sorted, b_sorted = a[by_a], b[by_b]

    def prefix(values: np.ndarray, order: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(values[order])))

    u_a, n_a = prefix(us, by_a), prefix(ns, by_a)
    u_b, n_b, flat_b = prefix(us, by_b), prefix(ns, by_b), prefix(np.abs(cap - ns), by_b)
    below = np.searchsorted(a_sorted, ks, side="left")  # points with a < k (the rest: n - k u)
    beyond = np.searchsorted(b_sorted, ks, side="left")  # points with b < k (|cap - n|)
    u1, n1 = u_a[-1] - u_a[below], n_a[-1] - n_a[below]  # a >= k
    u3, n3, flat = u_b[beyond], n_b[beyond], flat_b[beyond]  # b < k
    u2, n2 = u_a[-1] - u1 - u3, n_a[-1] - n1 - n3  # a < k <= b
    return (n1 - ks * u1) + (ks * u2 - n2) + flat


def sum_levels_before(it: STIterate) -> int:
    """Iterations of the coarser pyramid levels done before ``it``'s level (planned as equal)."""
    return it.level * it.iterations


def replay(lines: Iterable[str], est: Estimating, now: list[float],
           before_frame: Callable[[Estimating, RenderPlan | None], None] | None = None) -> float:
    """A render's ``--progress-file`` (its JSON lines) through ``est`` again, on the clock the
    events were written at: ``now[0]`` is each event's time as it is fed (``est``'s clock should
    read it). The events ``est`` makes itself (``estimate``, ``progress``) are left out; the rest
    go in as the render sent them. ``before_frame`` is called before each frame event (a check
    can hand in a scan there). Returns the real total: the last event's time. (A file written
    before plans said ``scanning``: where a later plan brings the scan's motion before frame 0
    ends, the scan ran beside frame 0 until then, from the first plan on. Earlier renders said
    the motion only at frame 0's end: when their scan ended is not known.)"""
    import json

    events = [json.loads(line) for line in lines]
    plans = [e for e in events if e["event"] == "plan"]
    end0 = next((e["t"] for e in events if e["event"] == "frame"), float("inf"))
    if plans and not any("scanning" in e for e in plans) and any(e.get("motion") and e["t"] < end0 for e in plans):
        plans[0]["scanning"] = True
    plan: RenderPlan | None = None
    for e in events:
        now[0] = e.pop("t")
        kind = e.pop("event")
        if kind == "begin":
            est.begin(e["total"], e["input"])
        elif kind == "plan":
            plan = RenderPlan(**{**e, "size": tuple(e["size"]), "motion": tuple(e.get("motion", ())),
                                 "cuts": tuple(e.get("cuts", ()))})
            est.plan(plan)
        elif kind == "iterate":
            est.iterate(STIterate(**{**e, "size": tuple(e["size"]), "loss": e["loss"] or float("nan")}))
        elif kind == "frame":
            if before_frame is not None:
                before_frame(est, plan)
            est.frame(FrameDone(**{**e, "loss": e["loss"] or float("nan")}))
    return now[0]
