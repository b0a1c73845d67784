"""The source's audio and subtitle streams carried into an output over the render's span:
copied where the output's container takes them as they are, else audio re-encoded (subtitles
the container cannot hold are left out, with a warning). Packets are muxed as the video
reaches their time, so the output stays interleaved."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av

from videostyle.io.media import Warn, open_input


class Output(Protocol):
    """The container being written (``mux.AtomicOutput`` or ``mux.StreamOutput``)."""

    path: Path
    fmt: str
    container: Any

    def mux(self, packet: Any) -> None: ...


# Codecs whose names the muxer accepts but players handle badly: transcode instead of copying.
AVOID_COPY = {"mp4": ("pcm_", "vorbis"), "mov": ("vorbis",)}
SUBTITLE_OK = {"mp4": {"mov_text"}, "mov": {"mov_text"}, "webm": {"webvtt"},
               "matroska": {"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle", "text"}}
# Sources kept at 24 bits in MXF (decoded audio has no depth of its own: AAC decodes to float).
DEEP_PCM = ("pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f32be", "pcm_f64le")
LOSSLESS = ("flac", "alac", "wavpack", "tta", "truehd", "mlp")  # deep when they decode to more than 16 bits
# Channel layouts for a channel count, when the source names only the count (ASF, WAV, AVI).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0(side)", 6: "5.1(side)", 7: "6.1", 8: "7.1"}


def _copy_tags(src: Any, out: Any) -> None:
    for k, v in src.metadata.items():
        if k in ("language", "title"):
            out.metadata[k] = v


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

    def __init__(self, out: Output, source: Path, span: tuple[float, float | None], shift: float,
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
            cc = s.codec_context
            enc, rate = ("libopus" if fmt == "webm" else "aac"), None
            if fmt == "mxf":
                # MXF carries PCM at 48 kHz (FFmpeg's muxer takes no other rate): 24 bits from a
                # source of more than 16, else 16, as ffmpeg writes it.
                deep = cc.name in DEEP_PCM or (cc.name in LOSSLESS and cc.format is not None and cc.format.bits > 16)
                enc, rate = ("pcm_s24le" if deep else "pcm_s16le"), 48000
            rate = rate or _encoder_rate(enc, cc.sample_rate or 48000)
            layout = _encoder_layout(enc, cc.layout, rate)
            stream = self.out.container.add_stream(enc, rate=rate)
            stream.layout = layout
            stream.time_base = Fraction(1, rate)
            # The resampler converts sample format, rate and layout; PyAV's encoder then cuts
            # the stream into frames of the encoder's own size (AAC takes exactly 1024).
            aux = _Aux(s.index, stream, copy=False,
                       resampler=av.AudioResampler(format=stream.format, layout=layout, rate=rate))
            resampled = f" at {rate / 1000:g} kHz" if cc.sample_rate and cc.sample_rate != rate else ""
            self.warn(f"note: audio track {s.index} ({cc.name}) is re-encoded as {enc}{resampled} for {suffix}")
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
