"""Small clips in the older formats users bring: Windows Media, RealMedia, MPEG-1, Ogg and 3GP.

Each is built the way such files come out of their tools, with the property that broke renders
of real samples: WMA's channel count without a channel layout, AC-3 at a reduced sample rate,
MPEG audio at 22.05 kHz, Theora's zero-length "repeat the previous frame" packets, AMR-NB.
PyAV writes all of them except Theora, which comes from the ffmpeg that ``imageio-ffmpeg``
ships (a test dependency), or from the system's ffmpeg.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from .conftest import pattern

SECONDS = 2.0


def _frames(v, out, n: int, fps: int, w: int, h: int) -> None:  # noqa: ANN001
    for i in range(n):
        fr = av.VideoFrame.from_ndarray(pattern(h, w, shift=2 * i), format="rgb24").reformat(format="yuv420p")
        fr.pts, fr.time_base = i, Fraction(1, fps)
        for p in v.encode(fr):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)


def _tone(a, out, amplitude: float = 0.3) -> None:  # noqa: ANN001
    """SECONDS of a 440 Hz tone in the encoder's own frame size and sample format."""
    rate, fs = a.codec_context.sample_rate, a.codec_context.frame_size or 1024
    fmt, ch = a.format.name, a.layout.nb_channels
    n = int(SECONDS * rate)
    wave = amplitude * np.sin(2 * np.pi * 440 * np.arange(n + fs) / rate)
    for s in range(0, n, fs):
        d = np.tile(wave[s:s + fs], (ch, 1))
        d = (d * 32767).astype(np.int16) if fmt.startswith("s16") else d.astype(np.float32)
        if not fmt.endswith("p"):
            d = d.T.reshape(1, -1).copy()
        f = av.AudioFrame.from_ndarray(d, format=fmt, layout=a.layout.name)
        f.sample_rate, f.pts, f.time_base = rate, s, Fraction(1, rate)
        for p in a.encode(f):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)


def _write(path: Path, fmt: str, vcodec: str, acodec: str, rate: int, *, layout: str = "mono",
           fps: int = 12, size: tuple[int, int] = (64, 48), bit_rate: int = 64000) -> Path:
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream(vcodec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = out.add_stream(acodec, rate=rate)
        a.layout, a.bit_rate = layout, bit_rate
        out.start_encoding()  # opens the encoders: their frame sizes are known from here
        _frames(v, out, int(SECONDS * fps), fps, w, h)
        _tone(a, out)
    return path


def wma_asf(path: Path) -> Path:
    """WMV2 video and WMA v2 audio in ASF; ASF stores a channel count but no channel layout."""
    return _write(path, "asf", "wmv2", "wmav2", 22050)


def mp2_mpeg(path: Path) -> Path:
    """MPEG-1 video with MPEG-1 layer II audio at 22.05 kHz in an MPEG program stream (VCD-era)."""
    return _write(path, "mpeg", "mpeg1video", "mp2", 22050, fps=25, bit_rate=64000)


def amr_3gp(path: Path) -> Path:
    """H.263 video and AMR-NB speech audio (8 kHz mono, 160-sample frames) in 3GP: old phones."""
    return _write(path, "3gp", "h263", "libopencore_amrnb", 8000, size=(128, 96), bit_rate=12200)


# ------------------------------------------------------------------ AC-3 at 22.05 kHz


def _crc16(data: bytes, crc: int = 0) -> int:
    """AC-3's CRC-16 (polynomial 0x8005, MSB first, initial value 0)."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _half_rate(frame: bytes) -> bytes:
    """A 44.1 kHz AC-3 frame relabelled as its 22.05 kHz twin (bsid 9, ATSC A/52 Annex E
    "reduced sample rates"), with crc1 recomputed so that the first 5/8 of the frame checks.

    FFmpeg decodes such frames but its encoder refuses these rates. The relabelled frame parses
    the same only when its bit allocation does not depend on the rate, which holds for very
    quiet audio: callers check that every frame decodes at 22.05 kHz."""
    b = bytearray(frame)
    b[5] = (b[5] & 0x07) | (9 << 3)
    size = len(b)
    crc_end = ((size >> 2) + (size >> 4)) << 1
    b[2] = b[3] = 0
    target = _crc16(bytes(b[2:crc_end]))
    # The CRC is linear in the crc1 field: find the field value that cancels the remainder.
    columns = []
    for bit in range(16):
        t = bytearray(crc_end - 2)
        t[bit // 8] = 0x80 >> (bit % 8)
        columns.append(_crc16(bytes(t)))
    for value in range(1 << 16):
        acc = target
        for bit in range(16):
            if value >> (15 - bit) & 1:
                acc ^= columns[bit]
        if acc == 0:
            b[2], b[3] = value >> 8, value & 0xFF
            break
    assert _crc16(bytes(b[2:crc_end])) == 0
    return bytes(b)


def ac3_rm(path: Path, *, fps: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """RealVideo 2 and AC-3 at 22.05 kHz in RealMedia, as old .rm files carry it ("dnet")."""
    enc = av.CodecContext.create("ac3", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 44100, "mono", "fltp", 32000
    enc.open()
    frames: list[bytes] = []
    n = int(SECONDS * 22050) + 1536
    wave = (1e-4 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)
    for s in range(0, n - 1536, 1536):
        f = av.AudioFrame.from_ndarray(wave[None, s:s + 1536], format="fltp", layout="mono")
        f.sample_rate, f.pts = 44100, s
        frames += [_half_rate(bytes(p)) for p in enc.encode(f)]
    frames += [_half_rate(bytes(p)) for p in enc.encode(None)]
    check = av.CodecContext.create("ac3", "r")
    for fr in frames:
        assert [x.sample_rate for x in check.decode(av.Packet(fr))] == [22050]
    raw = path.with_suffix(".ac3")
    raw.write_bytes(b"".join(frames))
    w, h = size
    with av.open(str(raw)) as src, av.open(str(path), "w", format="rm") as out:
        a_in = src.streams.audio[0]
        v = out.add_stream("rv20", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = out.add_stream_from_template(a_in)
        _frames(v, out, int(SECONDS * fps), fps, w, h)
        for p in src.demux(a_in):
            if p.size:
                p.stream = a
                out.mux(p)
    raw.unlink()
    return path


# ------------------------------------------------------------------ Theora


def ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def theora_ogg(path: Path) -> Path:
    """Theora video and Vorbis audio in Ogg, with zero-length video packets: Theora's way of
    saying "show the previous frame again" (ffmpeg2theora and libtheora write them for
    duplicated frames; FFmpeg's demuxer hands them on as empty packets)."""
    exe = ffmpeg_exe()
    if exe is None:
        pytest.skip("no ffmpeg with libtheora: pip install imageio-ffmpeg (in the [test] extra)")
    plain = path.with_name(path.stem + ".plain.ogv")
    fps = 24
    # All-intra (-g 1), so that the frames replaced below leave no other frame without its reference.
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc=size=64x48:rate={fps}:duration={SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}",
                    "-c:v", "libtheora", "-g", "1", "-q:v", "7", "-c:a", "libvorbis", "-ac", "2",
                    str(plain)], check=True)
    with av.open(str(plain)) as src, av.open(str(path), "w", format="ogg") as out:
        vi, ai = src.streams.video[0], src.streams.audio[0]
        vo, ao = out.add_stream_from_template(vi, opaque=True), out.add_stream_from_template(ai, opaque=True)
        vo.time_base, ao.time_base = vi.time_base, ai.time_base
        for p in src.demux():
            if p.size == 0:
                continue
            if p.stream is vi and p.pts % 3 == 1:  # every third frame repeats its predecessor
                empty = av.Packet(0)
                empty.pts, empty.dts, empty.time_base, empty.is_keyframe = p.pts, p.dts, p.time_base, True
                empty.stream = vo
                out.mux(empty)
                continue
            p.stream = vo if p.stream is vi else ao
            out.mux(p)
    plain.unlink()
    return path


LEGACY = {"wma.asf": wma_asf, "ac3.rm": ac3_rm, "mp2.mpg": mp2_mpeg, "theora.ogv": theora_ogg, "amr.3gp": amr_3gp}
