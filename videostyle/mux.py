"""Writing video files through PyAV, in four parts that each do one thing:

- ``AtomicOutput``: the container, written under a temporary name and renamed (synced) into
  place only when it is complete; ``abort`` leaves the output path untouched.
- ``DtsGuard``: keeps the video stream's decode timestamps valid (increasing, not after the
  presentation time) across encoders and copied chunks.
- ``AuxCarrier``: the source's audio and subtitle streams over the render's span, copied where
  the container takes them, else audio re-encoded.
- ``VideoWriter``: the video stream (encoded from RGB frames, or muxed from encoded chunks),
  composed of the three above.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from videostyle import durable
from videostyle.errors import ConfigError, InputError, OutputError, PipeClosed
from videostyle.media import Warn, open_input

# SVT-AV1 prints a 20-line banner each time an encoder opens (every chunk of an AV1 render);
# errors only, unless the user asks for more.
os.environ.setdefault("SVT_LOG", "1")

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1", "prores": "prores_ks"}
# Codecs whose names the muxer accepts but players handle badly: transcode instead of copying.
AVOID_COPY = {"mp4": ("pcm_", "vorbis"), "mov": ("vorbis",)}
SUBTITLE_OK = {"mp4": {"mov_text"}, "mov": {"mov_text"}, "webm": {"webvtt"},
               "matroska": {"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle", "text"}}
# Channel layouts for a channel count, when the source names only the count (ASF, WAV, AVI).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0(side)", 6: "5.1(side)", 7: "6.1", 8: "7.1"}


PIPE_CLOSED = "the output pipe was closed by its reader; the render stopped"
# Containers a pipe can carry (no seeking back to finish a header: MP4 and MOV need that).
PIPE_FORMATS = ("matroska", "webm", "mpegts", "nut")


def container_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"output {path}: unknown video extension {path.suffix!r}; use .mp4, .mkv, .mov or .webm")
    return fmt


def check_codec(path: Path, codec: str, fmt: str | None = None) -> None:
    """``codec`` goes into ``path``'s container (or ``fmt``'s, for a pipe)."""
    fmt = fmt or container_format(path)
    allowed = {"mp4": {"h264", "hevc", "vp9", "av1"}, "mov": {"h264", "hevc", "prores"},
               "webm": {"vp9", "av1"}, "matroska": {"h264", "hevc", "vp9", "av1", "prores"},
               "mpegts": {"h264", "hevc"}, "nut": {"h264", "hevc", "vp9", "av1"}}[fmt]
    if codec not in allowed:
        where = f"-f {fmt}" if path.name == "-" else f"{path.suffix} files"
        raise ConfigError(f"--codec {codec} cannot go into {where}; use one of {', '.join(sorted(allowed))} "
                          f"or another {'format' if path.name == '-' else 'extension'}")


def _video_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    if codec == "h264":
        return {"crf": str(crf), "preset": preset}
    if codec == "hevc":
        return {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"}
    if codec == "vp9":
        speed = {"ultrafast": "8", "superfast": "7", "veryfast": "6", "faster": "5", "fast": "4", "medium": "3",
                 "slow": "2", "slower": "1", "veryslow": "0"}.get(preset, "3")
        return {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": speed, "row-mt": "1"}
    if codec == "av1":
        speed = {"ultrafast": "12", "superfast": "11", "veryfast": "10", "faster": "9", "fast": "8", "medium": "7",
                 "slow": "5", "slower": "4", "veryslow": "2"}.get(preset, preset if preset.isdigit() else "7")
        return {"crf": str(crf), "preset": speed}
    return {"profile": "3"}  # prores_ks HQ


def _unreadable_chunk(chunk: str | os.PathLike[str]) -> str:
    return f"the encoded chunk {chunk} is unreadable; rerun with --restart to render again"


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


def _muxer_takes(fmt: str, source: Path, stream: Any) -> bool:
    """Whether the muxer of ``fmt`` takes ``stream``'s packets as they are.

    Asking the format's codec list is not enough: MP4 lists AC-3, yet refuses AC-3 at the
    reduced rates (22.05 kHz) once a packet arrives. So the first packet goes through a
    throwaway in-memory file, header to trailer. PyAV adds only the codecs that FFmpeg's muxer
    declares standard, so WMA is re-encoded for Matroska although Matroska's ACM mode could
    carry it."""
    name = stream.codec_context.name
    if name.startswith(AVOID_COPY.get(fmt, ())) or not stream.codec_context.codec:
        return False
    try:
        with av.open(str(source), metadata_errors="ignore") as src:
            s = src.streams[stream.index]
            first = next((p for p in src.demux(s) if p.size), None)
            if first is None:
                return False
            with av.open(io.BytesIO(), "w", format=fmt) as probe:
                out = probe.add_stream_from_template(s)
                first.stream = out
                probe.mux(first)
    except (ValueError, av.error.FFmpegError, OSError):
        return False
    return True


def _encoder_rate(codec: str, rate: int) -> int:
    """``rate`` when the encoder takes it, else the nearest rate it does take (above first)."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (abs(r - rate), r < rate))


def _encoder_layout(codec: str, layout: Any, rate: int) -> str:
    """A channel layout the encoder opens with: the source's own when it has a channel order,
    else the usual one for its channel count, else stereo (a downmix)."""
    channels = layout.nb_channels if layout else 2
    candidates = [DEFAULT_LAYOUTS.get(channels, "stereo"), "stereo"]
    if layout is not None and layout.name != f"{channels} channels":  # "N channels": count, no order
        candidates.insert(0, layout.name)
    for name in candidates:
        ctx = av.CodecContext.create(codec, "w")
        try:
            ctx.sample_rate, ctx.layout = rate, name
            ctx.format = av.Codec(codec, "w").audio_formats[0]
            ctx.open()
            return name
        except (ValueError, av.error.FFmpegError):
            continue
    return "stereo"


@dataclass
class _Aux:
    """One audio or subtitle stream carried into the output (copied or transcoded)."""

    in_index: int
    out: Any
    copy: bool
    resampler: Any = None
    next_pts: int | None = None


class AuxCarrier:
    """The audio and subtitle streams of ``source`` carried into ``out`` over the source seconds
    ``span`` [t0, t1), each timestamp less ``shift``: packets are muxed as the video reaches their
    time (``until``), so the output stays interleaved."""

    def __init__(self, out: AtomicOutput | StreamOutput, source: Path, span: tuple[float, float | None], shift: float,
                 warn: Warn) -> None:
        self.out, self.span, self.shift, self.warn = out, span, shift, warn
        self.input = open_input(source)
        self.aux: list[_Aux] = []
        streams = [s for s in self.input.streams.audio if self._add_audio(s, source)]
        streams += [s for s in self.input.streams.subtitles if self._add_subtitles(s)]
        self._pending: Any = None
        self._packets: Iterator[Any] | None = None
        if streams:
            t0 = span[0]
            if t0 > 1.0:
                self.input.seek(int((t0 - 1.0) * 1_000_000), backward=True)
            self._packets = iter(self.input.demux(*streams))
        self._by_index = {a.in_index: a for a in self.aux}

    def _add_audio(self, s: Any, source: Path) -> bool:
        fmt, suffix = self.out.fmt, self.out.path.suffix or f"-f {self.out.fmt}"
        if _muxer_takes(fmt, source, s):
            aux = _Aux(s.index, self.out.container.add_stream_from_template(s), copy=True)
        else:
            enc = "libopus" if fmt == "webm" else "aac"
            cc = s.codec_context
            rate = _encoder_rate(enc, cc.sample_rate or 48000)
            layout = _encoder_layout(enc, cc.layout, rate)
            stream = self.out.container.add_stream(enc, rate=rate)
            stream.layout = layout
            stream.time_base = Fraction(1, rate)
            # The resampler converts sample format, rate and layout; PyAV's encoder then cuts
            # the stream into frames of the encoder's own size (AAC takes exactly 1024).
            aux = _Aux(s.index, stream, copy=False,
                       resampler=av.AudioResampler(format=stream.format, layout=layout, rate=rate))
            self.warn(f"note: audio track {s.index} ({cc.name}) is re-encoded as {enc} for {suffix}")
        _copy_tags(s, aux.out)
        self.aux.append(aux)
        return True

    def _add_subtitles(self, s: Any) -> bool:
        name = s.codec_context.name
        if name not in SUBTITLE_OK.get(self.out.fmt, set()):
            self.warn(f"warning: subtitle track {s.index} ({name}) cannot go into {self.out.path.suffix or '-f ' + self.out.fmt}; dropped")
            return False
        out = self.out.container.add_stream_from_template(s)
        _copy_tags(s, out)
        self.aux.append(_Aux(s.index, out, copy=True))
        return True

    def until(self, t: float | None) -> None:
        """Mux carried packets whose source time is below ``t`` (all remaining when None)."""
        if self._packets is None:
            return
        t0, t1 = self.span
        while True:
            pkt = self._pending
            self._pending = None
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._packets = None
                    break
                except av.error.FFmpegError:
                    continue
            if pkt.pts is None and pkt.dts is None and pkt.size == 0:  # flush packet from demux
                continue
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            pt = float(ts * pkt.time_base) if ts is not None else None
            if t is not None and pt is not None and pt >= t:
                self._pending = pkt
                break
            if pt is None or pt < t0 - 1e-6 or (t1 is not None and pt >= t1 - 1e-6):
                continue
            self._carry(self._by_index[pkt.stream.index], pkt)

    def _carry(self, aux: _Aux, pkt: Any) -> None:
        if aux.copy:
            off = int(round(self.shift / pkt.time_base)) if self.shift else 0
            if pkt.pts is not None:
                pkt.pts -= off
            if pkt.dts is not None:
                pkt.dts -= off
            pkt.stream = aux.out
            self.out.mux(pkt)
            return
        try:
            frames = pkt.decode()
        except av.error.FFmpegError:
            return
        for fr in frames:
            self._encode_audio(aux, fr)

    def _encode_audio(self, aux: _Aux, fr: Any | None) -> None:
        out = aux.out
        for r in aux.resampler.resample(fr):
            if aux.next_pts is None:
                # Keep the track's start offset: first sample time in the encoder's 1/rate units.
                src_t = float(fr.pts * fr.time_base) if fr is not None and fr.pts is not None else self.span[0]
                aux.next_pts = int(round((src_t - self.shift) * out.rate))
            r.pts = aux.next_pts
            r.time_base = Fraction(1, out.rate)
            aux.next_pts += r.samples
            for p in out.encode(r):
                self.out.mux(p)

    def finish(self) -> None:
        """Carry what is left of the span and flush the audio encoders."""
        self.until(None)
        for aux in self.aux:
            if not aux.copy:
                self._encode_audio(aux, None)
                for p in aux.out.encode(None):
                    self.out.mux(p)

    def close(self) -> None:
        try:
            self.input.close()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def _copy_tags(src: Any, out: Any) -> None:
    for k, v in src.metadata.items():
        if k in ("language", "title"):
            out.metadata[k] = v


class VideoWriter:
    """Encode RGB frames into ``path`` (written as a temporary file, renamed by ``finish``),
    carrying the source's audio and subtitle streams over the same time span.

    With ``template`` (an encoded chunk of the same container format) the video stream takes
    that file's codec parameters and ``copy_video`` muxes already encoded chunks instead."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        time_base: Fraction,
        fps: Fraction,
        codec: str = "h264",
        crf: int = 18,
        preset: str = "medium",
        source: str | os.PathLike[str] | None = None,
        span: tuple[float, float | None] = (0.0, None),
        shift: float = 0.0,
        warn: Warn = lambda m: None,
        template: str | os.PathLike[str] | None = None,
        stream: BinaryIO | None = None,
        fmt: str | None = None,
    ) -> None:
        """``stream`` and ``fmt``: write ``fmt`` (one of PIPE_FORMATS) to a pipe instead of a file."""
        self.path = Path(path)
        fmt = fmt if stream is not None and fmt else container_format(self.path)
        check_codec(self.path, codec, fmt)
        if width % 2 or height % 2:
            raise ValueError("frame size must be even; crop or pad first")
        self.time_base = Fraction(time_base)
        self.shift = shift  # seconds subtracted from every source timestamp (segment renders)
        self.carrier: AuxCarrier | None = None
        self.span = span  # source seconds [t0, t1) of the aux streams to carry
        self.remux = template is not None
        self.dts = DtsGuard(Fraction(fps) if fps else None)
        self._last_pts: int | None = None
        # MP4/MOV keep a non-zero start as an edit list in the movie timescale (1/1000 s by
        # default): in the source's time base it is exact.
        den = self.time_base.denominator
        self.output: AtomicOutput | StreamOutput = (
            StreamOutput(stream, fmt) if stream is not None else
            AtomicOutput(self.path, fmt, {"movie_timescale": str(den)} if fmt in ("mp4", "mov") and den < 2**31 else {}))
        try:
            self.video = (self._template_stream(Path(template)) if template is not None else
                          self._encoder_stream(codec, fps, crf, preset, width, height))
            if source is not None:
                self.carrier = AuxCarrier(self.output, Path(source), span, shift, warn)
        except Exception:
            self.abort()
            raise

    def _template_stream(self, template: Path) -> Any:
        with _open_chunk(template) as tpl:
            # opaque: reuse the chunk's codec parameters as they are (without it PyAV looks for an
            # encoder named like the chunk's decoder, e.g. libdav1d for AV1).
            stream = self.output.container.add_stream_from_template(tpl.streams.video[0], opaque=True)
            stream.time_base = tpl.streams.video[0].time_base
        return stream

    def _encoder_stream(self, codec: str, fps: Fraction, crf: int, preset: str, width: int, height: int) -> Any:
        stream = self.output.container.add_stream(VIDEO_ENCODERS[codec], rate=fps,
                                                  options=_video_options(codec, crf, preset))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv422p10le" if codec == "prores" else "yuv420p"
        stream.time_base = self.time_base
        cc = stream.codec_context
        cc.time_base = self.time_base
        if codec == "h264":
            # x264's own default, frame threads: PyAV asks for slice threads, which split each
            # frame and scale worse (stylized frames on 2 cores: 62.0 against 56.5 frames/s at
            # 640x360 medium, 20.7 against 17.3 at 1080p veryfast, medians of 3).
            cc.thread_type = "FRAME"
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1  # BT.709, limited range
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

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one RGB frame at source ``pts`` (in ``time_base``), muxing aux packets up to it."""
        out_pts = pts - int(round(self.shift / self.time_base))
        if self._last_pts is not None and out_pts <= self._last_pts:
            out_pts = self._last_pts + 1
        self._last_pts = out_pts
        self._carry_until(float(pts * self.time_base))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # threads=0: swscale's own slice threads (the same pixels; 3.6 against 4.3 ms at 1080p on
        # two cores, where the encoding stage does this once a frame).
        frame = frame.reformat(format=self.video.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG",
                               dst_color_trc=1, dst_color_primaries=1, threads=0)
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
