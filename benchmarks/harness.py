"""The harness: what a scenario is, the context it runs in (full or smoke sizes, the device, the
media), its timers (``torch.utils.benchmark``: medians and interquartile ranges, never statistics
written here), and a run's record (rows, peak memory, the machine) as JSON."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import machine

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str  # the row's key
    heading: str
    fmt: str = "{}"  # how a value is written in the table


@dataclass(frozen=True)
class Scenario:
    """One benchmark: its name (the one ``docs/benchmarks.md`` quotes), what it measures, its
    table's columns, and the callable that measures it (a Context in, rows out)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    measure: Callable[[Context], list[Row]]
    note: str = ""  # what a reader needs to read the table (the variants, the units)


@dataclass
class Context:
    """Where a scenario runs: ``smoke`` (64 px, 2 frames, a few iterations: that it still runs,
    not what it measures), the device, and the media (the shared clip and style, or synthesised
    ones for a smoke run)."""

    smoke: bool = False
    device: str = "cpu"
    clip: Path | None = None
    style: Path | None = None
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="videostyle-bench-")))  # (removed after)
    options: dict[str, str] = field(default_factory=dict)  # a scenario's own settings (``--set KEY=VALUE``)

    def pick(self, full: Any, smoke: Any) -> Any:
        return smoke if self.smoke else full

    def seconds(self, full: float) -> float:
        """The least time a timer measures for."""
        return self.pick(full, 0.02)

    def media(self) -> tuple[Path, Path]:
        """The clip and the style image to render."""
        from benchmarks.media import default_media

        if self.clip is None or self.style is None:
            clip, style = default_media(self)
            self.clip, self.style = self.clip or clip, self.style or style
        return self.clip, self.style


@dataclass(frozen=True)
class Timing:
    median: float  # seconds
    iqr: float
    runs: int

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "iqr": self.iqr, "runs": self.runs}


def inner(fn: Callable[[], Any], seconds: float) -> Timing:
    """An inner loop's time per call after one untimed call: ``blocked_autorange`` (blocks of calls
    until ``seconds``; a GPU is synchronised around each block)."""
    import torch
    from torch.utils import benchmark

    fn()  # (untimed: a first call at a new size creates its kernels)
    # (the process's threads: Timer's default is one, which no render runs with)
    m = benchmark.Timer(stmt="fn()", globals={"fn": fn},
                        num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=seconds)
    return Timing(m.median, m.iqr, len(m.times))


def whole(fn: Callable[[], Any], repeats: int) -> Timing:
    """A whole run's time (a render): ``repeats`` calls, each timed once (no warm-up call: a
    scenario warms what it needs itself), their median and IQR as ``torch.utils.benchmark``'s
    Measurement computes them."""
    from torch.utils import benchmark
    from torch.utils.benchmark.utils.common import TaskSpec

    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    m = benchmark.Measurement(number_per_run=1, raw_times=times, task_spec=TaskSpec(stmt="fn()", setup="pass"))
    return Timing(m.median, m.iqr, len(m.times))


def peak_memory_mb(device: str) -> dict[str, float]:
    """This process's peak resident memory so far, and the device's peak allocation."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 ** 2)}
    if device.startswith("cuda"):
        import torch

        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def run(s: Scenario, ctx: Context) -> dict[str, Any]:
    """One scenario measured: its rows and table, the seconds it took and the peak memory."""
    t0 = time.perf_counter()
    rows = s.measure(ctx)
    return {"title": s.title, "note": s.note, "columns": [[c.key, c.heading, c.fmt] for c in s.columns],
            "rows": rows, "seconds": time.perf_counter() - t0, "options": dict(ctx.options),
            **peak_memory_mb(ctx.device)}


def record(results: dict[str, Any], smoke: bool, device: str, stamp: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's JSON: the machine (``stamp``: as described when the run began), whether it was a
    smoke run, the device, each scenario's result."""
    return {"machine": stamp or machine.describe(), "smoke": smoke, "device": device, "results": results}


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def table(result: dict[str, Any]) -> list[str]:
    """A scenario's rows as a markdown table."""
    cols: Sequence[Sequence[str]] = result["columns"]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + " --- |" * len(cols)]
    for row in result["rows"]:
        cells = []
        for key, _, fmt in cols:
            v = row.get(key, "")
            cells.append(fmt.format(v) if v != "" and v is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
