"""Synthesise small test clips with PyAV: a moving pattern, sine audio, and the awkward cases."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .conftest import pattern


def make_clip(
    path: Path,
    *,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),  # (width, height)
    fps: int = 12,
    audio: tuple[str, ...] = ("aac",),  # codecs of the audio tracks
    vfr: bool = False,
    rotation: int = 0,
    start_pts: int = 0,
    languages: tuple[str, ...] = ("eng", "fra"),
    codec: str = "libx264",
    cut_at: int | None = None,  # frame index of a hard scene cut
    shift_per_frame: int = 2,
    occluder: tuple[int, int] | None = None,  # frames [a, b) in which a static textured box hides the middle
    keyint: int | None = None,  # frames between keyframes (a phone clip's: about a second)
) -> Path:
    w, h = size
    tb = Fraction(1, fps * 100)
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = tb
        v.codec_context.time_base = tb
        if codec == "libx264":
            v.options = {"preset": "ultrafast", "crf": "10", **({"g": str(keyint)} if keyint else {})}
        if rotation:
            v.set_display_rotation(rotation)
        astreams = []
        for i, ac in enumerate(audio):
            rate = 48000 if ac == "libopus" else 44100
            a = out.add_stream(ac, rate=rate)
            a.layout = "stereo" if i == 0 else "mono"
            a.metadata["language"] = languages[i % len(languages)]
            a.metadata["title"] = f"track {i}"
            astreams.append(a)
        pts = start_pts
        for i in range(frames):
            seed = 5 if cut_at is not None and i >= cut_at else 0
            img = pattern(h, w, shift=shift_per_frame * i, seed=seed)
            if seed:
                img = 255 - img[::-1]
            if occluder is not None and occluder[0] <= i < occluder[1]:
                img = img.copy()
                img[occluder_box(h, w)] = 255 - pattern(h // 3, w // 4, seed=7)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = pts
            fr.time_base = tb
            for p in v.encode(fr):
                out.mux(p)
            step = 100 if not vfr else (50 if i % 3 == 0 else 150)
            pts += step
        for p in v.encode(None):
            out.mux(p)
        total_s = float(pts * tb)
        for i, a in enumerate(astreams):
            rate = a.rate
            n = int(total_s * rate)
            chunk = 1024
            fmt = a.format.name
            layout = a.layout.name
            ch = 2 if layout == "stereo" else 1
            t = np.arange(n) / rate
            wave = (0.3 * np.sin(2 * np.pi * (440 + 110 * i) * t)).astype(np.float32)
            start = int(float(start_pts * tb) * rate)
            for s in range(0, n, chunk):
                seg = wave[s:s + chunk]
                data = np.tile(seg, (ch, 1))
                if fmt in ("s16", "s16p"):
                    data = (data * 32767).astype(np.int16)
                if fmt.endswith("p"):
                    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
                else:
                    frame = av.AudioFrame.from_ndarray(data.T.reshape(1, -1).copy(), format=fmt, layout=layout)
                frame.sample_rate = rate
                frame.pts = start + s
                frame.time_base = Fraction(1, rate)
                for p in a.encode(frame):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path


def occluder_box(h: int, w: int) -> tuple[slice, slice]:
    """Where make_clip's occluder sits: a third of the height, a quarter of the width, centred."""
    top, left = h // 3, (w - w // 4) // 2
    return slice(top, top + h // 3), slice(left, left + w // 4)


def video_pts(path: Path) -> list[float]:
    """Presentation times (s) of every decoded video frame, as an independent reader sees them."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [float(f.pts * f.time_base) for f in c.decode(v)]


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every video frame as RGB, as an independent reader decodes it."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def audio_packets(path: Path, index: int = 0) -> list[bytes]:
    with av.open(str(path)) as c:
        a = c.streams.audio[index]
        return [bytes(p) for p in c.demux(a) if p.size]


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]
