"""Render jobs: read inputs, drive the stylizer, write outputs. Reports through a Reporter."""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from videostyle.config import Config, to_dict
from videostyle.errors import ConfigError, InputError, OutputError, RenderInterrupted
from videostyle.flow import FlowParams, FramePair, blend, warp
from videostyle.flow import pair as flow_pair
from videostyle.images import is_image_path, read_image, write_image
from videostyle.media import (
    Frame, VideoInfo, VideoWriter, check_codec, container_format, count_frames, even_size, make_even, probe, read_frames,
)
from videostyle.fast import blend_temporal
from videostyle import durable, interrupt
from videostyle.stylize import (
    DivergedError,
    STIterate, preserve_colors, Stylizer, TemporalTerm, check_size, fit_size, resize, to_numpy, to_tensor, to_uint8,
)
from videostyle.workdir import WorkDir, file_digest


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


class Reporter:
    """Progress sink; the default ignores everything. The CLI subclasses it with tqdm bars."""

    def notice(self, message: str) -> None:
        """A one-line warning or note for the user."""

    def begin(self, total: int | None, what: str) -> None:
        """A render of ``total`` frames (None when unknown) starts."""

    def iterate(self, it: STIterate) -> None:
        """One optimiser iteration finished."""

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
    waiting: float = 0.0  # the stylizer (main thread) waiting for the next frame from decode/flow


@dataclass(frozen=True)
class RenderResult:
    output: Path
    frames: int
    seconds: float
    iterations: list[int]
    stages: StageTimes = field(default_factory=StageTimes)
    frame_seconds: tuple[float, ...] = ()  # stylize + flow wall time of each newly rendered frame


def check_output(inp: Path, out: Path, overwrite: bool = True) -> None:
    """The output path can be written: not the input, in a writable folder, and (ffmpeg's
    convention) not an existing file unless ``overwrite``."""
    if out.resolve() == inp.resolve():
        raise OutputError(f"output {out} is the input file; choose another output path with -o")
    if out.exists() and not out.is_dir() and not overwrite:
        raise OutputError(f"output {out} exists; pass --overwrite (or -y) to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist; create it or choose another -o")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable; choose another -o")
    if out.is_dir():
        raise OutputError(f"output {out} is a directory; give a file name with -o")


def random_model_notice(cfg: Config, reporter: Reporter) -> None:
    if cfg.model.name == "random":
        reporter.notice("warning: --model random uses untrained VGG weights; the result is not a real stylization")


def load_styles(cfg: Config) -> list[np.ndarray]:
    if not cfg.style.images:
        raise ConfigError("no style image given; pass --style IMAGE")
    return [read_image(p, "style image") for p in cfg.style.images]


def build_stylizer(cfg: Config, reporter: Reporter, stylizer: Stylizer | None = None) -> Stylizer:
    styles = load_styles(cfg)  # before the (slow) model load, so bad paths fail fast
    random_model_notice(cfg, reporter)
    st = stylizer or Stylizer(cfg)
    st.set_styles(styles, cfg.style.blend)
    st.notice = reporter.notice
    return st


def build_fast(cfg: Config, styles: list[np.ndarray]) -> Any:
    """The feed-forward engine for --method fast/hybrid (None for gatys)."""
    if cfg.fast.method == "gatys":
        return None
    from videostyle.fast import FastStylizer

    dev = "cpu" if cfg.render.device == "cpu" else "auto"
    fast = FastStylizer(dev, overlap=cfg.fast.tile_overlap, tiling=cfg.fast.tiling)
    fast.set_styles(styles, cfg.style.blend)
    return fast


def fast_image(cfg: Config, fast: Any, content: np.ndarray) -> np.ndarray:
    out = fast.stylize(content, cfg.fast.strength)
    if cfg.style.preserve_colors:
        out = preserve_colors(out, content)
    return out


def prepare_content(image: np.ndarray, size: int, what: str) -> np.ndarray:
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size)
    check_size(th, tw, what)
    if (th, tw) == (h, w):
        return image
    return to_uint8(to_numpy(resize(to_tensor(image), (th, tw))))


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
    content = prepare_content(content_full, cfg.optim.size, f"input image {inp}")
    styles = load_styles(cfg)
    fast = build_fast(cfg, styles)
    if cfg.fast.method == "fast":
        reporter.begin(1, str(inp))
        t0 = time.perf_counter()
        image = to_uint8(fast_image(cfg, fast, content))
        n_iter, loss = 0, float("nan")
    else:
        st = build_stylizer(cfg, reporter, stylizer)
        init: str | np.ndarray = cfg.optim.init
        iterations = cfg.optim.iterations
        if cfg.optim.init == "image":
            if not cfg.optim.init_image:
                raise ConfigError("--init image needs --init-image PATH")
            init = read_image(cfg.optim.init_image, "init image")
        reporter.begin(1, str(inp))
        t0 = time.perf_counter()
        if fast is not None:  # hybrid: the feed-forward result is the optimiser's starting point
            init = fast.stylize(content, cfg.fast.strength)
            iterations = cfg.fast.refine_iterations
        try:
            res = st.stylize(content, init, iterations=iterations, pyramid=fast is None, callback=reporter.iterate)
        except DivergedError as exc:
            raise DivergedError(f"{inp}: {exc}") from None
        image = to_uint8(res.image)
        n_iter, loss = res.iterations, res.loss
    if cfg.encode.output_size == "source" and image.shape[:2] != content_full.shape[:2]:
        image = to_uint8(to_numpy(resize(to_tensor(image), content_full.shape[:2])))
    write_image(out, image)
    secs = time.perf_counter() - t0
    reporter.frame(FrameDone(0, 1, n_iter, secs, loss))
    reporter.end()
    return RenderResult(out, 1, secs, [n_iter])


# ---------------------------------------------------------------- video




def flow_params(cfg: Config) -> FlowParams:
    f = cfg.flow
    return FlowParams(method=f.method, scale=f.scale, pyr_scale=f.pyr_scale, levels=f.levels, winsize=f.winsize,
                      iterations=f.flow_iterations, poly_n=f.poly_n, poly_sigma=f.poly_sigma, dis_preset=f.dis_preset)


def flow_workers(cfg: Config, vs: VideoStylizer) -> int:
    """Frames whose flow is computed at once: ``flow.workers``, or for 0, 1 when the stylizer
    runs on the CPU (it uses every core) and up to 4 beside a GPU (a quarter of the cores)."""
    if cfg.flow.workers:
        return cfg.flow.workers
    if vs.st is None or vs.st.device.type == "cpu":
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def _flow_pairs(src: np.ndarray | None, earlier: dict[int, np.ndarray],
                params: FlowParams) -> tuple[dict[int, FramePair], float]:
    t = time.perf_counter()
    pairs = {g: flow_pair(src, e, params) for g, e in earlier.items()} if src is not None else {}
    return pairs, time.perf_counter() - t


class _Inline:
    """An executor that runs each call at once (one flow worker, no threads)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            fut.set_exception(exc)
        return fut


def render_settings(cfg: Config, inp: Path) -> dict[str, Any]:
    """Everything that determines the stylized frames and their encoding (for resume); not
    progress or scheduling options."""
    d = to_dict(cfg)
    # Encode settings stay in: the work folder holds frames encoded with them.
    # Options that change neither the frames nor their encoding stay out (a resume may change them).
    d["render"] = {k: v for k, v in d["render"].items() if k not in ("preview_every", "stage_threads", "ray_address")}
    d["flow"] = {k: v for k, v in d["flow"].items() if k != "workers"}
    d["input"] = {"path": str(inp.resolve()), "digest": file_digest(inp, full=False)}
    d["styles"] = [file_digest(p) for p in cfg.style.images]
    weights = cfg.model.weights or os.environ.get("VIDEOSTYLE_WEIGHTS")
    if weights and Path(weights).is_file():
        st = Path(weights).stat()
        d["weights"] = {"path": str(Path(weights).resolve()), "size": st.st_size, "mtime": st.st_mtime}
    return d


class _History:
    """The last few (source, output) frame pairs at the stylized size, for warm starts and temporal terms."""

    def __init__(self, depth: int) -> None:
        self.pairs: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=depth)

    def push(self, src: np.ndarray, out: np.ndarray) -> None:
        self.pairs.append((src, out))

    def reset(self) -> None:
        self.pairs.clear()

    def get(self, gap: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.pairs[-gap] if gap <= len(self.pairs) else None


@dataclass(frozen=True)
class FrameResult:
    image: np.ndarray  # (H, W, 3) uint8 at the stylized size
    iterations: int
    loss: float
    restarted: bool  # a scene cut restarted this frame
    # Full-iteration frames (first, scene cuts): the reference loss later frames stop at (None otherwise).
    ref_loss: float | None = None
    seconds: float = 0.0  # wall time of the stylization, flow included


class VideoStylizer:
    """Per-frame logic of a video render: warm start, flow warping, temporal terms, scene cuts."""

    def __init__(self, cfg: Config, stylizer: Stylizer | None, fast: Any = None) -> None:
        self.cfg = cfg
        self.st = stylizer  # None for --method fast
        self.fast = fast  # feed-forward engine for fast / hybrid
        self.params = flow_params(cfg)
        self.hist = _History(depth=max(max(cfg.temporal.frames, default=1), 1))
        self.first_init: str | np.ndarray = cfg.optim.init
        self.callback: Callable[[STIterate], None] | None = None
        self.stages = StageTimes()
        self.ref_loss: float | None = None  # final loss of the last full-iteration frame

    def gaps(self) -> list[int]:
        """Earlier frames whose flow each frame needs: 1 always (init, scene cuts), more for long-term terms."""
        t = self.cfg.temporal
        return sorted({1} | (set(t.frames) if t.weight > 0 else set()))

    def _pair(self, a: np.ndarray, b: np.ndarray) -> FramePair:
        t = time.perf_counter()
        p = flow_pair(a, b, self.params)
        self.stages.flow += time.perf_counter() - t
        return p

    def push(self, src: np.ndarray, out: np.ndarray) -> None:
        self.hist.push(src, out)

    def full(self, index: int, src: np.ndarray, cut: bool = False) -> tuple[np.ndarray, int, float]:
        """First frame and scene cuts: full iterations (or the fast network, or fast + refinement)."""
        if self.st is None:
            return to_uint8(fast_image(self.cfg, self.fast, src)), 0, float("nan")
        init, iterations, pyramid = self.first_init, self.cfg.optim.iterations, True
        if cut and isinstance(init, np.ndarray):
            # --init-image is a picture for the first frame; a new shot starts from its own content
            # (--init noise stays noise: it is a look, applied to every fresh start).
            init = "content"
        if self.fast is not None:
            init = self.fast.stylize(src, self.cfg.fast.strength)
            iterations, pyramid = self.cfg.fast.refine_iterations, False
        res = self.st.stylize(src, init, iterations=iterations, pyramid=pyramid,
                              seed=self.cfg.optim.seed + index, callback=self.callback)
        self.ref_loss = res.loss
        return to_uint8(res.image), res.iterations, res.loss

    def frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair] | None = None) -> FrameResult:
        """Stylize frame ``index``; ``pairs`` are precomputed flows to earlier frames (by gap)."""
        t0 = time.perf_counter()
        try:
            res = self._frame(index, src, pairs or {})
        except DivergedError as exc:
            # Finished frames stay in the work folder; this one is never written as finished.
            raise DivergedError(f"frame {index}: {exc}") from None
        return dataclasses.replace(res, seconds=time.perf_counter() - t0)

    def _frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair]) -> FrameResult:
        t = self.cfg.temporal
        prev = self.hist.get(1)
        if prev is None:
            img, n, loss = self.full(index, src)
            return FrameResult(img, n, loss, False, ref_loss=self.ref_loss)
        prev_src, prev_out = prev
        p1 = pairs.get(1) or self._pair(src, prev_src)
        if p1.reliable < t.scene_cut:
            self.hist.reset()
            img, n, loss = self.full(index, src, cut=True)
            return FrameResult(img, n, loss, True, ref_loss=self.ref_loss)
        if self.st is None:
            # Feed-forward frames flicker; reliable pixels follow the warped previous output.
            new = fast_image(self.cfg, self.fast, src)
            w = self.cfg.fast.blend
            if w > 0:
                new = blend_temporal(new, warp(prev_out, p1.back).astype(np.float32) / 255.0, p1.mask, w)
            return FrameResult(to_uint8(new), 0, float("nan"), False)
        if t.init_later == "content":
            init: np.ndarray = src
        elif t.init_later == "prev":
            init = prev_out
        else:
            # Ruder et al. initialise with the warped previous output; where the flow is not
            # reliable (disocclusions) the current content is a better start than smeared paint.
            init = blend(warp(prev_out, p1.back), src, p1.mask)
        terms: list[TemporalTerm] = []
        if t.weight > 0:
            covered = np.zeros(p1.mask.shape, np.float32)
            for gap in sorted(set(t.frames)):
                earlier = self.hist.get(gap)
                if earlier is None:
                    continue
                pk = p1 if gap == 1 else (pairs.get(gap) or self._pair(src, earlier[0]))
                # Long-term terms only cover pixels the closer frames could not (Ruder's c_long).
                mask = np.clip(pk.mask - covered, 0.0, 1.0)
                covered = np.maximum(covered, pk.mask)
                terms.append(TemporalTerm(warp(earlier[1], pk.back).astype(np.float32) / 255.0, mask, t.weight))
        ratio = self.cfg.optim.stop_loss_ratio
        # Stop once the frame is as stylized as the first one (content, style and TV: the
        # stylizer leaves the temporal term out of the comparison, as the first frame has none).
        stop = self.ref_loss * ratio if ratio > 0 and self.ref_loss is not None else None
        res = self.st.stylize(src, init, iterations=self.cfg.optim.iterations_later, temporal=terms, pyramid=False,
                              seed=self.cfg.optim.seed + index, stop_loss=stop, callback=self.callback)
        return FrameResult(to_uint8(res.image), res.iterations, res.loss, False)


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
                       save: bool = True) -> tuple[np.ndarray, FrameResult | None]:
    """Frame ``index`` from ``store`` when an earlier run finished it, restoring the warm-start
    state that run left (scene-cut reset, reference loss); else stylized now and, with ``save``,
    saved with its markers (else the caller saves it). Either way it joins the warm-start
    history. The result is None for restored frames."""
    stages = stages or StageTimes()
    t0 = time.perf_counter()
    res: FrameResult | None = None
    if store.has(index):
        img = store.load(index)
        if store.is_cut(index):
            vs.hist.reset()
        ref = store.ref_loss(index)
        if ref is not None:
            vs.ref_loss = ref
    else:
        res = vs.frame(index, src, pairs)
        img = res.image
        t0 = time.perf_counter()
        if save:
            save_frame(store, index, img, res.restarted, res.ref_loss)
    stages.io += time.perf_counter() - t0
    vs.push(src, img)
    return img, res


def build_video_stylizer(cfg: Config, styles: list[np.ndarray], reporter: Reporter,
                         stylizer: Stylizer | None = None) -> VideoStylizer:
    """The engines a video render needs (no VGG for --method fast) around one VideoStylizer."""
    fast = build_fast(cfg, styles)
    st: Stylizer | None = None
    if cfg.fast.method != "fast":
        random_model_notice(cfg, reporter)
        st = stylizer or Stylizer(cfg)
        st.set_styles(styles, cfg.style.blend)
        st.notice = reporter.notice
    vs = VideoStylizer(cfg, st, fast)
    vs.callback = reporter.iterate
    return vs


# ---------------------------------------------------------------- threads


class _End:
    """Queue sentinel: the producer finished (``error`` set when it failed)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Stage(threading.Thread):
    """A daemon thread draining ``items`` into a bounded queue; errors reach the consumer as ``_End(error)``."""

    def __init__(self, name: str, items: Iterator[Any], maxsize: int, stop: threading.Event) -> None:
        super().__init__(name=f"videostyle-{name}", daemon=True)
        self.q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.items = items
        self.stop_event = stop

    def put(self, item: Any) -> None:
        while not self.stop_event.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run(self) -> None:
        try:
            for item in self.items:
                self.put(item)
            self.put(_End())
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            try:
                self.put(_End(exc))
            except _Stopped:
                pass

    def get(self) -> Any:
        """Next item; raises _Stopped once the render is stopping and nothing is left to read."""
        while True:
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    raise _Stopped from None


class _Stopped(Exception):
    pass


def _drain(stage: _Stage) -> Iterator[Any]:
    while True:
        item = stage.get()
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return
        yield item


@dataclass(frozen=True)
class VideoJob:
    """A checked video render: the source's header and the three sizes a frame passes through."""

    info: VideoInfo
    stylized: tuple[int, int]  # (H, W) the optimiser works at
    output: tuple[int, int]  # (H, W) after --output-size
    encoded: tuple[int, int]  # (H, W) made even for yuv420p


def plan_video(inp: Path, out: Path, cfg: Config, overwrite: bool) -> VideoJob:
    """Every check that can fail before any work starts: paths, codec, span, sizes."""
    container_format(out)
    check_codec(out, cfg.encode.codec)
    info = probe(inp)
    check_output(inp, out, overwrite)
    r = cfg.render
    if r.start and info.duration is not None and r.start >= info.duration:
        raise ConfigError(f"--start {r.start} is past the end of {inp} ({info.duration:.2f} s)")
    sh, sw = fit_size(info.height, info.width, cfg.optim.size)
    check_size(sh, sw, f"video {inp}")
    oh, ow = (info.height, info.width) if cfg.encode.output_size == "source" else (sh, sw)
    return VideoJob(info, (sh, sw), (oh, ow), even_size(oh, ow, cfg.encode.even))


def open_writer(inp: Path | None, out: Path, cfg: Config, job: VideoJob, warn: Callable[[str], None],
                template: Path | None = None) -> VideoWriter:
    """The encoder, carrying the audio of ``inp`` (None: video only) over the render's span
    (shifted to 0 for --start cuts); with ``template`` it muxes encoded chunks instead."""
    r = cfg.render
    t0 = job.info.start_time + r.start
    span = (t0 if r.start > 0 else float("-inf"), t0 + r.duration if r.duration > 0 else None)
    eh, ew = job.encoded
    return VideoWriter(out, width=ew, height=eh, time_base=job.info.time_base, fps=job.info.fps,
                       codec=cfg.encode.codec, crf=cfg.encode.crf, preset=cfg.encode.preset, source=inp, span=span,
                       shift=t0 if r.start > 0 else 0.0, warn=warn, template=template)


class _Chunks:
    """The open chunk of a render's work folder: encoded frames go into it, and every
    ``render.chunk_frames`` frames it is closed (renamed into place) and the PNGs that a resume
    no longer needs are deleted. Chunk boundaries fall at fixed frame indices, so a resumed
    render encodes exactly as an uninterrupted one."""

    def __init__(self, work: WorkDir, cfg: Config, job: VideoJob, out: Path, keep: int,
                 warn: Callable[[str], None]) -> None:
        self.work, self.cfg, self.job, self.keep, self.warn = work, cfg, job, keep, warn
        self.suffix = out.suffix
        self.writer: VideoWriter | None = None
        self.start = self.end = 0
        self.pruned = 0  # PNGs below this index are already deleted
        closed = {f for _, _, f in work.closed_chunks()}
        for f in work.chunks.iterdir():  # an open chunk of an interrupted run is redone
            if f not in closed:
                f.unlink(missing_ok=True)

    def write(self, index: int, image: np.ndarray, pts: int) -> None:
        if self.writer is not None and index >= self.start + self.cfg.render.chunk_frames:
            self.close()
        if self.writer is None:
            self.start = index
            path = self.work.chunks / f"{index:06d}.open{self.suffix}"
            self.writer = open_writer(None, path, self.cfg, self.job, self.warn)
        self.writer.write(image, pts)
        self.end = index + 1

    def close(self) -> None:
        if self.writer is None:
            return
        done = self.writer.finish()
        self.writer = None
        # Journal order: the chunk's data and name are on disk before the PNGs it replaces go
        # (VideoWriter.finish synced the file; this syncs the chunks folder after the rename).
        durable.replace(done, self.work.chunk_path(self.start, self.end, self.suffix), synced=True)
        upto = self.end - self.keep
        if upto > self.pruned:
            self.work.prune(self.pruned, upto)
            self.pruned = upto

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def finish_writer(writer: VideoWriter, cfg: Config, job: VideoJob, last_time: float | None) -> None:
    """Close the span (a --max-frames cut ends the audio one frame after the last frame) and finish."""
    r = cfg.render
    end = writer.span[1]
    if end is None and (r.max_frames or r.duration):
        end = (last_time or 0.0) + float(1 / job.info.fps)
    writer.span = (writer.span[0], end)
    writer.finish()


def output_frame(img: np.ndarray, cfg: Config, job: VideoJob) -> np.ndarray:
    """A stylized frame at the output size, made even."""
    if img.shape[:2] != job.output:
        img = to_uint8(to_numpy(resize(to_tensor(img), job.output)))
    eh, ew = job.encoded
    return img[:eh, :ew] if cfg.encode.even == "crop" else make_even(img, "pad")


def render_video(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                 stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize a video into ``out``, streaming, with the source's audio; resumable.

    With ``render.stage_threads`` decoding, optical flow and encoding run on their own threads with
    bounded queues, so the stylizer (the main thread) only waits when they fall behind. Finished
    frames are saved and encoded into the work folder's chunks by the encoding stage; the output
    is muxed from the chunks with the audio at the end.
    """
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    job = plan_video(inp, out, cfg, overwrite)
    r = cfg.render
    total = count_frames(inp, start=r.start, duration=r.duration, max_frames=r.max_frames, info=job.info)
    styles = load_styles(cfg)
    vs = build_video_stylizer(cfg, styles, reporter, stylizer)
    if cfg.optim.init == "image":
        if not cfg.optim.init_image:
            raise ConfigError("--init image needs --init-image PATH")
        vs.first_init = prepare_content(read_image(cfg.optim.init_image, "init image"), 0, "init image")
    work = WorkDir(out, render_settings(cfg, inp))  # after every setup check: a failed start leaves nothing
    work.open(restart)
    gaps = vs.gaps()
    keep = max(gaps)  # finished frames a resume needs before its first new frame (warm start)
    covered = work.covered()
    while covered and not all(work.has(i) for i in range(max(0, covered - keep), covered)):
        work.drop_chunk(work.closed_chunks()[-1][0])  # its warm-start frames are gone: redo it
        covered = work.covered()
    kept = covered + work.count(covered)
    if kept:
        reporter.notice(f"resuming {out.name}: {kept} finished frame(s) kept in {work.path}")
    skip = max(0, covered - keep)  # frames only the closed chunks need
    ref = work.latest_ref_loss(0, skip)
    if ref is not None:
        vs.ref_loss = ref
    chunks = _Chunks(work, cfg, job, out, keep, reporter.notice)
    preview = out.with_name(f"{out.stem}.preview.png")
    stages = StageTimes()
    vs.stages = stages
    workers = flow_workers(cfg, vs) if r.stage_threads else 1
    stop = threading.Event()
    enc_io = [0.0]  # work-folder writes on the encoding stage

    # -- stages (each on its own thread with overlap, inline without)

    def decode_items() -> Iterator[tuple[Frame, np.ndarray | None]]:
        frames = read_frames(inp, start=r.start, duration=r.duration, max_frames=r.max_frames, warn=reporter.notice,
                             info=job.info)
        while True:
            td = time.perf_counter()
            fr = next(frames, None)
            if fr is None:
                return
            src = prepare_content(fr.image, cfg.optim.size, f"video {inp}") if fr.index >= skip else None
            stages.decode += time.perf_counter() - td
            yield fr, src

    def flow_items(items: Iterator[tuple[Frame, np.ndarray | None]]
                   ) -> Iterator[tuple[Frame, np.ndarray | None, dict[int, FramePair]]]:
        # Flow depends on source frames only, so it runs ahead of the stylizer; each pair is
        # computed once and reused for the init, the mask, the scene-cut test and the loss.
        # With several flow workers, that many frames are computed at once and handed on in order.
        hist: deque[np.ndarray] = deque(maxlen=max(gaps))
        pending: deque[tuple[Frame, np.ndarray | None, Future[tuple[dict[int, FramePair], float]]]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="videostyle-flow") if workers > 1 else _Inline() as pool:
            for fr, src in items:
                # Resumed frames need no flow.
                earlier = {g: hist[-g] for g in gaps if len(hist) >= g} if fr.index >= kept else {}
                if src is not None:
                    hist.append(src)
                pending.append((fr, src, pool.submit(_flow_pairs, src, earlier, vs.params)))
                while len(pending) >= workers or (pending and pending[0][2].done()):
                    yield take(pending.popleft())
            while pending:
                yield take(pending.popleft())

    def take(item: tuple[Frame, np.ndarray | None, Future[tuple[dict[int, FramePair], float]]]
             ) -> tuple[Frame, np.ndarray | None, dict[int, FramePair]]:
        fr, src, fut = item
        pairs, seconds = fut.result()
        stages.flow += seconds
        return fr, src, pairs

    def encode_one(item: tuple[Frame, np.ndarray, tuple[bool, float | None] | None]) -> None:
        # The PNG is saved before the frame is encoded, so a closed chunk's frames are all on disk.
        fr, img, save = item
        if save is not None:
            ts = time.perf_counter()
            save_frame(work, fr.index, img, *save)
            enc_io[0] += time.perf_counter() - ts
        te = time.perf_counter()
        final = output_frame(img, cfg, job)
        chunks.write(fr.index, final, fr.pts)
        stages.encode += time.perf_counter() - te
        if r.preview_every and save is not None and fr.index % r.preview_every == 0:
            write_image(preview, final)

    threads: list[threading.Thread] = []
    enc_err: list[BaseException] = []
    # Small: frames waiting here are not on disk yet (a SIGKILL loses them).
    enc_q: queue.Queue[Any] = queue.Queue(maxsize=2)
    enc_thread: threading.Thread | None = None
    if r.stage_threads:
        dec = _Stage("decode", decode_items(), 4, stop)
        flo = _Stage("flow", flow_items(_drain(dec)), 4, stop)

        def encoder() -> None:
            # On stop, the frames already queued are still saved and encoded: they are finished work.
            try:
                while True:
                    try:
                        item = enc_q.get(timeout=0.1)
                    except queue.Empty:
                        if stop.is_set():
                            return
                        continue
                    if isinstance(item, _End):
                        return
                    encode_one(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                enc_err.append(exc)
                stop.set()

        enc_thread = threading.Thread(target=encoder, name="videostyle-encode", daemon=True)
        threads = [dec, flo]
        for th in (dec, flo, enc_thread):
            th.start()
        source: Iterator[Any] = _drain(flo)

        def emit(item: Any) -> None:
            while True:
                if enc_err:
                    raise enc_err[0]
                try:
                    enc_q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def close_encoder() -> None:
            assert enc_thread is not None
            while enc_thread.is_alive():
                try:
                    enc_q.put(_End(), timeout=0.1)
                    break
                except queue.Full:
                    continue
            enc_thread.join()
            if enc_err:
                raise enc_err[0]
    else:
        source = flow_items(decode_items())
        emit = encode_one

        def close_encoder() -> None:
            pass

    iterations: list[int] = []
    frame_secs: list[float] = []
    started = time.perf_counter()
    waited = 0.0
    n_frames, last_time = 0, None
    writer: VideoWriter | None = None  # the output's muxer, once the chunks are done
    reporter.begin(total, str(inp))
    try:
        while True:
            tw = time.perf_counter()
            try:
                item = next(source, None)
            except _Stopped:  # a background stage failed and stopped the others
                raise enc_err[0] if enc_err else RenderInterrupted("render stopped") from None
            waited += time.perf_counter() - tw
            if item is None:
                break
            fr, src, pairs = item
            n_frames, last_time = n_frames + 1, fr.time
            if fr.index < skip:  # in a closed chunk
                reporter.frame(FrameDone(fr.index, total, 0, 0.0, float("nan"), resumed=True))
                continue
            img, res = stylize_or_restore(vs, work, fr.index, src, pairs, stages, save=False)
            if res is None:
                done = FrameDone(fr.index, total, 0, 0.0, float("nan"), resumed=True)
                if fr.index >= covered:  # kept as PNG: goes into the open chunk again
                    emit((fr, img, None))
            else:
                frame_secs.append(res.seconds)
                iterations.append(res.iterations)
                done = FrameDone(fr.index, total, res.iterations, res.seconds, res.loss, res.restarted)
                emit((fr, img, (res.restarted, res.ref_loss)))
            reporter.frame(done)
        close_encoder()
        tfin = time.perf_counter()
        chunks.close()
        if n_frames == 0:
            raise InputError(f"input {inp} has no video frames in the requested span")
        parts = [f for _, _, f in work.closed_chunks()]
        writer = open_writer(inp, out, cfg, job, reporter.notice, template=parts[0])
        for part in parts:
            writer.copy_video(part)
        finish_writer(writer, cfg, job, last_time)
        stages.encode += time.perf_counter() - tfin
    except KeyboardInterrupt as exc:
        stop.set()
        _join(threads)
        if enc_thread is not None:
            enc_thread.join(timeout=60)  # saves the frames already handed over
        chunks.abort()
        if writer is not None:
            writer.abort()
        reporter.end()
        raise RenderInterrupted(
            f"interrupted{interrupt.by(exc)}; {work.finished()} finished frame(s) are kept in {work.path}: run the same command "
            "again to resume", exit_code=interrupt.exit_code(exc)) from None
    except BaseException:
        stop.set()
        _join(threads)
        if enc_thread is not None:
            enc_thread.join(timeout=60)
        chunks.abort()
        if writer is not None:
            writer.abort()
        reporter.end()
        raise
    reporter.end()
    work.remove()
    wall = time.perf_counter() - started
    stages.stylize = max(sum(frame_secs) - (0.0 if r.stage_threads else stages.flow), 0.0)
    stages.waiting = waited
    stages.io += enc_io[0]
    return RenderResult(out, n_frames, wall, iterations, stages, tuple(frame_secs))


def _join(threads: list[threading.Thread]) -> None:
    for th in threads:
        th.join(timeout=5)


# ---------------------------------------------------------------- segments (parallel renders)


def stylize_segment(inp: str | os.PathLike[str], cfg: Config, store: WorkDir, begin: int, end: int,
                    reporter: Reporter | None = None, stylizer: Stylizer | None = None) -> int:
    """Stylize source frames ``begin`` .. ``end - 1`` (indices within the render's span) into
    ``store``, starting fresh at ``begin`` and warm-starting after it; frames already in the store
    are kept (resume). Returns the number of frames stylized now."""
    reporter = reporter or Reporter()
    r = cfg.render
    vs = build_video_stylizer(cfg, load_styles(cfg), reporter, stylizer)
    done_until = begin + store.count(begin)
    if done_until >= end:
        return 0
    depth = max(vs.gaps())
    first = max(begin, done_until - depth)  # earlier frames cannot be in the warm-start history
    ref = store.latest_ref_loss(begin, done_until)
    if ref is not None:
        vs.ref_loss = ref
    made = 0
    for fr in read_frames(inp, start=r.start, duration=r.duration, max_frames=end, skip=first, warn=reporter.notice):
        src = prepare_content(fr.image, cfg.optim.size, f"video {inp}")
        _, res = stylize_or_restore(vs, store, fr.index, src)
        if res is not None:
            made += 1
            reporter.frame(FrameDone(fr.index, end - begin, res.iterations, res.seconds, res.loss, res.restarted))
    return made
