"""Writing video files through PyAV, in four parts that each do one thing:

- ``AtomicOutput``: the container, written under a temporary name and renamed (synced) into
  place only when it is complete; ``abort`` leaves the output path untouched.
- ``DtsGuard``: keeps the video stream's decode timestamps valid (increasing, not after the
  presentation time) across encoders and copied chunks.
- ``AuxCarrier`` (``audio``): the source's audio and subtitle streams over the render's span.
- ``VideoWriter``: the video stream (encoded from RGB frames, or muxed from encoded chunks),
  composed of the three above.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from videostyle.io import colour, durable
from videostyle.io.colour import Picture
from videostyle.errors import InputError, OutputError, PipeClosed, setting
from videostyle.io.audio import AuxCarrier
from videostyle.io.codecs import SDR, VIDEO_ENCODERS, check_codec, container_format, mxf_rate, video_options
from videostyle.io.media import Warn, open_input

# SVT-AV1 prints a 20-line banner each time an encoder opens (every chunk of an AV1 render);
# errors only, unless the user asks for more.
os.environ.setdefault("SVT_LOG", "1")

PIPE_CLOSED = "the output pipe was closed by its reader; the render stopped"
# Containers a pipe can carry (no seeking back to finish a header: MP4 and MOV need that).
def _container_options(fmt: str, den: int, timecode: bool) -> dict[str, str]:
    opts: dict[str, str] = {}
    if fmt in ("mp4", "mov") and den < 2**31:
        # MP4/MOV keep a non-zero start as an edit list in the movie timescale (1/1000 s by
        # default): in the source's time base it is exact.
        opts["movie_timescale"] = str(den)
    if fmt == "mp4" and timecode:
        opts["write_tmcd"] = "1"  # (MOV writes its timecode track by itself)
    return opts


def _unreadable_chunk(chunk: str | os.PathLike[str]) -> str:
    return f"the encoded chunk {chunk} is unreadable; rerun with {setting('restart')} to render again"


def _open_chunk(chunk: str | os.PathLike[str]) -> Any:
    try:
        src = open_input(Path(chunk))
        if not src.streams.video:
            src.close()
            raise InputError("no video")
        return src
    except InputError:
        raise OutputError(_unreadable_chunk(chunk)) from None


def _write_error(path: Path, exc: BaseException) -> OutputError:
    if isinstance(exc, BrokenPipeError):
        return PipeClosed(PIPE_CLOSED)
    return OutputError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}")


class AtomicOutput:
    """An output container written as ``.NAME.partial.EXT`` beside ``path`` and renamed into place
    (data, rename and folder synced: it survives a power cut) by ``commit``; ``abort`` closes it
    and deletes the temporary file, so the output path only ever holds a complete file."""

    def __init__(self, path: Path, fmt: str, options: dict[str, str]) -> None:
        self.path, self.fmt = path, fmt
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        try:
            self.container = av.open(str(self.tmp), "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise _write_error(path, exc) from None

    def mux(self, packet: Any) -> None:
        self.container.mux(packet)

    def commit(self) -> Path:
        self.container.close()
        durable.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass
        self.tmp.unlink(missing_ok=True)


class StreamOutput:
    """An output container written to a pipe (standard output) as it goes: nothing to rename,
    and a reader that goes away (``| head``) ends the render with OutputError."""

    def __init__(self, stream: BinaryIO, fmt: str) -> None:
        self.path, self.fmt, self.stream = Path("-"), fmt, stream
        self.tmp = self.path
        try:
            self.container = av.open(stream, "w", format=fmt)
        except (av.error.FFmpegError, OSError) as exc:
            raise _write_error(self.path, exc) from None

    def mux(self, packet: Any) -> None:
        self.container.mux(packet)

    def commit(self) -> Path:
        self.container.close()
        self.stream.flush()
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - best effort: the reader may be gone
            pass


class DtsGuard:
    """Keeps decode timestamps increasing and no later than the presentation timestamp.

    x265 sometimes returns garbage decode timestamps for streams shorter than its reordering
    delay (two frames: a short last chunk); such frames are not reordered, so their decode
    time is their presentation time. And each chunk's encoder starts its decode timestamps a
    few frames before its first frame: copied chunks must stay increasing across the seam."""

    def __init__(self, fps: Fraction | None) -> None:
        self.fps = fps
        self.last: int | None = None

    def __call__(self, packet: Any) -> None:
        dts, pts, last = packet.dts, packet.pts, self.last
        if dts is None:
            return
        # No encoder holds a frame back by more than 16 frames.
        window = 16 * max(1, int(1 / (self.fps * packet.time_base))) if self.fps else 1 << 62
        if pts is not None and (dts > pts or dts < pts - window or (last is not None and dts <= last)):
            dts = pts if last is None or pts > last else last + 1
        elif last is not None and dts <= last:
            dts = last + 1
        if pts is not None and pts < dts:  # nothing valid is left: show it one tick late
            packet.pts = dts
        packet.dts = dts
        self.last = dts


@dataclass(frozen=True)
class VideoFormat:
    """The output's video stream: frame size (even), the source's timing, the encoder and its
    settings, and the encoded pixels with their colour tags (``codecs.output_picture``)."""

    width: int
    height: int
    time_base: Fraction
    fps: Fraction
    codec: str = "h264"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = "yuv420p"
    picture: Picture = SDR
    shift: float = 0.0  # seconds subtracted from every source timestamp (a segment's, a --start cut's)


@dataclass(frozen=True)
class Carried:
    """The source whose audio and subtitle streams the output carries, over source seconds
    ``span`` [t0, t1) (t1 None: to the end)."""

    source: Path
    span: tuple[float, float | None] = (0.0, None)


class VideoWriter:
    """Encode RGB frames into ``path`` (written as a temporary file, renamed by ``finish``),
    carrying the source's audio and subtitle streams over the same time span: the sink of a video
    file, or (``stream``) of a pipe; an image sequence's is ``frames_out.SequenceWriter``. Both
    take ``write(image, pts, alpha)``, ``finish()`` and ``abort()``.

    With ``template`` (an encoded chunk of the same container format) the video stream takes
    that file's codec parameters and ``copy_video`` muxes already encoded chunks instead."""

    def __init__(self, path: str | os.PathLike[str], video: VideoFormat, *, carried: Carried | None = None,
                 tags: dict[str, str] | None = None, warn: Warn = lambda m: None,
                 template: str | os.PathLike[str] | None = None, stream: BinaryIO | None = None,
                 fmt: str | None = None) -> None:
        """``stream`` and ``fmt``: write ``fmt`` (one of containers.PIPE_FORMATS) to a pipe instead of a file;
        ``tags``: the output's ``timecode`` and ``reel_name`` (a timecode track in MOV and MP4) and
        ``creation_time``."""
        tags = tags or {}
        v = video
        width, height, fps, codec = v.width, v.height, v.fps, v.codec
        self.pix_fmt, self.picture = v.pix_fmt, v.picture
        self.path = Path(path)
        fmt = fmt if stream is not None and fmt else container_format(self.path)
        check_codec(self.path, codec, fmt)
        if width % 2 or height % 2:
            raise ValueError("frame size must be even; crop or pad first")
        if fmt == "mxf":
            fps = mxf_rate(Fraction(fps), self.path)
        self.time_base = Fraction(v.time_base)
        self.shift = v.shift
        self.carrier: AuxCarrier | None = None
        self.span = carried.span if carried is not None else (0.0, None)  # source seconds of the aux streams
        self.remux = template is not None
        self.dts = DtsGuard(Fraction(fps) if fps else None)
        self._last_pts: int | None = None
        den = self.time_base.denominator
        self.output: AtomicOutput | StreamOutput = (
            StreamOutput(stream, fmt) if stream is not None else
            AtomicOutput(self.path, fmt, _container_options(fmt, den, "timecode" in tags)))
        try:
            self.video = (self._template_stream(Path(template), fps) if template is not None else
                          self._encoder_stream(codec, fps, v.crf, v.preset, width, height))
            for key in ("timecode", "reel_name"):
                if key in tags:
                    self.video.metadata[key] = tags[key]
            if fmt == "mxf" and "reel_name" in tags:  # (MXF names its source package from the file's)
                self.output.container.metadata["reel_name"] = tags["reel_name"]
            if "creation_time" in tags:
                self.output.container.metadata["creation_time"] = tags["creation_time"]
            if carried is not None:
                self.carrier = AuxCarrier(self.output, Path(carried.source), carried.span, v.shift, warn)
        except av.error.FFmpegError as exc:  # an encoder that does not open with these settings
            self.abort()
            raise OutputError(f"cannot write {self.path}: the {codec} encoder refused {width}x{height} at "
                              f"{self.pix_fmt}: {exc.strerror or exc}; try another {setting('codec')}") from None
        except Exception:
            self.abort()
            raise

    def _template_stream(self, template: Path, fps: Fraction | None) -> Any:
        with _open_chunk(template) as tpl:
            # opaque: reuse the chunk's codec parameters as they are (without it PyAV looks for an
            # encoder named like the chunk's decoder, e.g. libdav1d for AV1).
            stream = self.output.container.add_stream_from_template(tpl.streams.video[0], opaque=True)
            stream.time_base = tpl.streams.video[0].time_base
            # The codec tag is not among them either: MOV would tag ProRes 4444 as 422 HQ (apch).
            if self.output.fmt != "mxf":  # (MXF has no codec tags: its descriptors say what MOV's tag did)
                stream.codec_context.codec_tag = tpl.streams.video[0].codec_context.codec_tag
            if tpl.streams.video[0].metadata.get("alpha_mode") == "1":
                # VP9's alpha: its packets carry it; Matroska marks the track from the pixel format.
                stream.codec_context.pix_fmt = "yuva420p"
            if fps:
                # The frame rate is not among the copied parameters; a timecode track needs it
                # (MOV's muxer refuses its trailer without one).
                stream.codec_context.framerate = Fraction(fps)
        return stream

    def _encoder_stream(self, codec: str, fps: Fraction, crf: int, preset: str, width: int, height: int) -> Any:
        stream = self.output.container.add_stream(VIDEO_ENCODERS[codec], rate=fps,
                                                  options=video_options(codec, crf, preset, self.pix_fmt))
        stream.width, stream.height = width, height
        stream.pix_fmt = self.pix_fmt
        stream.time_base = self.time_base
        cc = stream.codec_context
        cc.time_base = self.time_base
        if codec == "h264":
            # x264's own default, frame threads: PyAV asks for slice threads, which split each
            # frame and scale worse (docs/benchmarks.md, design figures).
            cc.thread_type = "FRAME"
        pic = self.picture
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = pic.primaries, pic.trc, pic.matrix, pic.range
        cc.open()  # (now, not at the first frame: an encoder that refuses these settings says so before any work)
        return stream

    @property
    def tmp(self) -> Path:
        return self.output.tmp

    @property
    def span(self) -> tuple[float, float | None]:
        return self._span

    @span.setter
    def span(self, value: tuple[float, float | None]) -> None:
        """A --max-frames cut learns its end only after the last frame: the carrier follows."""
        self._span = value
        if self.carrier is not None:
            self.carrier.span = value

    def _carry_until(self, t: float | None) -> None:
        if self.carrier is not None:
            self.carrier.until(t)

    def write(self, image: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        """Encode one RGB frame (and the source's ``alpha``, where the output holds it) at source
        ``pts`` (in ``time_base``), muxing aux packets up to it."""
        out_pts = pts - int(round(self.shift / self.time_base))
        if self._last_pts is not None and out_pts <= self._last_pts:
            out_pts = self._last_pts + 1
        self._last_pts = out_pts
        self._carry_until(float(pts * self.time_base))
        # (swscale runs its own slice threads: the same pixels, sooner; the encoding stage does
        # this once a frame.)
        frame = colour.from_display(image, alpha if self.picture.alpha else None, self.picture, self.pix_fmt)
        frame.pts = out_pts
        frame.time_base = self.time_base
        for packet in self.video.encode(frame):
            self.dts(packet)
            self.output.mux(packet)

    def copy_video(self, chunk: str | os.PathLike[str]) -> int:
        """Mux the video packets of an encoded chunk (same codec parameters as the template),
        carrying aux packets up to each one's time; returns the number of packets."""
        unreadable = _unreadable_chunk(chunk)
        n = 0
        with _open_chunk(chunk) as src:
            packets = src.demux(src.streams.video[0])
            tb = self.video.time_base
            while True:
                try:
                    pkt = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    raise OutputError(unreadable) from None
                if pkt.size == 0 or (pkt.pts is None and pkt.dts is None):
                    continue
                if pkt.time_base != tb:
                    pkt.pts = None if pkt.pts is None else int(round(pkt.pts * pkt.time_base / tb))
                    pkt.dts = None if pkt.dts is None else int(round(pkt.dts * pkt.time_base / tb))
                    pkt.time_base = tb
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                self._carry_until(float(ts * tb) + self.shift)
                self.dts(pkt)
                pkt.stream = self.video
                try:
                    self.output.mux(pkt)
                except (av.error.FFmpegError, OSError) as exc:
                    raise _write_error(self.path, exc) from None
                n += 1
        return n

    def finish(self) -> Path:
        """Flush the encoders, carry the rest of the aux streams, close and rename into place."""
        try:
            for packet in ([] if self.remux else self.video.encode(None)):
                self.dts(packet)
                self.output.mux(packet)
            if self.carrier is not None:
                self.carrier.finish()
                self.carrier.close()
            return self.output.commit()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise _write_error(self.path, exc) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close everything and delete the temporary file; the output path is left untouched."""
        if self.carrier is not None:
            self.carrier.close()
        self.output.abort()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


def make_even(image: np.ndarray, mode: str = "crop") -> np.ndarray:
    """Even width and height for yuv420p: drop or replicate the last row/column."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    if mode == "crop":
        return image[: h - h % 2, : w - w % 2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def even_size(h: int, w: int, mode: str = "crop") -> tuple[int, int]:
    if mode == "crop":
        return h - h % 2, w - w % 2
    return h + h % 2, w + w % 2
