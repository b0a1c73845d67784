"""Render jobs: read inputs, drive the stylizer, write outputs. Reports through a Reporter."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from videostyle.config import Config, to_dict
from videostyle.errors import ConfigError, InputError, OutputError, VideostyleError
from videostyle.flow import FlowParams, warp
from videostyle.flow import pair as flow_pair
from videostyle.images import is_image_path, read_image, write_image
from videostyle.media import (
    VideoWriter, check_codec, container_format, count_frames, even_size, make_even, probe, read_frames,
)
from videostyle.stylize import (
    STIterate, Stylizer, TemporalTerm, check_size, fit_size, resize, to_numpy, to_tensor, to_uint8,
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
    io: float = 0.0  # work folder reads/writes, previews


@dataclass(frozen=True)
class RenderResult:
    output: Path
    frames: int
    seconds: float
    iterations: list[int]
    stages: StageTimes = field(default_factory=StageTimes)
    frame_seconds: tuple[float, ...] = ()  # stylize + flow wall time of each newly rendered frame


def check_output(inp: Path, out: Path) -> None:
    if out.resolve() == inp.resolve():
        raise OutputError(f"output {out} is the input file; choose another output path with -o")
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
    return st


def prepare_content(image: np.ndarray, size: int, what: str) -> np.ndarray:
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size)
    check_size(th, tw, what)
    if (th, tw) == (h, w):
        return image
    return to_uint8(to_numpy(resize(to_tensor(image), (th, tw))))


def render_image(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize one image file into ``out``."""
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    content_full = read_image(inp, "input image")
    if not is_image_path(out):
        raise OutputError(f"output {out}: an image input needs an image output (.png or .jpg)")
    check_output(inp, out)
    content = prepare_content(content_full, cfg.optim.size, f"input image {inp}")
    st = build_stylizer(cfg, reporter, stylizer)
    init: str | np.ndarray = cfg.optim.init
    if cfg.optim.init == "image":
        if not cfg.optim.init_image:
            raise ConfigError("--init image needs --init-image PATH")
        init = read_image(cfg.optim.init_image, "init image")
    reporter.begin(1, str(inp))
    t0 = time.perf_counter()
    res = st.stylize(content, init, callback=reporter.iterate)
    if not np.isfinite(res.loss):
        raise InputError(f"optimisation of {inp} diverged (loss {res.loss}); lower the style weight or use --optimizer adam")
    image = to_uint8(res.image)
    if cfg.encode.output_size == "source" and image.shape[:2] != content_full.shape[:2]:
        image = to_uint8(to_numpy(resize(to_tensor(image), content_full.shape[:2])))
    write_image(out, image)
    secs = time.perf_counter() - t0
    reporter.frame(FrameDone(0, 1, res.iterations, secs, res.loss))
    reporter.end()
    return RenderResult(out, 1, secs, [res.iterations])


# ---------------------------------------------------------------- video


class RenderInterrupted(VideostyleError):
    exit_code = 130


def flow_params(cfg: Config) -> FlowParams:
    f = cfg.flow
    return FlowParams(method=f.method, scale=f.scale, pyr_scale=f.pyr_scale, levels=f.levels, winsize=f.winsize,
                      iterations=f.flow_iterations, poly_n=f.poly_n, poly_sigma=f.poly_sigma, dis_preset=f.dis_preset)


def render_settings(cfg: Config, inp: Path) -> dict[str, Any]:
    """Everything that determines the stylized frames (for resume); not encode or progress options."""
    d = to_dict(cfg)
    d.pop("encode")
    d["render"] = {k: v for k, v in d["render"].items() if k not in ("preview_every",)}
    d["input"] = {"path": str(inp.resolve()), "digest": file_digest(inp, full=False)}
    d["styles"] = [file_digest(p) for p in cfg.style.images]
    weights = cfg.model.weights or os.environ.get("VIDEOSTYLE_WEIGHTS")
    if weights and Path(weights).is_file():
        st = Path(weights).stat()
        d["weights"] = {"path": str(Path(weights).resolve()), "size": st.st_size, "mtime": st.st_mtime}
    return d


@dataclass
class _History:
    """The last few source frames and outputs (at the stylized size) for warm starts and temporal terms."""

    depth: int
    src: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    out: deque[tuple[int, np.ndarray]] = field(default_factory=deque)

    def push(self, index: int, src: np.ndarray, out: np.ndarray) -> None:
        self.src.append((index, src))
        self.out.append((index, out))
        while len(self.src) > self.depth:
            self.src.popleft()
            self.out.popleft()

    def reset(self) -> None:
        self.src.clear()
        self.out.clear()

    def get(self, gap: int) -> tuple[np.ndarray, np.ndarray] | None:
        if gap > len(self.src):
            return None
        return self.src[-gap][1], self.out[-gap][1]


@dataclass(frozen=True)
class FrameResult:
    image: np.ndarray  # (H, W, 3) uint8 at the stylized size
    iterations: int
    loss: float
    restarted: bool


class VideoStylizer:
    """Per-frame logic of a video render: warm start, flow warping, temporal terms, scene cuts."""

    def __init__(self, cfg: Config, stylizer: Stylizer) -> None:
        self.cfg = cfg
        self.st = stylizer
        self.params = flow_params(cfg)
        self.hist = _History(depth=max(max(cfg.temporal.frames, default=1), 1))
        self.first_init: str | np.ndarray = cfg.optim.init
        self.callback: Callable[[STIterate], None] | None = None
        self.stages = StageTimes()

    def _pair(self, a: np.ndarray, b: np.ndarray) -> Any:
        t = time.perf_counter()
        p = flow_pair(a, b, self.params)
        self.stages.flow += time.perf_counter() - t
        return p

    def push(self, index: int, src: np.ndarray, out: np.ndarray) -> None:
        self.hist.push(index, src, out)

    def full(self, index: int, src: np.ndarray) -> tuple[np.ndarray, int, float]:
        res = self.st.stylize(src, self.first_init, iterations=self.cfg.optim.iterations, pyramid=True,
                              seed=self.cfg.optim.seed + index, callback=self.callback)
        return to_uint8(res.image), res.iterations, res.loss

    def frame(self, index: int, src: np.ndarray) -> FrameResult:
        t = self.cfg.temporal
        prev = self.hist.get(1)
        if prev is None:
            img, n, loss = self.full(index, src)
            return FrameResult(img, n, loss, False)
        prev_src, prev_out = prev
        p1 = self._pair(src, prev_src)
        if p1.reliable < t.scene_cut:
            self.hist.reset()
            img, n, loss = self.full(index, src)
            return FrameResult(img, n, loss, True)
        if t.init_later == "content":
            init: np.ndarray = src
        elif t.init_later == "prev":
            init = prev_out
        else:
            # Ruder et al. initialise with the warped previous output; where the flow is not
            # reliable (disocclusions) the current content is a better start than smeared paint.
            warped = warp(prev_out, p1.back)
            m = p1.mask[..., None]
            init = (warped.astype(np.float32) * m + src.astype(np.float32) * (1 - m)).round().astype(np.uint8)
        terms: list[TemporalTerm] = []
        if t.weight > 0:
            covered = np.zeros(p1.mask.shape, np.float32)
            for gap in sorted(set(t.frames)):
                earlier = self.hist.get(gap)
                if earlier is None:
                    continue
                pk = p1 if gap == 1 else self._pair(src, earlier[0])
                # Long-term terms only cover pixels the closer frames could not (Ruder's c_long).
                mask = np.clip(pk.mask - covered, 0.0, 1.0)
                covered = np.maximum(covered, pk.mask)
                terms.append(TemporalTerm(warp(earlier[1], pk.back).astype(np.float32) / 255.0, mask, t.weight))
        res = self.st.stylize(src, init, iterations=self.cfg.optim.iterations_later, temporal=terms, pyramid=False,
                              seed=self.cfg.optim.seed + index, callback=self.callback)
        return FrameResult(to_uint8(res.image), res.iterations, res.loss, False)


def render_video(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                 stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize a video into ``out``, streaming, with the source's audio; resumable."""
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    container_format(out)
    check_codec(out, cfg.encode.codec)
    info = probe(inp)
    check_output(inp, out)
    if out.exists() and not overwrite:
        raise OutputError(f"output {out} exists; pass --overwrite to replace it")
    r = cfg.render
    if r.start and info.duration is not None and r.start >= info.duration:
        raise ConfigError(f"--start {r.start} is past the end of {inp} ({info.duration:.2f} s)")
    sh, sw = fit_size(info.height, info.width, cfg.optim.size)
    check_size(sh, sw, f"video {inp}")
    oh, ow = (info.height, info.width) if cfg.encode.output_size == "source" else (sh, sw)
    eh, ew = even_size(oh, ow, cfg.encode.even)
    total = count_frames(inp, start=r.start, duration=r.duration, max_frames=r.max_frames)
    styles = load_styles(cfg)
    work = WorkDir(out, render_settings(cfg, inp))
    kept = work.open(restart)
    if kept:
        reporter.notice(f"resuming {out.name}: {kept} finished frame(s) kept in {work.path}")
    random_model_notice(cfg, reporter)
    st = stylizer or Stylizer(cfg)
    st.set_styles(styles, cfg.style.blend)
    vs = VideoStylizer(cfg, st)
    vs.callback = reporter.iterate
    if cfg.optim.init == "image":
        if not cfg.optim.init_image:
            raise ConfigError("--init image needs --init-image PATH")
        vs.first_init = prepare_content(read_image(cfg.optim.init_image, "init image"), 0, "init image")
    t0 = info.start_time + r.start
    shift = t0 if r.start > 0 else 0.0
    span_start = t0 if r.start > 0 else float("-inf")
    span_end = t0 + r.duration if r.duration > 0 else None
    writer = VideoWriter(out, width=ew, height=eh, time_base=info.time_base, fps=info.fps, codec=cfg.encode.codec,
                         crf=cfg.encode.crf, preset=cfg.encode.preset, source=inp, span=(span_start, span_end),
                         shift=shift, warn=reporter.notice)
    iterations: list[int] = []
    frames = 0
    last_time = None
    started = time.perf_counter()
    preview = out.with_name(f"{out.stem}.preview.png")
    stages = StageTimes()
    vs.stages = stages
    frame_secs: list[float] = []
    reporter.begin(total, str(inp))
    frames_iter = read_frames(inp, start=r.start, duration=r.duration, max_frames=r.max_frames, warn=reporter.notice)
    try:
        while True:
            td = time.perf_counter()
            fr = next(frames_iter, None)
            if fr is None:
                break
            src = prepare_content(fr.image, cfg.optim.size, f"video {inp}")
            tf = time.perf_counter()
            stages.decode += tf - td
            if work.has(fr.index):
                img = work.load(fr.index)
                if work.is_cut(fr.index):
                    vs.hist.reset()
                done = FrameDone(fr.index, total, 0, 0.0, float("nan"), resumed=True)
                stages.io += time.perf_counter() - tf
            else:
                res = vs.frame(fr.index, src)
                img = res.image
                secs = time.perf_counter() - tf
                frame_secs.append(secs)
                tw = time.perf_counter()
                if res.restarted:
                    work.mark_cut(fr.index)
                work.save(fr.index, img)
                stages.io += time.perf_counter() - tw
                iterations.append(res.iterations)
                done = FrameDone(fr.index, total, res.iterations, secs, res.loss, res.restarted)
            vs.push(fr.index, src, img)
            te = time.perf_counter()
            final = img
            if final.shape[:2] != (oh, ow):
                final = to_uint8(to_numpy(resize(to_tensor(final), (oh, ow))))
            if cfg.encode.even == "crop":
                final = final[:eh, :ew]
            else:
                final = make_even(final, "pad")
            writer.write(final, fr.pts)
            tp = time.perf_counter()
            stages.encode += tp - te
            if r.preview_every and not done.resumed and fr.index % r.preview_every == 0:
                write_image(preview, final)
                stages.io += time.perf_counter() - tp
            frames += 1
            last_time = fr.time
            reporter.frame(done)
        if frames == 0:
            raise InputError(f"input {inp} has no video frames in the requested span")
        if span_end is None and (r.max_frames or r.duration):
            span_end = (last_time or 0.0) + float(1 / info.fps)
        writer.span = (writer.span[0], span_end)
        tfin = time.perf_counter()
        writer.finish()
        stages.encode += time.perf_counter() - tfin
    except KeyboardInterrupt:
        writer.abort()
        reporter.end()
        raise RenderInterrupted(
            f"interrupted; {work.count()} finished frame(s) are kept in {work.path}: run the same command again to resume"
        ) from None
    except BaseException:
        writer.abort()
        reporter.end()
        raise
    reporter.end()
    work.remove()
    stages.stylize = max(sum(frame_secs) - stages.flow, 0.0)
    return RenderResult(out, frames, time.perf_counter() - started, iterations, stages, tuple(frame_secs))
