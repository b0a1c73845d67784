"""A video rendered into a file: streamed (decode -> flow -> stylize -> encode on their own
threads), saved frame by frame into a work folder whose chunks resume an interrupted render,
and muxed with the source's audio at the end."""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from videostyle import interrupt
from videostyle.factory import ahead_workers, build_video_stylizer, load_styles, render_plan
from videostyle.errors import InputError, RenderInterrupted, setting
from videostyle.io import durable
from videostyle.io.images import write_image
from videostyle.io.media import Frame
from videostyle.io.codecs import chunk_suffix
from videostyle.io.mux import VideoWriter
from videostyle.io.workdir import WorkDir
from videostyle.render import chain
from videostyle.render.chain import SourceFrame, Step
from videostyle.render.output import VideoJob, finish_writer, open_writer, output_alpha, output_frame, plan_video
from videostyle.render.scan import BackgroundScan
from videostyle.render.resume import Chunks, ResumePlan, plan_resume
from videostyle.render.spec import RenderSpec, record
from videostyle.render.settle import StartSettler, settle_frames
from videostyle.render.stages import Encoder, Inline, InlineEncoder, Saver, Stage, Stopped, join
from videostyle.events import Tee
from videostyle.report import FrameDone, RenderResult, Reporter, STIterate
from videostyle.temporal.flow import FramePair
from videostyle.render.chain import save_frame
from videostyle.render.policy import FrameResult, VideoStylizer, flow_pairs

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    from videostyle.gatys.stylizer import Stylizer


def flow_workers(spec: RenderSpec, vs: VideoStylizer) -> int:
    """Frames whose flow is computed at once: ``flow.workers``, or for 0, 1 when the stylizer
    runs on the CPU (it uses every core) and up to 4 beside a GPU (a quarter of the cores)."""
    if vs.runs_ahead:
        return ahead_workers(spec, vs.engine.on_gpu) or 1
    if spec.flow_workers:
        return spec.flow_workers
    if not vs.engine.optimises or not vs.engine.on_gpu:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // 4))


class _ScanFeed(Tee):
    """The render's reporter, checking before each iteration event whether the scan is done."""

    def __init__(self, inner: Reporter, found: Callable[[], None]) -> None:
        super().__init__([inner])
        self.found = found

    def iterate(self, it: STIterate) -> None:
        self.found()
        super().iterate(it)


# A flow worker's result: flow pairs, their seconds, the fast engine's output computed ahead (or
# None) and its seconds.
_Prepared = tuple[dict[int, FramePair], float, "np.ndarray | None", float]


class _VideoRender:
    """One video render. Setup does every check that can fail before work starts (a failed start
    leaves nothing behind); ``run`` streams the frames through the stages and muxes the chunks;
    ``abort`` is the one cleanup path."""

    def __init__(self, inp: Path, out: Path, spec: RenderSpec, reporter: Reporter, restart: bool, overwrite: bool,
                 stylizer: Stylizer | None) -> None:
        self.inp, self.out, self.spec = inp, out, spec
        # The scan's motion and cuts reach the estimate at the first iteration after the scan
        # ends (frame 0's, usually), on the thread that renders: not at frame 0's end.
        self.scan: BackgroundScan | None = None
        self.reporter: Reporter = _ScanFeed(reporter, self.scan_found)
        self.job: VideoJob = plan_video(inp, out, spec.output, overwrite, reporter.notice)
        self.total = self.job.span.count(inp, self.job.info)
        self.vs = build_video_stylizer(spec, load_styles(spec.engine.styles), self.reporter, stylizer, self.job.info, ahead=True)
        self.work = WorkDir(out, record(spec, inp, self.job.info))
        self.work.open(restart)
        self.gaps = self.vs.gaps()
        keep = max(self.gaps)  # finished frames a resume needs before its first new frame (warm start)
        self.resume: ResumePlan = plan_resume(self.work, keep)
        if self.resume.kept:
            reporter.notice(f"resuming {out.name}: {self.resume.kept} finished frame(s) kept in {self.work.path}")
        if self.resume.ref_loss is not None:
            self.vs.resume_at(self.resume.ref_loss)
        # PNGs on up to 4 threads (none with --no-stage-threads), a quarter of the cores.
        self.saver = Saver(self.save, min(4, (os.cpu_count() or 1) // 4 + 1) if spec.stage_threads else 0)
        # temporal.settle: the first frames rendered in this run are held back (not saved, not
        # encoded) until the backward pass replaces them.
        self.settler = StartSettler(self.vs, settle_frames(self.vs.spec.settle_seconds, self.vs.engine.optimises, self.job.info.fps, self.total),
                                    reporter.notice, reporter.frame)
        self.chunks = Chunks(self.work, self.job, out, keep, reporter.notice, chunk_frames=spec.chunk_frames,
                             loop=spec.loop, before_close=self.saver.flush)
        self.preview = out.with_name(f"{out.stem}.preview.png")
        self.stages = self.vs.stages  # (the policy's own: flow and blend add to it)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.encoder: Encoder | InlineEncoder | None = None
        self.writer: VideoWriter | None = None  # the output's muxer, once the chunks are done
        self.enc_io = 0.0  # work-folder writes behind the encoding stage
        self.io_lock = threading.Lock()
        self.n_frames, self.last_time = 0, None  # frames read from the source, the last one's time
        self.iterations: list[int] = []  # of the frames stylized now
        self.frame_secs: list[float] = []

    # -- the stages

    def decoded(self) -> Iterator[SourceFrame]:
        """Source frames with their content at the stylized size (none for frames in closed chunks)."""
        c = self.spec
        return chain.decoded(self.inp, self.job.span, self.job.info, c.size, c.upscale, self.reporter.notice,
                             content_from=self.resume.skip, times=self.stages, strict=c.strict)

    def with_flow(self, items: Iterator[SourceFrame]) -> Iterator[SourceFrame]:
        """Each frame with its flow to the earlier frames it needs, computed once and reused for
        the init, the mask, the scene-cut test and the loss; with several flow workers, that
        many frames are computed at once and handed on in order. The fast engine's network runs
        here too, ahead of the frame order, when it can (``VideoStylizer.runs_ahead``)."""
        workers = flow_workers(self.spec, self.vs) if self.spec.stage_threads else 1
        hist: deque[np.ndarray] = deque(maxlen=max(self.gaps))
        pending: deque[tuple[Frame, np.ndarray | None, Future[_Prepared]]] = deque()
        vs = self.vs

        def prepare(src: np.ndarray | None, earlier: dict[int, np.ndarray], ahead: bool, when: float) -> _Prepared:
            pairs, seconds = flow_pairs(src, earlier, vs.spec.flow)
            out, model_seconds = vs.ahead(src, when) if ahead and src is not None else (None, 0.0)
            return pairs, seconds, out, model_seconds

        def take() -> SourceFrame:
            fr, src, fut = pending.popleft()
            pairs, seconds, out, model_seconds = fut.result()
            self.stages.flow += seconds
            if out is not None:
                vs.take_ahead(fr.index, out)
                self.stages.model += model_seconds
            return SourceFrame(fr, src, pairs)

        with ThreadPoolExecutor(workers, thread_name_prefix="videostyle-flow") if workers > 1 else Inline() as pool:
            for item in items:
                fr, src = item.frame, item.content
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
        final = output_frame(img, self.job)
        self.chunks.write(fr.index, final, fr.pts, output_alpha(fr.alpha, self.job))
        self.stages.encode += time.perf_counter() - te
        every = self.spec.preview_every
        if every and save is not None and fr.index % every == 0:
            write_image(self.preview, final)

    def save(self, item: tuple[int, np.ndarray, tuple[bool, float | None]]) -> None:
        """A new frame's PNG and markers (on the saver's threads)."""
        index, img, (cut, ref) = item
        ts = time.perf_counter()
        save_frame(self.work, index, img, cut, ref)
        with self.io_lock:
            self.enc_io += time.perf_counter() - ts  # apart from stages.io, which the main thread adds to

    def start_stages(self) -> Iterator[SourceFrame]:
        """The frames, decoded and with flow: on their own threads with bounded queues (the
        stylizer only waits when they fall behind), or inline."""
        if not self.spec.stage_threads:
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
        started = time.perf_counter()
        self.reporter.begin(self.total, str(self.inp))
        self.plan = render_plan(self.vs.spec, self.vs.engine, self.total, self.job.stylized, self.settler.k,
                                self.resume.kept)
        if self.vs.engine.optimises and (self.total or 0) > 1 and self.spec.stage_threads:
            # Beside frame 0: the estimate's motion and scene cuts (render.scan).
            self.scan = BackgroundScan(self.inp, self.spec.scan, self.job.span, self.job.info)
            self.plan = dataclasses.replace(self.plan, scanning=True)
        self.reporter.plan(self.plan)
        if self.scan is not None:
            self.scan.start()
        try:
            chain.run(self.vs, self.waited(self.start_stages()), self.take, store=self.work, times=self.stages)
            assert self.encoder is not None
            self.release(self.settler.finish())
            self.encoder.close()
            self.saver.close()
            if self.n_frames == 0:
                raise InputError(f"input {self.inp} has no video frames in the requested span")
            if self.spec.loop and self.n_frames > 1:
                self.loop(min(self.spec.loop, self.n_frames))
            self.mux(self.last_time)
        except KeyboardInterrupt as exc:
            self.abort()
            raise RenderInterrupted(
                f"interrupted{interrupt.by(exc)}; {self.work.finished()} finished frame(s) are kept in "
                f"{self.work.path}: run the same command again to resume", exit_code=interrupt.exit_code(exc)) from None
        except BaseException:
            self.abort()
            raise
        finally:
            if self.scan is not None:
                self.scan.cancel()
        self.vs.close()
        self.reporter.end()
        self.work.remove()
        st = self.stages
        st.stylize = max(sum(self.frame_secs) - (0.0 if self.spec.stage_threads else st.flow), 0.0)
        st.io += self.enc_io
        return RenderResult(self.out, self.n_frames, time.perf_counter() - started, self.iterations, st,
                            tuple(self.frame_secs))

    def scan_found(self) -> None:
        """The scan's motion and cuts into the plan, once it is done (a second ``plan`` event; one
        without them where the scan failed, so that the estimate stops waiting for it)."""
        if self.scan is None or not self.plan.scanning or self.scan.is_alive():
            return
        found = self.scan.result
        self.plan = dataclasses.replace(self.plan, scanning=False, motion=found.unreliable if found else (),
                                        cuts=found.cuts if found else ())
        self.reporter.plan(self.plan)

    def waited(self, source: Iterator[SourceFrame]) -> Iterator[SourceFrame]:
        """``source``, adding the time the stylizer waits on it to ``stages.waiting``; a stage
        that failed and stopped the others raises its error here."""
        assert self.encoder is not None
        while True:
            tw = time.perf_counter()
            try:
                item = next(source, None)
            except Stopped:
                raise self.encoder.error or RenderInterrupted("render stopped") from None
            self.stages.waiting += time.perf_counter() - tw
            if item is None:
                return
            self.n_frames, self.last_time = self.n_frames + 1, item.frame.time
            yield item

    def take(self, step: Step) -> None:
        """The sink: a frame through the policy, held back for settling or handed to the encoding
        stage (with its PNG to save when it is new), and reported."""
        assert self.encoder is not None
        self.scan_found()
        fr, img, res = step.frame, step.image, step.result
        if res is not None:
            self.frame_secs.append(res.seconds)
            self.iterations.append(res.iterations)
        resumed = FrameDone(fr.index, self.total, 0, 0.0, float("nan"), resumed=True)
        if step.content is None:  # in a closed chunk
            self.reporter.frame(resumed)
            return
        assert img is not None
        done = resumed if res is None else FrameDone(fr.index, self.total, res.iterations, res.seconds, res.loss,
                                                     res.restarted)
        if self.settler.hold(fr, step.content, res):
            self.reporter.frame(done)
            return
        self.release(self.settler.at(fr, step.content, img))
        if res is None:
            if fr.index >= self.resume.covered:  # kept as PNG: goes into the open chunk again
                self.encoder.put((fr, img, None))
        else:
            self.encoder.put((fr, img, (res.restarted, res.ref_loss)))
        self.reporter.frame(done)

    def loop(self, k: int) -> None:
        """--loop: render frames 0 .. k-1 again after the last one, each warm-started from the one
        before (frame 0 from the last frame, through their flow), and put them in place of the
        first chunk (which --loop makes exactly those frames). Until that chunk is replaced the
        old one stays: an interrupted loop pass is done again on resume."""
        self.chunks.close()
        self.reporter.notice(f"{setting('loop')}: rendering frames 0-{k - 1} again from the last frame")
        path = self.work.chunks / f"loop.open{chunk_suffix(self.out)}"
        writer = open_writer(None, path, self.job, self.reporter.notice)
        c = self.spec
        frames = chain.decoded(self.inp, self.job.span, self.job.info, c.size, c.upscale, lambda m: None,
                               strict=c.strict)  # (the first pass said it all)
        try:
            chain.run(self.vs, itertools.islice(frames, k),
                      lambda step: writer.write(output_frame(step.image, self.job), step.frame.pts,  # type: ignore[arg-type]
                                                output_alpha(step.frame.alpha, self.job)))
            done = writer.finish()
        except BaseException:
            writer.abort()
            raise
        durable.replace(done, self.work.chunk_path(0, k, chunk_suffix(self.out)), synced=True)

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
        if not self.job.muxed:  # the frames are in place: nothing to mux
            return
        parts = self.chunks.parts()
        self.writer = open_writer(self.inp, self.out, self.job, self.reporter.notice, template=parts[0])
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


def render_video(inp: str | os.PathLike[str], out: str | os.PathLike[str], spec: RenderSpec,
                 reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                 stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize a video into ``out``, streaming, with the source's audio; resumable.

    With ``spec.stage_threads`` decoding, optical flow and encoding run on their own threads with
    bounded queues, so the stylizer (the main thread) only waits when they fall behind. Finished
    frames are saved and encoded into the work folder's chunks by the encoding stage; the output
    is muxed from the chunks with the audio at the end.
    """
    if spec.paintings:  # painted keyframes: passes around them (render.paint)
        from videostyle.render.paint import render_painted

        return render_painted(Path(inp), Path(out), spec, reporter or Reporter(), restart=restart, overwrite=overwrite)
    return _VideoRender(Path(inp), Path(out), spec, reporter or Reporter(), restart, overwrite, stylizer).run()
