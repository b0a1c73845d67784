"""The render's progress stream, as the terminal shows it (bars: frames with the estimated time
left, and at -v the iterations within a frame) and as ``--progress json`` writes it (one JSON
object per event, for other front ends). Both hear the same events, through one
``estimate.Estimating``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from videostyle.estimate import Estimating, duration
from videostyle.errors import worded
from videostyle.events import EventReporter, Tee
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


class JsonReporter(EventReporter):
    """``--progress json``: one JSON object per line per event, with its ``event`` name and the
    seconds since the render began (``t``)."""

    def __init__(self, stream: IO[str], close: bool = False) -> None:
        super().__init__(self._write, flags=True)
        self.stream, self.close_at_end = stream, close

    def _write(self, rec: dict[str, Any]) -> None:
        self.stream.write(json.dumps(rec, allow_nan=False) + "\n")
        self.stream.flush()

    def end(self) -> None:
        super().end()
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

        tqdm.write(f"videostyle: {worded(message, flags=True)}", file=sys.stderr)

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
            self.notice(estimate.line(flags=True))

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
