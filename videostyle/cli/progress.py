"""The render's progress stream, as the terminal shows it (bars: frames with the estimated time
left, and at -v the iterations within a frame) and as ``--progress json`` writes it (one JSON
object per event, for other front ends). Both hear the same events, through one
``estimate.Estimating``."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from videostyle.estimate import Estimating, duration
from videostyle.report import Reporter, STIterate


def make_reporter(quiet: bool = False, verbose: bool = False, progress: str = "bar",
                  progress_file: str | None = None) -> Reporter:
    """The CLI's reporter behind one estimator: the bar (unless ``quiet``, or JSON goes to standard
    error), and with ``progress`` json or a ``progress_file`` the JSON events."""
    if progress_file:
        stream = open(progress_file, "a", encoding="utf-8")
        return Estimating(Tee([TqdmReporter(quiet, verbose), JsonReporter(stream, close=True)]))
    if progress == "json":  # (the JSON carries the notices: no bar, no plain lines)
        return Estimating(JsonReporter(sys.stderr))
    return Estimating(TqdmReporter(quiet, verbose))  # type: ignore[arg-type]


class Tee(Reporter):
    """Every event to each of ``sinks``, in order."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def notice(self, message: str) -> None:
        for s in self.sinks:
            s.notice(message)

    def begin(self, total: int | None, what: str) -> None:
        for s in self.sinks:
            s.begin(total, what)

    def plan(self, plan: Any) -> None:
        for s in self.sinks:
            s.plan(plan)

    def iterate(self, it: STIterate) -> None:
        for s in self.sinks:
            s.iterate(it)

    def estimate(self, estimate: Any) -> None:
        for s in self.sinks:
            s.estimate(estimate)

    def progress(self, progress: Any) -> None:
        for s in self.sinks:
            s.progress(progress)

    def frame(self, done: Any) -> None:
        for s in self.sinks:
            s.frame(done)

    def end(self) -> None:
        for s in self.sinks:
            s.end()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class JsonReporter(Reporter):
    """``--progress json``: one JSON object per line per event, with its ``event`` name and the
    seconds since the render began (``t``)."""

    def __init__(self, stream: IO[str], close: bool = False) -> None:
        self.stream, self.close_at_end = stream, close
        self.t0 = time.perf_counter()

    def _emit(self, event: str, **fields: Any) -> None:
        rec = {"event": event, "t": round(time.perf_counter() - self.t0, 3), **_plain(fields)}
        self.stream.write(json.dumps(rec, allow_nan=False) + "\n")
        self.stream.flush()

    def notice(self, message: str) -> None:
        self._emit("notice", message=message)

    def begin(self, total: int | None, what: str) -> None:
        self.t0 = time.perf_counter()
        self._emit("begin", total=total, input=what)

    def plan(self, plan: Any) -> None:
        self._emit("plan", **_plain(plan))

    def iterate(self, it: STIterate) -> None:
        self._emit("iterate", **_plain(it))

    def estimate(self, estimate: Any) -> None:
        self._emit("estimate", total_seconds=estimate.total_seconds, iteration_seconds=estimate.iteration_seconds,
                   first_frame_seconds=estimate.first_frame_seconds, later_frame_seconds=estimate.later_frame_seconds,
                   alternatives=list(estimate.alternatives), line=estimate.line())

    def progress(self, progress: Any) -> None:
        self._emit("progress", **_plain(progress))

    def frame(self, done: Any) -> None:
        self._emit("frame", **_plain(done))

    def end(self) -> None:
        self._emit("end")
        if self.close_at_end:
            self.stream.close()


class TqdmReporter:
    """Progress bars: frames (moving within frame 0 as its iterations run; the time left from
    the estimate) and, at -v, iterations within a frame."""

    BAR = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]"

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.frames_bar: Any = None
        self.iter_bar: Any = None
        self.level = -1
        self.left = ""
        self.done = 0
        self.post: dict[str, str] = {}
        self.said_total: float | None = None  # the total of the last estimate line printed

    def notice(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"videostyle: {message}", file=sys.stderr)

    def begin(self, total: int | None, what: str) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        self.frames_bar = tqdm(total=total, desc=Path(what).name[:30], unit="frame", file=sys.stderr,
                               dynamic_ncols=True, leave=True, bar_format=self.BAR if total else None)

    def plan(self, plan: Any) -> None:
        pass

    def estimate(self, estimate: Any) -> None:
        # The first estimate, then a revision only where it moves the total by a fifth or more
        # (every revision goes to --progress json).
        if self.quiet:
            return
        said = self.said_total
        if said is None or abs(estimate.total_seconds - said) >= 0.2 * said:
            self.said_total = estimate.total_seconds
            self.notice(estimate.line())

    def progress(self, progress: Any) -> None:
        bar = self.frames_bar
        if bar is None:
            return
        if progress.total and progress.done >= progress.total:
            self.left = ""
        elif progress.seconds_left is not None:
            self.left = f"{duration(progress.seconds_left)} left"
        self.done = int(progress.done)
        step = progress.done - bar.n
        if step > 0:
            bar.update(step)
        self._postfix()

    def _postfix(self) -> None:
        bar = self.frames_bar
        parts = [f"frame {self.done}/{bar.total}"] if bar.total else []
        parts += [self.left] if self.left else []
        parts += [f"{k}={v}" for k, v in self.post.items()]
        self.frames_bar.set_postfix_str(", ".join(parts), refresh=False)

    def iterate(self, it: STIterate) -> None:
        from tqdm import tqdm

        if self.quiet or not self.verbose:
            return
        if self.iter_bar is None or it.i == 1:
            if self.iter_bar is not None:
                self.iter_bar.close()
            lvl = f" L{it.level + 1}/{it.levels}" if it.levels > 1 else ""
            self.iter_bar = tqdm(total=it.iterations, desc=f"  iter {it.size[1]}x{it.size[0]}{lvl}", unit="it",
                                 file=sys.stderr, leave=False, dynamic_ncols=True)
        self.iter_bar.update(1)
        self.iter_bar.set_postfix(loss=f"{it.loss:.4g}", refresh=False)

    def frame(self, done: Any) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is None or done.settled:
            return
        if done.restarted:
            self.notice(f"frame {done.index}: scene cut, restarted from the content with full iterations")
        if done.resumed or done.loss != done.loss:  # resumed / parallel / fast frames: no optimiser stats
            return
        self.post = {"it": str(done.iterations), "loss": f"{done.loss:.4g}"}
        if done.seconds:
            self.post["s/frame"] = f"{done.seconds:.2f}"
        self._postfix()

    def end(self) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is not None:
            self.frames_bar.close()
            self.frames_bar = None
