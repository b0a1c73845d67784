"""Render jobs, top to bottom: an image, a video (decode -> flow -> stylize -> encode, streaming
and resumable), and one segment of a parallel render. Reports through a Reporter.

The per-frame policy lives in ``video``, the threads in ``stages``, the work folder's resume
logic in ``resume``, the output checks and writers in ``output``; this module wires them up.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from videostyle import interrupt
from videostyle.io import durable
from videostyle.config import Config
from videostyle.engines import build_engine, build_regions, first_init, load_styles, prepare_content
from videostyle.errors import ConfigError, DivergedError, InputError, OutputError, PipeClosed, RenderInterrupted
from videostyle.temporal.flow import FramePair
from videostyle.io.images import is_image_path, read_image, resize_image, write_image
from videostyle.io.media import Frame, probe
from videostyle.io.mux import PIPE_CLOSED, VideoWriter
from videostyle.render.output import (VideoJob, check_output, finish_writer, open_writer, output_frame, plan_pipe, plan_video,
                               span)
from videostyle.report import FrameDone, RenderResult, Reporter, StageTimes
from videostyle.render.resume import Chunks, ResumePlan, plan_resume, render_settings
from videostyle.render.stages import Encoder, Inline, InlineEncoder, Saver, Stage, Stopped, join
from videostyle.temporal.policy import (FrameResult, StartSettler, VideoStylizer, ahead_workers, build_video_stylizer,
                             flow_pairs, save_frame, settle_frames, stylize_or_restore)
from videostyle.io.workdir import WorkDir

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    from videostyle.gatys.stylizer import Stylizer


def render_image(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, stylizer: Stylizer | None = None, *,
                 overwrite: bool = True) -> RenderResult:
    """Stylize one image file into ``out``."""
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    content_full = read_image(inp, "input image")
    if not is_image_path(out):
        raise OutputError(f"output {out}: an image input needs an image output (.png or .jpg)")
    check_output(inp, out, overwrite)
    content = prepare_content(content_full, cfg.optim.size, f"input image {inp}", cfg.optim.upscale)
    engine = build_engine(cfg, load_styles(cfg), reporter.notice, stylizer)
    regions = build_regions(cfg)
    engine.set_regions(regions.frame(0, content.shape[:2]) if regions is not None else None)
    init = first_init(cfg)
    reporter.begin(1, str(inp))
    t0 = time.perf_counter()
    try:
        painted = engine.fresh(content, init, cfg.optim.seed, reporter.iterate)
    except DivergedError as exc:
        raise DivergedError(f"{inp}: {exc}") from None
    finally:
        engine.close()
    image, n_iter, loss = painted.image, painted.iterations, painted.loss
    if cfg.encode.output_size == "source":
        image = resize_image(image, content_full.shape[:2])
    write_image(out, image)
    secs = time.perf_counter() - t0
    reporter.frame(FrameDone(0, 1, n_iter, secs, loss))
    reporter.end()
    return RenderResult(out, 1, secs, [n_iter])


# ---------------------------------------------------------------- video


def flow_workers(cfg: Config, vs: VideoStylizer) -> int:
    """Frames whose flow is computed at once: ``flow.workers``, or for 0, 1 when the stylizer
    runs on the CPU (it uses every core) and up to 4 beside a GPU (a quarter of the cores)."""
    if vs.runs_ahead:
        return ahead_workers(cfg, vs.engine.on_gpu) or 1
    if cfg.flow.workers:
        return cfg.flow.workers
    if not vs.engine.optimises or not vs.engine.on_gpu:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // 4))


# A frame on its way: (source frame, content at the stylized size or None when skipped, flow pairs).
Item = tuple[Frame, "np.ndarray | None", dict[int, FramePair]]
# A flow worker's result: flow pairs, their seconds, the fast engine's output computed ahead (or
# None) and its seconds.
_Prepared = tuple[dict[int, FramePair], float, "np.ndarray | None", float]


class _VideoRender:
    """One video render. Setup does every check that can fail before work starts (a failed start
    leaves nothing behind); ``run`` streams the frames through the stages and muxes the chunks;
    ``abort`` is the one cleanup path."""

    def __init__(self, inp: Path, out: Path, cfg: Config, reporter: Reporter, restart: bool, overwrite: bool,
                 stylizer: Stylizer | None) -> None:
        self.inp, self.out, self.cfg, self.reporter = inp, out, cfg, reporter
        self.job: VideoJob = plan_video(inp, out, cfg, overwrite)
        self.total = self.job.span.count(inp, self.job.info)
        self.vs = build_video_stylizer(cfg, load_styles(cfg), reporter, stylizer, self.job.info, ahead=True)
        self.work = WorkDir(out, render_settings(cfg, inp))
        self.work.open(restart)
        self.gaps = self.vs.gaps()
        keep = max(self.gaps)  # finished frames a resume needs before its first new frame (warm start)
        self.resume: ResumePlan = plan_resume(self.work, keep)
        if self.resume.kept:
            reporter.notice(f"resuming {out.name}: {self.resume.kept} finished frame(s) kept in {self.work.path}")
        if self.resume.ref_loss is not None:
            self.vs.ref_loss = self.resume.ref_loss
        # PNGs on up to 4 threads (none with --no-stage-threads), a quarter of the cores.
        self.saver = Saver(self.save, min(4, (os.cpu_count() or 1) // 4 + 1) if cfg.render.stage_threads else 0)
        # temporal.settle: the first frames rendered in this run are held back (not saved, not
        # encoded) until the backward pass replaces them.
        self.settler = StartSettler(self.vs, settle_frames(cfg, self.vs, self.job.info.fps, self.total),
                                    reporter.notice)
        self.chunks = Chunks(self.work, cfg, self.job, out, keep, reporter.notice, before_close=self.saver.flush)
        self.preview = out.with_name(f"{out.stem}.preview.png")
        self.stages = self.vs.stages = StageTimes()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.encoder: Encoder | InlineEncoder | None = None
        self.writer: VideoWriter | None = None  # the output's muxer, once the chunks are done
        self.enc_io = 0.0  # work-folder writes behind the encoding stage
        self.io_lock = threading.Lock()

    # -- the stages

    def decoded(self) -> Iterator[tuple[Frame, np.ndarray | None]]:
        """Source frames with their content at the stylized size (None for frames in closed chunks)."""
        frames = self.job.span.frames(self.inp, warn=self.reporter.notice, info=self.job.info)
        while True:
            td = time.perf_counter()
            fr = next(frames, None)
            if fr is None:
                return
            src = (prepare_content(fr.image, self.cfg.optim.size, f"video {self.inp}", self.cfg.optim.upscale)
                   if fr.index >= self.resume.skip else None)
            self.stages.decode += time.perf_counter() - td
            yield fr, src

    def with_flow(self, items: Iterator[tuple[Frame, np.ndarray | None]]) -> Iterator[Item]:
        """Each frame with its flow to the earlier frames it needs, computed once and reused for
        the init, the mask, the scene-cut test and the loss; with several flow workers, that
        many frames are computed at once and handed on in order. The fast engine's network runs
        here too, ahead of the frame order, when it can (``VideoStylizer.runs_ahead``)."""
        workers = flow_workers(self.cfg, self.vs) if self.cfg.render.stage_threads else 1
        hist: deque[np.ndarray] = deque(maxlen=max(self.gaps))
        pending: deque[tuple[Frame, np.ndarray | None, Future[_Prepared]]] = deque()
        vs = self.vs

        def prepare(src: np.ndarray | None, earlier: dict[int, np.ndarray], ahead: bool, when: float) -> _Prepared:
            pairs, seconds = flow_pairs(src, earlier, vs.params)
            out, model_seconds = vs.ahead(src, when) if ahead and src is not None else (None, 0.0)
            return pairs, seconds, out, model_seconds

        def take() -> Item:
            fr, src, fut = pending.popleft()
            pairs, seconds, out, model_seconds = fut.result()
            self.stages.flow += seconds
            if out is not None:
                vs.ready[fr.index] = out
                self.stages.model += model_seconds
            return fr, src, pairs

        with ThreadPoolExecutor(workers, thread_name_prefix="videostyle-flow") if workers > 1 else Inline() as pool:
            for fr, src in items:
                resumed = fr.index < self.resume.kept  # restored frames need no flow
                earlier = {g: hist[-g] for g in self.gaps if len(hist) >= g} if not resumed else {}
                if src is not None:
                    hist.append(src)
                ahead = vs.runs_ahead and workers > 1 and not resumed
                pending.append((fr, src, pool.submit(prepare, src, earlier, ahead, fr.time)))
                while len(pending) >= workers or (pending and pending[0][2].done()):
                    yield take()
            while pending:
                yield take()

    def encode(self, item: tuple[Frame, np.ndarray, tuple[bool, float | None] | None]) -> None:
        """The encoding stage: save the frame's PNG (new frames), then encode it into the open
        chunk, so a closed chunk's frames are all on disk."""
        fr, img, save = item
        if save is not None:
            self.saver.put((fr.index, img, save))
        te = time.perf_counter()
        final = output_frame(img, self.cfg, self.job)
        self.chunks.write(fr.index, final, fr.pts)
        self.stages.encode += time.perf_counter() - te
        every = self.cfg.render.preview_every
        if every and save is not None and fr.index % every == 0:
            write_image(self.preview, final)

    def save(self, item: tuple[int, np.ndarray, tuple[bool, float | None]]) -> None:
        """A new frame's PNG and markers (on the saver's threads)."""
        index, img, (cut, ref) = item
        ts = time.perf_counter()
        save_frame(self.work, index, img, cut, ref)
        with self.io_lock:
            self.enc_io += time.perf_counter() - ts  # apart from stages.io, which the main thread adds to

    def start_stages(self) -> Iterator[Item]:
        """The frames, decoded and with flow: on their own threads with bounded queues (the
        stylizer only waits when they fall behind), or inline."""
        if not self.cfg.render.stage_threads:
            self.encoder = InlineEncoder(self.encode)
            return self.with_flow(self.decoded())
        dec = Stage("decode", self.decoded(), 4, self.stop)
        flo = Stage("flow", self.with_flow(dec.items_out()), 4, self.stop)
        self.threads = [dec, flo]
        for th in self.threads:
            th.start()
        self.encoder = Encoder(self.encode, self.stop)
        return flo.items_out()

    # -- the render

    def run(self) -> RenderResult:
        iterations: list[int] = []
        frame_secs: list[float] = []
        started = time.perf_counter()
        waited = 0.0
        n_frames, last_time = 0, None
        self.reporter.begin(self.total, str(self.inp))
        try:
            source = self.start_stages()
            assert self.encoder is not None
            while True:
                tw = time.perf_counter()
                try:
                    item = next(source, None)
                except Stopped:  # a background stage failed and stopped the others
                    raise self.encoder.error or RenderInterrupted("render stopped") from None
                waited += time.perf_counter() - tw
                if item is None:
                    break
                fr, src, pairs = item
                n_frames, last_time = n_frames + 1, fr.time
                done = self.frame(fr, src, pairs)
                if not done.resumed:
                    frame_secs.append(done.seconds)
                    iterations.append(done.iterations)
                self.reporter.frame(done)
            self.release(self.settler.finish())
            self.encoder.close()
            self.saver.close()
            if n_frames == 0:
                raise InputError(f"input {self.inp} has no video frames in the requested span")
            if self.cfg.temporal.loop and n_frames > 1:
                self.loop(min(self.cfg.temporal.loop, n_frames))
            self.mux(last_time)
        except KeyboardInterrupt as exc:
            self.abort()
            raise RenderInterrupted(
                f"interrupted{interrupt.by(exc)}; {self.work.finished()} finished frame(s) are kept in "
                f"{self.work.path}: run the same command again to resume", exit_code=interrupt.exit_code(exc)) from None
        except BaseException:
            self.abort()
            raise
        self.vs.close()
        self.reporter.end()
        self.work.remove()
        st = self.stages
        st.stylize = max(sum(frame_secs) - (0.0 if self.cfg.render.stage_threads else st.flow), 0.0)
        st.waiting = waited
        st.io += self.enc_io
        return RenderResult(self.out, n_frames, time.perf_counter() - started, iterations, st, tuple(frame_secs))

    def frame(self, fr: Frame, src: np.ndarray | None, pairs: dict[int, FramePair]) -> FrameDone:
        """Stylize (or restore) one frame and hand it to the encoding stage."""
        assert self.encoder is not None
        resumed = FrameDone(fr.index, self.total, 0, 0.0, float("nan"), resumed=True)
        if fr.index < self.resume.skip:  # in a closed chunk
            return resumed
        assert src is not None
        img, res = stylize_or_restore(self.vs, self.work, fr.index, src, pairs, self.stages, save=False,
                                      when=fr.time)
        if self.settler.hold(fr, src, res):
            assert res is not None
            return FrameDone(fr.index, self.total, res.iterations, res.seconds, res.loss, res.restarted)
        self.release(self.settler.at(fr, src, img))
        if res is None:
            if fr.index >= self.resume.covered:  # kept as PNG: goes into the open chunk again
                self.encoder.put((fr, img, None))
            return resumed
        self.encoder.put((fr, img, (res.restarted, res.ref_loss)))
        return FrameDone(fr.index, self.total, res.iterations, res.seconds, res.loss, res.restarted)

    def loop(self, k: int) -> None:
        """--loop: render frames 0 .. k-1 again after the last one, each warm-started from the one
        before (frame 0 from the last frame, through their flow), and put them in place of the
        first chunk (which --loop makes exactly those frames). Until that chunk is replaced the
        old one stays: an interrupted loop pass is done again on resume."""
        self.chunks.close()
        self.reporter.notice(f"--loop: rendering frames 0-{k - 1} again from the last frame")
        path = self.work.chunks / f"loop.open{self.out.suffix}"
        writer = open_writer(None, path, self.cfg, self.job, self.reporter.notice)
        try:
            for fr in self.job.span.frames(self.inp, warn=self.reporter.notice, info=self.job.info):
                if fr.index >= k:
                    break
                src = prepare_content(fr.image, self.cfg.optim.size, f"video {self.inp}", self.cfg.optim.upscale)
                res = self.vs.frame(fr.index, src, None, fr.time)
                self.vs.push(src, res.image)
                writer.write(output_frame(res.image, self.cfg, self.job), fr.pts)
            done = writer.finish()
        except BaseException:
            writer.abort()
            raise
        durable.replace(done, self.work.chunk_path(0, k, self.out.suffix), synced=True)

    def release(self, settled: list[tuple[Frame, FrameResult, np.ndarray]]) -> None:
        """Settled frames: saved (in order, before anything after them, so that a resume finds
        them settled) and handed to the encoding stage."""
        assert self.encoder is not None
        for fr, res, img in settled:
            save_frame(self.work, fr.index, img, res.restarted, res.ref_loss)
        for fr, _, img in settled:
            self.encoder.put((fr, img, None))

    def mux(self, last_time: float | None) -> None:
        """The output from the closed chunks' packets, with the source's audio."""
        t0 = time.perf_counter()
        self.chunks.close()
        parts = self.chunks.parts()
        self.writer = open_writer(self.inp, self.out, self.cfg, self.job, self.reporter.notice, template=parts[0])
        for part in parts:
            self.writer.copy_video(part)
        finish_writer(self.writer, self.job, last_time)
        self.stages.encode += time.perf_counter() - t0

    def abort(self) -> None:
        """Stop every stage; the frames already handed to the encoder are still saved (finished
        work); the open chunk and a half-written output are removed."""
        self.stop.set()
        self.vs.close()  # first: a flow thread may be waiting on the fast network's processes
        join(self.threads)
        if self.encoder is not None:
            self.encoder.halt()
        self.saver.halt()
        self.chunks.abort()
        if self.writer is not None:
            self.writer.abort()
        self.reporter.end()


def render_pipe(inp: str | os.PathLike[str], out: str | os.PathLike[str] | None, cfg: Config,
                reporter: Reporter | None = None, *, stream: BinaryIO | None = None, fmt: str | None = None,
                overwrite: bool = True, stylizer: Stylizer | None = None) -> RenderResult:
    """A render with a pipe on one side (standard input spooled to ``inp``, or standard output
    as ``stream`` in container ``fmt``): no work folder and no resume. Frames are stylized in
    order and encoded straight into the output with the source's audio, so a player reading
    the pipe starts with the first frame."""
    reporter = reporter or Reporter()
    inp = Path(inp)
    if cfg.temporal.loop:
        raise ConfigError("--loop needs a work folder, which pipes do not have; render to a file")
    if stream is not None:
        assert fmt is not None
        job = plan_pipe(inp, fmt, cfg)
        target = Path("-")
    else:
        assert out is not None
        target = Path(out)
        job = plan_video(inp, target, cfg, overwrite)
    vs = build_video_stylizer(cfg, load_styles(cfg), reporter, stylizer, job.info)
    total = job.span.count(inp, job.info)
    writer = open_writer(inp, target, cfg, job, reporter.notice, stream=stream, fmt=fmt)
    started = time.perf_counter()
    iterations: list[int] = []
    secs: list[float] = []
    last_time = None
    reporter.begin(total, str(inp))
    try:
        for fr in job.span.frames(inp, warn=reporter.notice, info=job.info):
            src = prepare_content(fr.image, cfg.optim.size, f"video {inp}", cfg.optim.upscale)
            res = vs.frame(fr.index, src, None, fr.time)
            vs.push(src, res.image)
            writer.write(output_frame(res.image, cfg, job), fr.pts)
            iterations.append(res.iterations)
            secs.append(res.seconds)
            last_time = fr.time
            reporter.frame(FrameDone(fr.index, total, res.iterations, res.seconds, res.loss, res.restarted))
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


def render_video(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                 stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize a video into ``out``, streaming, with the source's audio; resumable.

    With ``render.stage_threads`` decoding, optical flow and encoding run on their own threads with
    bounded queues, so the stylizer (the main thread) only waits when they fall behind. Finished
    frames are saved and encoded into the work folder's chunks by the encoding stage; the output
    is muxed from the chunks with the audio at the end.
    """
    return _VideoRender(Path(inp), Path(out), cfg, reporter or Reporter(), restart, overwrite, stylizer).run()


# ---------------------------------------------------------------- segments (parallel renders)


def stylize_segment(inp: str | os.PathLike[str], cfg: Config, store: WorkDir, begin: int, end: int,
                    reporter: Reporter | None = None, stylizer: Stylizer | None = None,
                    total: int | None = None) -> int:
    """Stylize source frames ``begin`` .. ``end - 1`` (indices within the render's span) into
    ``store``, starting fresh at ``begin`` and warm-starting after it; frames already in the store
    are kept (resume). The segment at the span's start settles it as a single-process render
    does (temporal.settle; ``total``: the span's frames). Returns the number of frames stylized now."""
    reporter = reporter or Reporter()
    info = probe(inp)
    vs = build_video_stylizer(cfg, load_styles(cfg), reporter, stylizer, info)
    settler = StartSettler(vs, settle_frames(cfg, vs, info.fps, total) if begin == 0 else 0, reporter.notice)
    done_until = begin + store.count(begin)
    if done_until >= end:
        return 0
    first = max(begin, done_until - max(vs.gaps()))  # earlier frames cannot be in the warm-start history
    ref = store.latest_ref_loss(begin, done_until)
    if ref is not None:
        vs.ref_loss = ref
    made = 0
    for fr in dataclasses.replace(span(cfg), max_frames=end).frames(inp, skip=first, warn=reporter.notice):
        src = prepare_content(fr.image, cfg.optim.size, f"video {inp}", cfg.optim.upscale)
        img, res = stylize_or_restore(vs, store, fr.index, src, save=fr.index >= settler.k, when=fr.time)
        if not settler.hold(fr, src, res):
            for h, r, im in settler.at(fr, src, img):
                save_frame(store, h.index, im, r.restarted, r.ref_loss)
        if res is not None:
            made += 1
            reporter.frame(FrameDone(fr.index, end - begin, res.iterations, res.seconds, res.loss, res.restarted))
    for h, r, im in settler.finish():  # the segment ended before frame k
        save_frame(store, h.index, im, r.restarted, r.ref_loss)
    return made

