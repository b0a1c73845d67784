"""Render jobs, top to bottom: an image, a video into a file (``render.video``), a video through
a pipe, and one segment of a parallel render. Reports through a Reporter. Every video job runs
its frames through the one loop of ``render.chain``, with its own source and sink."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from videostyle.factory import (build_engine, build_regions, build_video_stylizer, engine_type, load_styles, prepare_content,
                                render_plan)
from videostyle.estimate import WARMUP_ITERATIONS, Estimate, Estimating
from videostyle.errors import ConfigError, DivergedError, InputError, OutputError, PipeClosed, setting
from videostyle.io.images import is_image_path, read_image, resize_image, write_image
from videostyle.io.mux import PIPE_CLOSED
from videostyle.io.workdir import WorkDir
from videostyle.render import chain
from videostyle.render.chain import Step
from videostyle.render.output import (check_output, finish_writer, open_writer, output_alpha, output_frame, plan_pipe,
                                      plan_video, probe_input)
from videostyle.render.spec import RenderSpec
from videostyle.render.settle import StartSettler, settle_frames
from videostyle.render.video import render_video
from videostyle.report import FrameDone, RenderResult, Reporter, StageTimes
from videostyle.render.chain import save_frame

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    from videostyle.gatys.stylizer import Stylizer

__all__ = ["Still", "render_image", "render_pipe", "render_video", "stylize_image", "stylize_segment"]


def render_image(inp: str | os.PathLike[str], out: str | os.PathLike[str], spec: RenderSpec,
                 reporter: Reporter | None = None, stylizer: Stylizer | None = None, *,
                 overwrite: bool = True) -> RenderResult:
    """Stylize one image file into ``out``."""
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    content_full = read_image(inp, "input image", spec.max_pixels)
    if not is_image_path(out):
        raise OutputError(f"output {out}: an image input needs an image output (.png or .jpg)")
    check_output(inp, out, overwrite)
    still = stylize_image(content_full, spec, reporter, what=f"input image {inp}", stylizer=stylizer)
    write_image(out, still.image)
    return RenderResult(out, 1, still.seconds, [still.iterations])


@dataclasses.dataclass(frozen=True)
class Still:
    """One picture stylized: the image (RGB uint8), its iterations, final loss and seconds."""

    image: np.ndarray
    iterations: int
    loss: float
    seconds: float


def stylize_image(content_full: np.ndarray, spec: RenderSpec, reporter: Reporter | None = None, *,
                  what: str = "image", styles: list[np.ndarray] | None = None,
                  stylizer: Stylizer | None = None, init: np.ndarray | None = None) -> Still:
    """Stylize one picture (RGB uint8) as ``spec`` says: the one still-image render, which an
    image file's render, the API's ``stylize`` and the previews share. ``styles``: the style
    pictures (default: ``spec``'s style images, read); ``stylizer``: a loaded network to reuse;
    ``init``: a picture at the stylized size to start from (default: ``spec``'s init)."""
    reporter = reporter or Reporter()
    content = prepare_content(content_full, spec.size, what, spec.upscale)
    engine = build_engine(spec.engine, load_styles(spec.engine.styles) if styles is None else styles, reporter.notice,
                          stylizer)
    regions = build_regions(spec.engine.styles)
    engine.set_regions(regions.frame(0, content.shape[:2]) if regions is not None else None)
    policy = spec.policy_for(None)
    init = policy.first_init if init is None else init
    reporter.begin(1, what)
    reporter.plan(render_plan(policy, engine, 1, content.shape[:2]))
    t0 = time.perf_counter()
    try:
        painted = engine.fresh(content, init, policy.seed, reporter.iterate)
    except DivergedError as exc:
        raise DivergedError(f"{what}: {exc}") from None
    finally:
        engine.close()
    image = painted.image
    if spec.at_source_size:
        image = resize_image(image, content_full.shape[:2])
    secs = time.perf_counter() - t0
    reporter.frame(FrameDone(0, 1, painted.iterations, secs, painted.loss))
    reporter.end()
    return Still(image, painted.iterations, painted.loss, secs)


def render_pipe(inp: str | os.PathLike[str], out: str | os.PathLike[str] | None, spec: RenderSpec,
                reporter: Reporter | None = None, *, stream: BinaryIO | None = None, fmt: str | None = None,
                overwrite: bool = True, stylizer: Stylizer | None = None) -> RenderResult:
    """A render with a pipe on one side (standard input spooled to ``inp``, or standard output
    as ``stream`` in container ``fmt``): no work folder and no resume. Frames are stylized in
    order and encoded straight into the output with the source's audio, so a player reading
    the pipe starts with the first frame."""
    reporter = reporter or Reporter()
    inp = Path(inp)
    if spec.loop:
        raise ConfigError(f"{setting('loop')} needs a work folder, which pipes do not have; render to a file")
    if stream is not None:
        assert fmt is not None
        job = plan_pipe(inp, fmt, spec.output, reporter.notice)
        target = Path("-")
    else:
        assert out is not None
        target = Path(out)
        job = plan_video(inp, target, spec.output, overwrite, reporter.notice)
        if not job.muxed:
            raise ConfigError("a video from standard input renders into a video file, not an image sequence")
    vs = build_video_stylizer(spec, load_styles(spec.engine.styles), reporter, stylizer, job.info)
    total = job.span.count(inp, job.info)
    writer = open_writer(inp, target, job, reporter.notice, stream=stream, fmt=fmt)
    started = time.perf_counter()
    iterations: list[int] = []
    secs: list[float] = []
    last_time = None
    reporter.begin(total, str(inp))
    reporter.plan(render_plan(vs.spec, vs.engine, total, job.stylized))

    def sink(step: Step) -> None:
        nonlocal last_time
        res = step.result
        assert res is not None and step.image is not None
        writer.write(output_frame(step.image, job), step.frame.pts, output_alpha(step.frame.alpha, job))
        iterations.append(res.iterations)
        secs.append(res.seconds)
        last_time = step.frame.time
        reporter.frame(FrameDone(step.frame.index, total, res.iterations, res.seconds, res.loss, res.restarted))

    try:
        chain.run(vs, chain.decoded(inp, job.span, job.info, spec.size, spec.upscale, reporter.notice,
                                    strict=spec.strict), sink)
        if not iterations:
            raise InputError(f"input {inp} has no video frames in the requested span")
        finish_writer(writer, job, last_time)
    except BrokenPipeError:  # (a frame's packets are muxed unwrapped; finish wraps it in PipeClosed)
        writer.abort()
        raise PipeClosed(PIPE_CLOSED) from None
    except BaseException:
        writer.abort()
        raise
    finally:
        vs.close()
        reporter.end()
    return RenderResult(target, len(iterations), time.perf_counter() - started, iterations, StageTimes(),
                        tuple(secs))


# ---------------------------------------------------------------- segments (parallel renders)


def stylize_segment(inp: str | os.PathLike[str], spec: RenderSpec, store: WorkDir, begin: int, end: int,
                    reporter: Reporter | None = None, stylizer: Stylizer | None = None,
                    total: int | None = None) -> int:
    """Stylize source frames ``begin`` .. ``end - 1`` (indices within the render's span) into
    ``store``, starting fresh at ``begin`` and warm-starting after it; frames already in the store
    are kept (resume). The segment at the span's start settles it as a single-process render
    does (temporal.settle; ``total``: the span's frames). Returns the number of frames stylized now."""
    reporter = reporter or Reporter()
    info = probe_input(Path(inp), spec.output)
    vs = build_video_stylizer(spec, load_styles(spec.engine.styles), reporter, stylizer, info)
    settler = StartSettler(vs, settle_frames(vs.spec.settle_seconds, vs.engine.optimises, info.fps, total) if begin == 0 else 0,
                           reporter.notice)
    done_until = begin + store.count(begin)
    if done_until >= end:
        return 0
    first = max(begin, done_until - max(vs.gaps()))  # earlier frames cannot be in the warm-start history
    ref = store.latest_ref_loss(begin, done_until)
    if ref is not None:
        vs.resume_at(ref)
    made = 0

    def sink(step: Step) -> None:
        nonlocal made
        fr, src, img, res = step.frame, step.content, step.image, step.result
        assert src is not None and img is not None
        if res is not None and fr.index >= settler.k:  # (frames below k are saved once settled)
            save_frame(store, fr.index, img, res.restarted, res.ref_loss)
        if not settler.hold(fr, src, res):
            for h, r, im in settler.at(fr, src, img):
                save_frame(store, h.index, im, r.restarted, r.ref_loss)
        if res is not None:
            made += 1
            reporter.frame(FrameDone(fr.index, end - begin, res.iterations, res.seconds, res.loss, res.restarted))

    frames = chain.decoded(inp, dataclasses.replace(spec.span, max_frames=end), info, spec.size, spec.upscale,
                           reporter.notice, skip=first, strict=spec.strict)
    chain.run(vs, frames, sink, store=store)
    for h, r, im in settler.finish():  # the segment ended before frame k
        save_frame(store, h.index, im, r.restarted, r.ref_loss)
    return made


def estimate_video(inp: Path, spec: RenderSpec) -> Estimate | None:
    """The estimate a render of ``inp`` would give (its first ``estimate`` event), from a few
    measured iterations of its first frame; None for an engine that does not optimise."""
    if not engine_type(spec.engine).optimises:
        return None
    info = probe_input(inp, spec.output)
    sp = spec.span
    frame = next(iter(chain.decoded(inp, sp, info, spec.size, spec.upscale, lambda m: None)), None)
    if frame is None or frame.content is None:
        raise InputError(f"input {inp} has no video frames in the requested span")
    short = spec.with_iterations(WARMUP_ITERATIONS + 2)
    engine = build_engine(short.engine, load_styles(short.engine.styles), lambda m: None)
    policy = spec.policy_for(info)
    got: list[Estimate] = []

    class Catch(Reporter):
        def estimate(self, e: Estimate) -> None:  # type: ignore[override]
            got.append(e)

    est = Estimating(Catch())
    total = sp.count(inp, info)
    settle = settle_frames(policy.settle_seconds, engine.optimises, info.fps, total)
    est.begin(total, str(inp))
    full = render_plan(policy, engine, total, frame.content.shape[:2], settle)
    est.plan(dataclasses.replace(full, first_iterations=policy.iterations))
    try:
        engine.fresh(frame.content, policy.first_init, policy.seed, est.iterate)
    finally:
        engine.close()
    return got[0] if got else None
