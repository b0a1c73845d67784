"""Video files through PyAV: probe, stream decoded RGB frames with their timestamps, and write
an encoded video with the source's audio and subtitle streams carried over.

Nothing here holds more than a few frames: decoding and encoding stream.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from videostyle import durable
from videostyle.errors import ConfigError, InputError, OutputError

# SVT-AV1 prints a 20-line banner each time an encoder opens (every chunk of an AV1 render);
# errors only, unless the user asks for more.
os.environ.setdefault("SVT_LOG", "1")

Warn = Callable[[str], None]

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1", "prores": "prores_ks"}
# Codecs whose names the muxer accepts but players handle badly: transcode instead of copying.
AVOID_COPY = {"mp4": ("pcm_", "vorbis"), "mov": ("vorbis",)}
SUBTITLE_OK = {"mp4": {"mov_text"}, "mov": {"mov_text"}, "webm": {"webvtt"},
               "matroska": {"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle", "text"}}
# Give up when more than this fraction of video packets fail to decode (and at least this many).
BAD_PACKET_FRACTION = 0.05
BAD_PACKET_MIN = 5


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    language: str | None
    title: str | None


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # displayed width (after rotation)
    height: int  # displayed height (after rotation)
    rotation: int  # counter-clockwise degrees from the display matrix
    fps: Fraction  # average frame rate
    time_base: Fraction
    frames: int | None  # frame count the header promises, when it does
    duration: float | None  # seconds
    start_time: float  # seconds of the first frame
    video_index: int
    audio: tuple[StreamInfo, ...] = ()
    subtitles: tuple[StreamInfo, ...] = ()


@dataclass
class Frame:
    index: int  # 0-based index among the rendered frames
    pts: int  # presentation timestamp in ``time_base`` units (repaired when missing or non-increasing)
    time_base: Fraction
    image: np.ndarray  # (H, W, 3) RGB uint8, rotation applied

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


def _open_input(path: Path) -> Any:
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a video file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(f"input {path} is not a readable video, or is truncated or corrupt "
                         f"({exc.strerror or type(exc).__name__})") from None


def _main_video_stream(container: Any, path: Path) -> Any:
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:  # cover art is not the video
            return s
    raise InputError(f"input {path} has no video stream")


def _stream_info(s: Any) -> StreamInfo:
    md = dict(s.metadata)
    return StreamInfo(s.index, s.type, s.codec_context.name, md.get("language"), md.get("title"))


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's header: size, rotation, rate, timing and its other streams."""
    p = Path(path)
    with _open_input(p) as c:
        v = _main_video_stream(c, p)
        cc = v.codec_context
        if not cc.width or not cc.height:
            raise InputError(f"input {p}: the video stream has no frame size (corrupt header?)")
        first = next(iter(_decode(c, v, p, lambda m: None)), None)
        rotation = int(first.rotation or 0) if first is not None else 0
        w, h = cc.width, cc.height
        if rotation % 180 != 0:
            w, h = h, w
        tb = v.time_base or Fraction(1, 90000)
        start = float(v.start_time * tb) if v.start_time is not None else 0.0
        dur = float(v.duration * tb) if v.duration else (c.duration / 1e6 if c.duration else None)
        fps = v.average_rate or v.guessed_rate or Fraction(25)
        return VideoInfo(
            path=p, width=w, height=h, rotation=rotation, fps=Fraction(fps), time_base=Fraction(tb),
            frames=int(v.frames) if v.frames else None, duration=dur, start_time=start, video_index=v.index,
            audio=tuple(_stream_info(s) for s in c.streams.audio),
            subtitles=tuple(_stream_info(s) for s in c.streams.subtitles),
        )


def _decode(container: Any, stream: Any, path: Path, warn: Warn) -> Iterator[Any]:
    """Decode frames, tolerating isolated bad packets and failing above a threshold."""
    bad = total = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            warn(f"warning: {path}: stopped reading at a damaged spot ({exc.strerror or type(exc).__name__})")
            break
        if packet.size == 0 and packet.buffer_ptr:
            # An empty packet from the demuxer (not the null flush packet at the end): Theora's
            # "repeat the previous frame". The decoder refuses it (EINVAL), the ffmpeg tool skips
            # it, and so do we: the previous frame stays up until the next timestamp.
            continue
        total += 1
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            bad += 1
            if bad >= BAD_PACKET_MIN and bad > BAD_PACKET_FRACTION * total:
                raise InputError(f"input {path} is corrupt: {bad} of {total} video packets failed to decode") from None
            continue
        except av.error.FFmpegError as exc:
            raise InputError(f"input {path}: decoding failed ({exc.strerror or type(exc).__name__})") from None
        yield from frames
    if bad:
        warn(f"warning: {path}: skipped {bad} undecodable video packet(s) of {total}")


def rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation (degrees) to the pixels."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def read_frames(
    path: str | os.PathLike[str],
    *,
    start: float = 0.0,
    duration: float = 0.0,
    max_frames: int = 0,
    skip: int = 0,
    warn: Warn = lambda m: None,
    info: VideoInfo | None = None,
) -> Iterator[Frame]:
    """Stream RGB frames with repaired, strictly increasing timestamps.

    ``start``/``duration`` (seconds from the file's first frame) and ``max_frames`` choose the
    span; ``skip`` drops that many frames of the span without converting them (resume).
    ``info`` is the file's :func:`probe`, when the caller already has it.
    """
    p = Path(path)
    info = info or probe(p)
    with _open_input(p) as c:
        v = c.streams[info.video_index]
        v.thread_type = "AUTO"
        tb = Fraction(v.time_base)
        step = max(1, round(1 / (info.fps * tb))) if info.fps else 1
        t0 = info.start_time + start
        t1 = t0 + duration if duration > 0 else None
        if start > 0:
            c.seek(int((t0 - 1.0) / tb) if t0 > 1.0 else int(info.start_time / tb), stream=v, backward=True)
        last: int | None = None
        index = 0
        for frame in _decode(c, v, p, warn):
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None:
                pts = (last + step) if last is not None else 0
            elif last is not None and pts <= last:
                pts = last + step
            t = float(pts * tb)
            if t < t0 - 1e-6:
                continue
            if t1 is not None and t >= t1 - 1e-6:
                break
            if max_frames and index >= max_frames:
                break
            last = pts
            if index >= skip:
                img = rotate(frame.to_ndarray(format="rgb24"), info.rotation)
                yield Frame(index, pts, tb, img)
            index += 1
        whole = not start and not duration and not max_frames
        if whole and info.frames and index < info.frames:
            warn(f"warning: {p}: decoded {index} frames, the header promised {info.frames} (truncated file?)")
        elif whole and not info.frames and info.duration and last is not None:
            end = float(last * tb) - info.start_time + float(1 / info.fps)
            if end < info.duration - 2 / float(info.fps):
                warn(f"warning: {p}: frames end at {end:.2f} s, the header says {info.duration:.2f} s (truncated file?)")


def count_frames(path: str | os.PathLike[str], *, start: float = 0.0, duration: float = 0.0, max_frames: int = 0,
                 info: VideoInfo | None = None) -> int | None:
    """Frames a span will yield, estimated from the header (None when unknown)."""
    info = info or probe(path)
    if max_frames and not duration and not start:
        return min(max_frames, info.frames) if info.frames else max_frames
    if info.duration is None:
        return max_frames or None
    span = (duration or max(info.duration - start, 0.0))
    n = int(round(span * float(info.fps)))
    if info.frames and not start and not duration:
        n = info.frames
    return min(n, max_frames) if max_frames else n


@dataclass(frozen=True)
class Span:
    """The part of a clip a render covers: ``start`` and ``duration`` in seconds from the first
    frame (0 = from the beginning / to the end) and at most ``max_frames`` frames (0 = all)."""

    start: float = 0.0
    duration: float = 0.0
    max_frames: int = 0

    def frames(self, path: str | os.PathLike[str], **kw: Any) -> Iterator[Frame]:
        """The span's frames (keywords as :func:`read_frames`)."""
        return read_frames(path, start=self.start, duration=self.duration, max_frames=self.max_frames, **kw)

    def count(self, path: str | os.PathLike[str], info: VideoInfo | None = None) -> int | None:
        return count_frames(path, start=self.start, duration=self.duration, max_frames=self.max_frames, info=info)

    def check(self, info: VideoInfo) -> None:
        if self.start and info.duration is not None and self.start >= info.duration:
            raise ConfigError(f"--start {self.start} is past the end of {info.path} ({info.duration:.2f} s)")

    def source_seconds(self, info: VideoInfo) -> tuple[float, float | None]:
        """[t0, t1) of the span in source time (t0 -inf: from the first packet of any stream,
        so audio that starts before the video is kept; t1 None: to the end)."""
        t0 = info.start_time + self.start
        return (t0 if self.start > 0 else float("-inf"), t0 + self.duration if self.duration > 0 else None)

    def shift(self, info: VideoInfo) -> float:
        """Seconds subtracted from source timestamps: a --start cut begins at 0."""
        return info.start_time + self.start if self.start > 0 else 0.0


# ---------------------------------------------------------------- writing


@dataclass
class _Aux:
    """One audio or subtitle stream carried into the output (copied or transcoded)."""

    in_index: int
    out: Any
    copy: bool
    decoder_needed: bool = False
    resampler: Any = None
    next_pts: int | None = None
    done: bool = False
    notes: list[str] = field(default_factory=list)


def container_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"output {path}: unknown video extension {path.suffix!r}; use .mp4, .mkv, .mov or .webm")
    return fmt


def check_codec(path: Path, codec: str) -> None:
    fmt = container_format(path)
    allowed = {"mp4": {"h264", "hevc", "vp9", "av1"}, "mov": {"h264", "hevc", "prores"},
               "webm": {"vp9", "av1"}, "matroska": {"h264", "hevc", "vp9", "av1", "prores"}}[fmt]
    if codec not in allowed:
        raise ConfigError(f"--codec {codec} cannot go into {path.suffix} files; use one of {', '.join(sorted(allowed))} "
                          f"or another extension")


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
        src = _open_input(Path(chunk))
        if not src.streams.video:
            src.close()
            raise InputError("no video")
        return src
    except InputError:
        raise OutputError(_unreadable_chunk(chunk)) from None


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


# Channel layouts for a channel count, when the source names only the count (ASF, WAV, AVI).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0(side)", 6: "5.1(side)", 7: "6.1", 8: "7.1"}


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
    ) -> None:
        self.path = Path(path)
        self.fmt = container_format(self.path)
        check_codec(self.path, codec)
        if width % 2 or height % 2:
            raise ValueError("frame size must be even; crop or pad first")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.time_base = Fraction(time_base)
        self.shift = shift  # seconds subtracted from every source timestamp (segment renders)
        self.span = span  # source seconds [t0, t1) of the aux streams to carry
        self.warn = warn
        self._last_pts: int | None = None
        # MP4/MOV keep a non-zero start as an edit list in the movie timescale (1/1000 s by
        # default): in the source's time base it is exact.
        den = self.time_base.denominator
        opts = {"movie_timescale": str(den)} if self.fmt in ("mp4", "mov") and den < 2**31 else {}
        try:
            self.out = av.open(str(self.tmp), "w", format=self.fmt, options=opts)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        self._last_dts: int | None = None
        self._fps = Fraction(fps) if fps else None
        self.remux = template is not None
        try:
            if template is not None:
                with _open_chunk(template) as tpl:
                    # opaque: reuse the chunk's codec parameters as they are (without it PyAV looks
                    # for an encoder named like the chunk's decoder, e.g. libdav1d for AV1).
                    self.video = self.out.add_stream_from_template(tpl.streams.video[0], opaque=True)
                    self.video.time_base = tpl.streams.video[0].time_base
            else:
                self.video = self.out.add_stream(VIDEO_ENCODERS[codec], rate=fps,
                                                 options=_video_options(codec, crf, preset))
                self.video.width, self.video.height = width, height
                self.video.pix_fmt = "yuv422p10le" if codec == "prores" else "yuv420p"
                self.video.time_base = self.time_base
                self.video.codec_context.time_base = self.time_base
                cc = self.video.codec_context
                cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1  # BT.709, limited range
            self.aux: list[_Aux] = []
            self._in: Any = None
            self._packets: Iterator[Any] | None = None
            self._pending: Any = None
            if source is not None:
                self._setup_aux(Path(source))
        except Exception:
            self.abort()
            raise

    # -- aux streams

    def _setup_aux(self, source: Path) -> None:
        self._in = _open_input(source)
        streams = []
        for s in self._in.streams.audio:
            name = s.codec_context.name
            md = {k: v for k, v in s.metadata.items() if k in ("language", "title")}
            if _muxer_takes(self.fmt, source, s):
                out = self.out.add_stream_from_template(s)
                aux = _Aux(s.index, out, copy=True)
            else:
                enc = "libopus" if self.fmt == "webm" else "aac"
                cc = s.codec_context
                rate = _encoder_rate(enc, cc.sample_rate or 48000)
                layout = _encoder_layout(enc, cc.layout, rate)
                out = self.out.add_stream(enc, rate=rate)
                out.layout = layout
                out.time_base = Fraction(1, rate)
                # The resampler converts sample format, rate and layout; PyAV's encoder then cuts
                # the stream into frames of the encoder's own size (AAC takes exactly 1024).
                aux = _Aux(s.index, out, copy=False, decoder_needed=True,
                           resampler=av.AudioResampler(format=out.format, layout=layout, rate=rate))
                self.warn(f"note: audio track {s.index} ({name}) is re-encoded as {enc} for {self.path.suffix}")
            for k, v in md.items():
                out.metadata[k] = v
            self.aux.append(aux)
            streams.append(s)
        for s in self._in.streams.subtitles:
            name = s.codec_context.name
            if name in SUBTITLE_OK.get(self.fmt, set()):
                out = self.out.add_stream_from_template(s)
                for k, v in s.metadata.items():
                    if k in ("language", "title"):
                        out.metadata[k] = v
                self.aux.append(_Aux(s.index, out, copy=True))
                streams.append(s)
            else:
                self.warn(f"warning: subtitle track {s.index} ({name}) cannot go into {self.path.suffix}; dropped")
        if streams:
            t0 = self.span[0]
            if t0 > 1.0:
                self._in.seek(int((t0 - 1.0) * 1_000_000), backward=True)
            self._packets = iter(self._in.demux(*streams))
            self._by_index = {a.in_index: a for a in self.aux}
        else:
            self._in.close()
            self._in = None

    def _mux_aux_until(self, t: float | None) -> None:
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
            aux = self._by_index[pkt.stream.index]
            if pkt.pts is None and pkt.dts is None:
                if pkt.size == 0:  # flush packet from demux
                    continue
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            pt = float(ts * pkt.time_base) if ts is not None else None
            if t is not None and pt is not None and pt >= t:
                self._pending = pkt
                break
            if pt is None or pt < t0 - 1e-6 or (t1 is not None and pt >= t1 - 1e-6):
                continue
            self._carry(aux, pkt)

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
        resampled = aux.resampler.resample(fr)
        for r in resampled:
            if aux.next_pts is None:
                # Keep the track's start offset: first sample time in the encoder's 1/rate units.
                src_t = float(fr.pts * fr.time_base) if fr is not None and fr.pts is not None else self.span[0]
                aux.next_pts = int(round((src_t - self.shift) * out.rate))
            r.pts = aux.next_pts
            r.time_base = Fraction(1, out.rate)
            aux.next_pts += r.samples
            for p in out.encode(r):
                self.out.mux(p)

    # -- video

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one RGB frame at source ``pts`` (in ``time_base``), muxing aux packets up to it."""
        out_pts = pts - int(round(self.shift / self.time_base))
        if self._last_pts is not None and out_pts <= self._last_pts:
            out_pts = self._last_pts + 1
        self._last_pts = out_pts
        self._mux_aux_until(float(pts * self.time_base))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(format=self.video.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG",
                               dst_color_trc=1, dst_color_primaries=1)
        frame.pts = out_pts
        frame.time_base = self.time_base
        for packet in self.video.encode(frame):
            self._check_dts(packet)
            self.out.mux(packet)

    def _check_dts(self, packet: Any) -> None:
        """Keep decode timestamps increasing and no later than the presentation timestamp.

        x265 sometimes returns garbage decode timestamps for streams shorter than its reordering
        delay (two frames: a short last chunk); such frames are not reordered, so their decode
        time is their presentation time."""
        dts, pts, last = packet.dts, packet.pts, self._last_dts
        if dts is None:
            return
        # No encoder holds a frame back by more than 16 frames.
        window = 16 * max(1, int(1 / (Fraction(self._fps) * packet.time_base))) if self._fps else 1 << 62
        if pts is not None and (dts > pts or dts < pts - window or (last is not None and dts <= last)):
            dts = pts if last is None or pts > last else last + 1
        elif last is not None and dts <= last:
            dts = last + 1
        if pts is not None and pts < dts:  # nothing valid is left: show it one tick late
            packet.pts = dts
        packet.dts = dts
        self._last_dts = dts

    def copy_video(self, chunk: str | os.PathLike[str]) -> int:
        """Mux the video packets of an encoded chunk (same codec parameters as the template),
        carrying aux packets up to each one's time; returns the number of packets."""
        unreadable = _unreadable_chunk(chunk)
        src = _open_chunk(chunk)
        n = 0
        with src:
            packets = src.demux(src.streams.video[0])
            while True:
                try:
                    pkt = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    raise OutputError(unreadable) from None
                if pkt.size == 0 or (pkt.pts is None and pkt.dts is None):
                    continue
                tb = self.video.time_base
                if pkt.time_base != tb:
                    pkt.pts = None if pkt.pts is None else int(round(pkt.pts * pkt.time_base / tb))
                    pkt.dts = None if pkt.dts is None else int(round(pkt.dts * pkt.time_base / tb))
                    pkt.time_base = tb
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                self._mux_aux_until(float(ts * tb) + self.shift)
                # Each chunk's encoder starts its decode timestamps a few frames before its first
                # frame; keep them increasing across the seam.
                self._check_dts(pkt)
                pkt.stream = self.video
                try:
                    self.out.mux(pkt)
                except (av.error.FFmpegError, OSError) as exc:
                    raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
                n += 1
        return n

    def finish(self) -> Path:
        """Flush encoders, carry the remaining aux packets, close and rename into place."""
        try:
            for packet in ([] if self.remux else self.video.encode(None)):
                self._check_dts(packet)
                self.out.mux(packet)
            self._mux_aux_until(None)
            for aux in self.aux:
                if not aux.copy:
                    self._encode_audio(aux, None)
                    for p in aux.out.encode(None):
                        self.out.mux(p)
            self.out.close()
            if self._in is not None:
                self._in.close()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        except BaseException:
            self.abort()
            raise
        durable.replace(self.tmp, self.path)  # data, rename, directory: survives a power cut
        return self.path

    def abort(self) -> None:
        """Close everything and delete the temporary file; the output path is left untouched."""
        for obj in (getattr(self, "out", None), getattr(self, "_in", None)):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        self.tmp.unlink(missing_ok=True)

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
