"""What a render reports: progress events to a Reporter, and its result with per-stage times."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class STIterate:
    """One optimiser iteration, as reported to progress callbacks."""

    i: int  # iteration within the current pyramid level (1-based)
    iterations: int  # planned iterations at this level
    level: int  # pyramid level (0 = coarsest)
    levels: int  # number of pyramid levels
    loss: float  # total weighted loss
    losses: dict[str, float]  # weighted loss per term: content, style, tv, temporal
    size: tuple[int, int]  # (H, W) being optimised


@dataclass(frozen=True)
class FrameDone:
    """A finished frame, as reported to progress sinks."""

    index: int  # 0-based frame index in the render
    total: int | None  # frames expected (None when unknown)
    iterations: int  # optimiser iterations used
    seconds: float  # wall time of this frame's stylization
    loss: float  # final total loss
    restarted: bool = False  # scene cut: restarted from content with full iterations
    resumed: bool = False  # taken from an earlier interrupted run
    settled: bool = False  # rendered again by the settle pass (the frame was counted before)


class Reporter:
    """Progress sink; the default ignores everything. The CLI subclasses it with tqdm bars."""

    def notice(self, message: str) -> None:
        """A one-line warning or note for the user. The settings it names are marked
        (``errors.setting``): a front end words them as its user knows them (``errors.worded``)."""

    def begin(self, total: int | None, what: str) -> None:
        """A render of ``total`` frames (None when unknown) starts."""

    def plan(self, plan: Any) -> None:
        """What the render is about to do (``estimate.RenderPlan``), after ``begin``."""

    def iterate(self, it: STIterate) -> None:
        """One optimiser iteration finished."""

    def estimate(self, estimate: Any) -> None:
        """The render's estimate (``estimate.Estimate``), once, before frame 0 ends."""

    def progress(self, progress: Any) -> None:
        """Where the render is (``estimate.Progress``), after each iteration and frame."""

    def frame(self, done: FrameDone) -> None:
        """One frame finished."""

    def end(self) -> None:
        """The render finished or stopped."""


@dataclass
class StageTimes:
    """Seconds spent per stage of a render (summed over frames)."""

    decode: float = 0.0  # waiting for the next decoded, resized source frame
    flow: float = 0.0  # optical flow and masks
    stylize: float = 0.0  # optimisation (VGG passes), excluding flow
    encode: float = 0.0  # colour conversion, encoding and muxing
    io: float = 0.0  # work folder reads and writes (the writes on the encoding stage with stage_threads)
    model: float = 0.0  # the fast engine's network (part of stylize)
    blend: float = 0.0  # the fast engine's flow blend: warp and mix (part of stylize)
    waiting: float = 0.0  # the stylizer (main thread) waiting for the next frame from decode/flow


@dataclass(frozen=True)
class RenderResult:
    output: Path
    frames: int
    seconds: float
    iterations: list[int]
    stages: StageTimes = field(default_factory=StageTimes)
    frame_seconds: tuple[float, ...] = ()  # stylize + flow wall time of each newly rendered frame
