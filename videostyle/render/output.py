"""The output side of a video render: the checks made before any work, the sizes a frame
passes through, and the writer for the output (or one of its chunks) over the render's span."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from pathlib import Path

import cv2
import numpy as np

from videostyle.errors import ConfigError, InputError, OutputError, setting
from videostyle.io import colour, containers, frames_out, timecode
from videostyle.io.colour import Picture
from videostyle.io.images import check_size, fit_size, resize_image
from videostyle.io.limits import MAX_PIXELS
from videostyle.io.media import Span, VideoInfo, Warn, probe
from videostyle.io.workdir import work_path
from videostyle.io.codecs import (SDR, check_codec, chunk_suffix, container_format, default_codec, fits_codec, mxf_rate,
                                  output_picture)
from videostyle.io.mux import Carried, VideoFormat, VideoWriter, even_size, make_even
from videostyle.io.sequence import is_sequence
from videostyle.io.sink import FrameSink
from videostyle.temporal.keyframes import split


def check_output(inp: Path, out: Path, overwrite: bool = True) -> None:
    """The output path can be written: not the input, in a writable folder, and (ffmpeg's
    convention) not an existing file unless ``overwrite``."""
    if out.resolve() == inp.resolve():
        raise OutputError(f"output {out} is the input file; choose another output path with {setting('output')}")
    if out.exists() and not out.is_dir() and not overwrite:
        raise OutputError(f"output {out} exists; pass {setting('overwrite')} to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist; create it or choose another {setting('output')}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable; choose another {setting('output')}")
    if out.is_dir():
        raise OutputError(f"output {out} is a directory; give a file name with {setting('output')}")


@dataclass(frozen=True)
class OutputSpec:
    """What a video render's output asks of its input and how it is written, from the Config
    (``engines.output_spec``): the span, the stylized size, the encode settings as given (``auto``
    resolved per output in ``plan_video``), the input's reading (an image sequence's rate and
    gaps, the largest picture) and the soundtrack."""

    span: Span = Span()
    size: int = 512  # the stylized size's longer side (0: the source's)
    upscale: bool = False
    codec: str = "auto"
    crf: int = 18
    preset: str = "medium"
    even: str = "crop"
    output_size: str = "stylized"  # or "source"
    start_number: int = 0  # an image-sequence output's first number, for a video input
    loop: bool = False  # temporal.loop: the output must be a video file
    audio: str | None = None  # a soundtrack file replacing the source's
    hdr: str = "convert"  # or "refuse"
    fps: float = 24.0  # an image-sequence input's rate
    fill_gaps: str = "refuse"
    max_pixels: int = MAX_PIXELS


@dataclass(frozen=True)
class EncodeSpec:
    """How the output's video is encoded: codec, quality, speed preset, how odd sizes are made
    even, and the encoded pixels (``codecs.output_picture``)."""

    codec: str = "h264"
    crf: int = 18
    preset: str = "medium"
    even: str = "crop"
    pix_fmt: str = "yuv420p"
    picture: Picture = SDR


@dataclass(frozen=True)
class VideoJob:
    """A checked video render: the source's header, its span, the three sizes a frame passes
    through, and its encoding."""

    info: VideoInfo
    span: Span
    stylized: tuple[int, int]  # (H, W) the optimiser works at
    output: tuple[int, int]  # (H, W) after --output-size
    encoded: tuple[int, int]  # (H, W) made even for yuv420p
    encode: EncodeSpec = EncodeSpec()
    audio: Path | None = None  # where the output's audio comes from (None: no audio)
    frames_out: frames_out.FramesOut | None = None  # an image-sequence output (None: a video file)
    tags: tuple[tuple[str, str], ...] = ()  # the output's timecode, reel name and creation time

    @property
    def muxed(self) -> bool:
        """Whether the output is one video (a file or a pipe) muxed from the stylized frames; not
        an image sequence, whose frames are written in place as they finish (its sink's kind:
        ``open_sink``)."""
        return self.frames_out is None

    def chunk_suffix(self, out: Path) -> str:
        """The suffix of the work folder's chunks for output ``out``: its container's, or
        ``.frames`` (a list of the files written) for an image sequence."""
        return chunk_suffix(out) if self.muxed else ".frames"


def plan_video(inp: Path, out: Path, asked: OutputSpec, overwrite: bool, notice: Warn = lambda m: None) -> VideoJob:
    """Every check that can fail before any work starts: paths, codec, span, sizes; ``notice``
    hears, a line each, what the output cannot keep of the source and how HDR is converted."""
    pattern = frames_out.is_pattern(out)
    if pattern:
        frames_out.check_pattern(out)
        check_output(inp, out, overwrite)  # (the folder, before its frames are looked for)
        found = frames_out.existing(out)
        if found and not overwrite and not work_path(out).exists():  # (a resume rewrites its own frames)
            raise OutputError(f"output {out}: {len(found)} frame file(s) exist ({sorted(found)[0]} ...); pass "
                              f"{setting('overwrite')} to replace them, or choose another {setting('output')}")
        if asked.loop:
            raise ConfigError(f"{setting('loop')} renders into a video file; use a {containers.listed(containers.USUAL_EXTENSIONS)} "
                              "output")
    else:
        container_format(out)
        if asked.codec != "auto":
            check_codec(out, asked.codec)
    info = probe_input(inp, asked)
    if not pattern:
        check_output(inp, out, overwrite)
        return _job(inp, info, asked, out, container_format(out), notice)
    job = _job(inp, info, asked, out, None, notice)
    first = (info.sequence.first_number + round(job.span.start * float(info.fps)) if info.sequence is not None
             else asked.start_number)
    target, lost = frames_out.output_picture(out, info.picture)
    for line in lost:
        notice(f"warning: {out}: {line}")
    return dataclasses.replace(job, encoded=job.output, frames_out=frames_out.FramesOut(out, first, target))


def plan_pipe(inp: Path, fmt: str, asked: OutputSpec, notice: Warn = lambda m: None) -> VideoJob:
    """plan_video's checks for an output to a pipe in container ``fmt``."""
    if asked.codec != "auto":
        check_codec(Path("-"), asked.codec, fmt)
    return _job(inp, probe_input(inp, asked), asked, Path("-"), fmt, notice)


def probe_input(inp: Path, asked: OutputSpec) -> VideoInfo:
    """The input's header: a video file's, or an image sequence's at ``--fps``."""
    return probe(inp, fps=asked.fps, fill_gaps=asked.fill_gaps, max_pixels=asked.max_pixels)


def _audio(inp: Path, info: VideoInfo, asked: OutputSpec) -> Path | None:
    if asked.audio:
        a = Path(asked.audio)
        if not a.is_file():
            raise InputError(f"audio file {a} does not exist; check {setting('audio')}")
        return a
    return None if info.sequence is not None else inp


def _job(inp: Path, info: VideoInfo, asked: OutputSpec, out: Path, fmt: str | None, notice: Warn) -> VideoJob:
    """The job for container ``fmt`` (None: an image sequence, whose pixels frames_out chooses)."""
    sp = asked.span
    sp.check(info)
    sh, sw = fit_size(info.height, info.width, asked.size, asked.upscale)
    check_size(sh, sw, f"video {inp}")
    oh, ow = (info.height, info.width) if asked.output_size == "source" else (sh, sw)
    e = asked
    if fmt == "mxf":
        mxf_rate(info.fps, out)
    _check_hdr(inp, info.picture, asked.hdr, notice)
    codec = e.codec if e.codec != "auto" else default_codec(fmt or "matroska", info.picture)
    eh, ew = even_size(oh, ow, e.even)
    if not fits_codec(codec, eh, ew):
        if e.codec == "auto":  # (MXF's default, for frames too small for it)
            codec = "prores"
        else:
            raise ConfigError(f"{setting('codec', codec)} encodes frames of at least 256x120, and {out}'s are {ew}x{eh}; "
                              f"raise {setting('size')}, pass {setting('output_size', 'source')}, or use "
                              f"{setting('codec', 'prores')}")
    spec = EncodeSpec(codec, e.crf, e.preset, e.even)
    if fmt is not None:
        pix_fmt, pic, lost = output_picture(codec, fmt, info.picture)
        for line in lost:
            notice(f"warning: {out}: {line}")
        spec = dataclasses.replace(spec, pix_fmt=pix_fmt, picture=pic)
    return VideoJob(info, sp, (sh, sw), (oh, ow), even_size(oh, ow, e.even), spec, _audio(inp, info, asked),
                    tags=_tags(info, sp))


def _check_hdr(inp: Path, pic: Picture, mode: str, notice: Warn) -> None:
    """An HDR source is converted to the network's SDR and back by the named operator, and says
    so; or (``--hdr refuse``) refused."""
    if pic.hdr is None:
        return
    what = f"input {inp} is HDR ({pic.describe()})"
    if mode == "refuse":
        raise InputError(f"{what}; the network works on SDR: pass {setting('hdr', 'convert')} to render it through "
                         f"{colour.OPERATOR} and back, or convert it to SDR first")
    notice(f"{what}: the network sees it as SDR sRGB through {colour.OPERATOR}; the output goes back to "
           f"{pic.hdr.upper()} by the inverse")


def _tags(info: VideoInfo, sp: Span) -> tuple[tuple[str, str], ...]:
    """The source's timecode (moved on to the span's first frame), reel name and creation time."""
    out = []
    if info.timecode:
        try:
            out.append(("timecode", timecode.shifted(info.timecode, round(sp.start * float(info.fps)), info.fps)))
        except ValueError:
            pass  # not an SMPTE timecode: left out rather than carried wrong
    out += [(k, v) for k, v in (("reel_name", info.reel_name), ("creation_time", info.creation_time)) if v]
    return tuple(out)


def open_writer(inp: Path | None, out: Path, job: VideoJob, warn: Callable[[str], None],
                template: Path | None = None, stream: BinaryIO | None = None, fmt: str | None = None) -> VideoWriter:
    """The encoder, carrying the audio of ``inp`` (None: video only) over the render's span
    (shifted to 0 for --start cuts); with ``template`` it muxes encoded chunks instead; with
    ``stream`` it writes container ``fmt`` to that pipe."""
    eh, ew = job.encoded
    e = job.encode
    video = VideoFormat(ew, eh, job.info.time_base, job.info.fps, e.codec, e.crf, e.preset, e.pix_fmt, e.picture,
                        shift=job.span.shift(job.info))
    carried = (Carried(job.audio, job.span.source_seconds(job.info)) if inp is not None and job.audio is not None
               else None)
    return VideoWriter(out, video, carried=carried, warn=warn, template=template, stream=stream, fmt=fmt,
                       tags=dict(job.tags) if inp is not None else None)


def open_sink(inp: Path | None, out: Path, job: VideoJob, warn: Callable[[str], None], manifest: Path,
              first: int = 0) -> FrameSink:
    """Where the frames of ``job`` go from frame ``first`` of its span: its image sequence (the
    files written listed in ``manifest`` when it finishes) or its video file ``out`` (carrying the
    audio of ``inp``; None: video only)."""
    if job.frames_out is not None:
        return frames_out.SequenceWriter(job.frames_out, manifest, first)
    return open_writer(inp, out, job, warn)


def finish_writer(writer: FrameSink, job: VideoJob, last_time: float | None) -> Path:
    """Close the span (a --max-frames cut ends the audio one frame after the last frame) and finish."""
    if isinstance(writer, VideoWriter):
        end = writer.span[1]
        if end is None and (job.span.max_frames or job.span.duration):
            end = (last_time or 0.0) + float(1 / job.info.fps)
        writer.span = (writer.span[0], end)
    return writer.finish()


def output_frame(img: np.ndarray, job: VideoJob) -> np.ndarray:
    """A stylized frame at the output size, made even."""
    img = resize_image(img, job.output)
    eh, ew = job.encoded
    return img[:eh, :ew] if job.encode.even == "crop" else make_even(img, "pad")


def output_alpha(alpha: np.ndarray | None, job: VideoJob) -> np.ndarray | None:
    """The source's alpha at the output size, made even as the colour is: unchanged at the
    source's size (``--output-size source``, or a source no larger than ``--size``)."""
    if alpha is None:
        return None
    if alpha.shape[:2] != job.output:
        alpha = cv2.resize(alpha, (job.output[1], job.output[0]), interpolation=cv2.INTER_AREA)
    eh, ew = job.encoded
    return alpha[:eh, :ew] if job.encode.even == "crop" else make_even(alpha[..., None], "pad")[..., 0]


def default_output(inp: Path, styles: list[str], image: bool) -> Path:
    """Where a render of ``inp`` goes without -o: beside it, named after it and the first of
    ``styles`` (the style setting's entries)."""
    style = Path(split(styles[0])[0]).stem if styles else "styled"
    if is_sequence(inp):  # shot/%04d.png, shot/*.png or shot/: shot_STYLE.mp4 beside the folder
        folder = inp if inp.is_dir() else (inp.parent if str(inp.parent) else Path("."))
        folder = folder.resolve()
        return folder.with_name(f"{folder.name}_{style}{containers.DEFAULT_EXTENSION}")
    ext = ".png" if image else containers.DEFAULT_EXTENSION
    return inp.with_name(f"{inp.stem}_{style}{ext}")
