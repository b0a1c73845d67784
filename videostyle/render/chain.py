"""The one frame loop of a render, and the source every render reads its frames from.

A file render, a pipe, a Ray segment, the ``--loop`` pass and the settle pass differ only in
their source (which frames, in which order, with or without precomputed flow), their sink (a
writer, the work folder, the encoding stage, a list) and whether frames an earlier run finished
are restored from a work folder. Each runs ``run``; a new kind of input is a new source, a new
kind of output a new sink."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from videostyle.factory import prepare_content
from videostyle.io.media import Frame, Span, VideoInfo, Warn
from videostyle.io.workdir import WorkDir
from videostyle.report import StageTimes
from videostyle.temporal.flow import FramePair
from videostyle.render.policy import FrameResult, PolicyState, VideoStylizer


@dataclass(frozen=True)
class SourceFrame:
    """A frame on its way to the policy: the source frame (index, timestamps), its content at the
    stylized size (None: a frame the render passes over, in a closed chunk of its work folder)
    and the flows to earlier frames computed ahead (by gap)."""

    frame: Frame
    content: np.ndarray | None
    pairs: dict[int, FramePair] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A frame through the policy: its output at the stylized size (None when passed over) and
    the stylization done now (None when restored from the work folder, or passed over)."""

    frame: Frame
    content: np.ndarray | None
    image: np.ndarray | None
    result: FrameResult | None


Sink = Callable[[Step], None]


def decoded(inp: Path, span: Span, info: VideoInfo | None, size: int, upscale: bool, warn: Warn, *,
            skip: int = 0, content_from: int = 0, times: StageTimes | None = None,
            strict: bool = False) -> Iterator[SourceFrame]:
    """A video file's frames over ``span`` (from source frame ``skip`` on) at the stylized size
    (longer side ``size``); frames below ``content_from`` come without content (a resume passes
    over them). ``times.decode`` adds up the seconds spent; ``strict`` refuses a damaged file
    instead of holding the frames that do not decode."""
    frames = span.frames(inp, skip=skip, warn=warn, info=info, strict=strict)
    while True:
        t0 = time.perf_counter()
        fr = next(frames, None)
        if fr is None:
            return
        src = prepare_content(fr.image, size, f"video {inp}", upscale) if fr.index >= content_from else None
        if times is not None:
            times.decode += time.perf_counter() - t0
        yield SourceFrame(fr, src)


def run(vs: VideoStylizer, source: Iterable[SourceFrame], sink: Sink, store: WorkDir | None = None,
        times: StageTimes | None = None) -> None:
    """Each frame of ``source`` through the policy, in order, to ``sink`` (``steps``). The sink
    saves what it keeps."""
    for step in steps(vs, source, store, times):
        sink(step)


def steps(vs: VideoStylizer, source: Iterable[SourceFrame], store: WorkDir | None = None,
          times: StageTimes | None = None) -> Iterator[Step]:
    """Each frame of ``source`` through the policy, in order: stylized (warm-started from the
    frames before it), or restored from ``store`` when an earlier run finished it. Either way it
    joins the warm-start history."""
    for sf in source:
        if sf.content is None:
            yield Step(sf.frame, None, None, None)
            continue
        if store is not None:
            img, res = stylize_or_restore(vs, store, sf.frame.index, sf.content, sf.pairs, times, sf.frame.time)
        else:
            res = vs.frame(sf.frame.index, sf.content, sf.pairs, sf.frame.time)
            vs.push(sf.content, res.image)
            img = res.image
        yield Step(sf.frame, sf.content, img, res)


def save_frame(store: WorkDir, index: int, img: np.ndarray, cut: bool, ref: float | None) -> None:
    """Persist a finished frame with its markers; the PNG comes last, as it marks the frame done."""
    if cut:
        store.mark_cut(index)
    if ref is not None:
        store.save_ref_loss(index, ref)
    store.save(index, img)


def stylize_or_restore(vs: VideoStylizer, store: WorkDir, index: int, src: np.ndarray,
                       pairs: dict[int, FramePair] | None = None,
                       stages: StageTimes | None = None,
                       when: float | None = None) -> tuple[np.ndarray, FrameResult | None]:
    """Frame ``index`` from ``store`` when an earlier run finished it, restoring the warm-start
    state that run left (scene-cut reset, reference loss); else stylized now (the caller saves
    it, with ``save_frame``). Either way it joins the warm-start history. The result is None
    for restored frames."""
    stages = stages or StageTimes()
    t0 = time.perf_counter()
    res: FrameResult | None = None
    if store.has(index):
        img = store.load(index)
        was = vs.snapshot()
        ref = store.ref_loss(index)
        vs.restore(PolicyState(was.ref_loss if ref is None else ref, () if store.is_cut(index) else was.history))
    else:
        res = vs.frame(index, src, pairs, when)
        img = res.image
        t0 = time.perf_counter()  # (the io stage: restoring; a new frame is saved by the caller)
    stages.io += time.perf_counter() - t0
    vs.push(src, img)
    return img, res
