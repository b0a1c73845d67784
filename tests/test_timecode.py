"""Timecode and metadata: a MOV's timecode track (shifted by --start), its reel name and its
creation time reach MOV, MP4 and Matroska outputs, as an editor needs them to conform a render."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.io.timecode import from_frames, shifted, to_frames

from .conftest import pattern, stripes

TINY = ["--model", "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--device", "cpu",
        "--precision", "fp32", "--settle", "0", "-q"]


def _camera_mov(path: Path, frames: int = 24, fps: int = 24) -> Path:
    """A MOV as a camera writes it: a timecode track (01:00:00:00, reel A001) beside the video."""
    with av.open(str(path), "w", format="mov") as o:
        o.metadata["creation_time"] = "2024-05-01T10:00:00.000000Z"
        v = o.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.metadata["timecode"], v.metadata["reel_name"] = "01:00:00:00", "A001"
        for i in range(frames):
            for p in v.encode(av.VideoFrame.from_ndarray(pattern(48, 64, shift=i), format="rgb24")):
                o.mux(p)
        for p in v.encode(None):
            o.mux(p)
    return path


def _tags(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with av.open(str(path)) as c:
        for md in [dict(c.metadata)] + [dict(s.metadata) for s in c.streams]:
            for k, v in md.items():
                out.setdefault(k.lower(), v)
    return out


def _ffmpeg_says(path: Path) -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_timecode_reel_and_creation_time_are_carried_and_shifted_by_start(tmp_path, suffix):
    src = _camera_mov(tmp_path / "cam.mov")
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / f"out{suffix}"
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(out), "--start", "0.5",
                 *TINY]) == 0
    tags = _tags(out)
    assert tags.get("timecode") == "01:00:00:12"  # frame 12 of the source is the render's first
    assert tags.get("creation_time", "").startswith("2024-05-01T10:00:00")
    if suffix != ".mkv":  # a timecode track, as editors read it
        assert "timecode        : 01:00:00:12" in _ffmpeg_says(out)
        with av.open(str(out)) as c:
            assert any(s.type == "data" for s in c.streams)
    if suffix == ".mov":
        assert tags.get("reel_name") == "A001"


def test_drop_frame_timecode_counts_as_smpte_does():
    ntsc = Fraction(30000, 1001)
    assert from_frames(1800, ntsc, ";") == "00:01:00;02"  # frames 00 and 01 of the minute are dropped
    assert from_frames(17982, ntsc, ";") == "00:10:00;00"  # but not in every tenth minute
    assert to_frames("01:00:00;00", ntsc) == (107892, ";")
    assert shifted("00:00:59;29", 1, ntsc) == "00:01:00;02"
    assert shifted("00:59:59:23", 1, Fraction(24)) == "01:00:00:00"
    assert shifted("23:59:59:24", 1, Fraction(25)) == "00:00:00:00"  # a day wraps
    with pytest.raises(ValueError):
        to_frames("1 hour", Fraction(24))


def test_a_source_without_timecode_writes_none(tmp_path):
    from .clips import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=4)
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "o.mov"
    assert main(["render", str(clip), "--style", str(tmp_path / "s.png"), "-o", str(out), *TINY]) == 0
    assert "timecode" not in _tags(out)
    with av.open(str(out)) as c:
        assert not any(s.type == "data" for s in c.streams) and np.all([s.type != "data" for s in c.streams])


def test_an_mxf_timecode_reaches_a_mov_output(tmp_path):
    """MXF, as broadcast cameras and editors write it (MPEG-2 video, the timecode in the
    material package), rendered into a MOV: the timecode track carries it, moved on by --start."""
    src = tmp_path / "cam.mxf"
    with av.open(str(src), "w", format="mxf") as o:
        o.metadata["timecode"] = "10:00:00:00"
        v = o.add_stream("mpeg2video", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(25):
            for p in v.encode(av.VideoFrame.from_ndarray(pattern(48, 64, shift=i), format="rgb24")):
                o.mux(p)
        for p in v.encode(None):
            o.mux(p)
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "out.mov"
    assert main(["render", str(src), "--style", str(tmp_path / "s.png"), "-o", str(out), "--start", "0.4",
                 *TINY]) == 0
    assert _tags(out)["timecode"] == "10:00:00:10"
