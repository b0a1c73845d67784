"""A render's events as records: the one translation of the Reporter's events into plain data,
which ``--progress json`` writes and the API's ``on_event`` receives, and a Tee that hands every
event to several reporters in order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from videostyle.errors import worded
from videostyle.report import Reporter, STIterate

__all__ = ["EventReporter", "Tee"]


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


class EventReporter(Reporter):
    """Each event as a plain record (JSON's types only) to ``callback``: its ``event`` name, the
    seconds since the render began (``t``) and its fields. ``--progress json`` writes these
    records a line each; the API hands them to ``on_event``. A notice names settings as the API's
    keywords, or with ``flags`` as the command line's flags."""

    def __init__(self, callback: Callable[[dict[str, Any]], None], flags: bool = False) -> None:
        self.callback, self.flags = callback, flags
        self.t0 = time.perf_counter()

    def _emit(self, event: str, **fields: Any) -> None:
        self.callback({"event": event, "t": round(time.perf_counter() - self.t0, 3), **_plain(fields)})

    def notice(self, message: str) -> None:
        self._emit("notice", message=worded(message, self.flags))

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
                   alternatives=[worded(a, self.flags) for a in estimate.alternatives],
                   line=estimate.line(self.flags))

    def progress(self, progress: Any) -> None:
        self._emit("progress", **_plain(progress))

    def frame(self, done: Any) -> None:
        self._emit("frame", **_plain(done))

    def end(self) -> None:
        self._emit("end")
