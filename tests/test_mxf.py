"""MXF outputs, as broadcast and editing systems take them: an intra-frame codec (DNxHR, or
ProRes 4444 for alpha), PCM audio at 48 kHz, the source's timecode and reel name, and a
broadcast frame rate. Fixtures are made as cameras write them; outputs are read back by Debian's
ffprobe and ffmpeg (``.ci/run`` installs them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.io import colour
from videostyle.io.images import write_image
from videostyle.io.media import read_frames
from videostyle.io.codecs import default_codec, output_picture

from .conftest import pattern, stripes
from .test_alpha_colour import _rgba_frames

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="needs ffprobe (Debian's ffmpeg package)")
# Stylized at 64 px, written at the source's size: DNxHR takes frames of 256x120 and more.
TINY = ["--model", "random", "--size", "64", "--output-size", "source", "--iterations", "2",
        "--iterations-later", "1", "--device", "cpu", "--precision", "fp32", "--settle", "0", "-q"]


def _probe(path: Path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _camera_mov(path: Path, fps: int = 24, frames: int = 24, rate: int = 44100) -> Path:
    """A MOV as a camera writes it: H.264 at 256x144, AAC at 44.1 kHz, a timecode track
    (01:00:00:00, reel A001) and a creation time."""
    with av.open(str(path), "w", format="mov") as o:
        o.metadata["creation_time"] = "2024-05-01T10:00:00.000000Z"
        v = o.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 256, 144, "yuv420p"
        v.metadata["timecode"], v.metadata["reel_name"] = "01:00:00:00", "A001"
        a = o.add_stream("aac", rate=rate)
        a.layout = "stereo"
        n = 0
        for i in range(frames):
            for p in v.encode(av.VideoFrame.from_ndarray(pattern(144, 256, shift=3 * i), format="rgb24")):
                o.mux(p)
            while n < (i + 1) * rate / fps:
                x = (0.3 * np.sin(2 * np.pi * 440 * (np.arange(1024) + n) / rate)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = rate, n
                for p in a.encode(af):
                    o.mux(p)
                n += 1024
        for s in (v, a):
            for p in s.encode(None):
                o.mux(p)
    return path


def _style(tmp_path: Path) -> Path:
    p = tmp_path / "style.png"
    write_image(p, stripes(48, 48))
    return p


def test_an_mxf_output_carries_dnxhr_pcm_timecode_and_reel(tmp_path, capsys):
    src = _camera_mov(tmp_path / "cam.mov")
    out = tmp_path / "out.mxf"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), "--start", "0.5", *TINY]) == 0
    assert "re-encoded as pcm_s16le at 48 kHz for .mxf" in capsys.readouterr().err
    info = _probe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("dnxhd", "DNXHR HQ", "yuv422p")
    assert (video["width"], video["height"], int(video["nb_read_frames"])) == (256, 144, 12)
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("pcm_s16le", "48000", 2)
    assert abs(float(audio["duration"]) - 0.5) < 1 / 24  # the span's audio, beside its frames
    assert info["format"]["tags"]["timecode"] == "01:00:00:12"  # moved on by --start
    assert video["tags"]["reel_name"] == "A001"
    assert info["format"]["tags"]["modification_date"].startswith("2024-05-01T10:00:00")  # the creation time
    from videostyle.io.media import probe

    assert probe(out).creation_time.startswith("2024-05-01T10:00:00")  # and read back, for an MXF source
    # ffmpeg decodes every packet, and the colour is stylized
    subprocess.run([FFPROBE.replace("ffprobe", "ffmpeg"), "-v", "error", "-xerror", "-i", str(out), "-f", "null", "-"],
                   check=True)
    got = next(read_frames(out)).image
    assert np.abs(got.astype(int) - pattern(144, 256, shift=36)).mean() > 5
    assert not list(tmp_path.glob(".out*"))  # no temporary file or work folder left


def test_alpha_reaches_mxf_bit_for_bit_through_prores_4444(tmp_path):
    src = tmp_path / "key.mov"
    with av.open(str(src), "w", format="mov") as o:
        s = o.add_stream("prores_ks", rate=25, options={"profile": "4"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuva444p10le"
        for i, img in enumerate(_rgba_frames(5)):
            f = av.VideoFrame.from_ndarray(img, format="rgba64le").reformat(format="yuva444p10le", dst_colorspace=1,
                                                                             dst_color_range=1)
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    out = tmp_path / "key.mxf"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) == 0
    video = next(s for s in _probe(out)["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["profile"], int(video["nb_read_frames"])) == ("prores", "4444", 5)
    assert video["pix_fmt"].startswith("yuva444p")
    a_in, a_out = [f.alpha for f in read_frames(src)], [f.alpha for f in read_frames(out)]
    assert len(a_out) == 5 and all(np.array_equal(a, b) for a, b in zip(a_in, a_out))


def test_mxf_refuses_a_rate_it_cannot_hold_in_one_line(tmp_path, capsys):
    src = _camera_mov(tmp_path / "cam.mov", fps=15, frames=6)
    out = tmp_path / "out.mxf"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out.mxf" in err[0] and "not the source's 15" in err[0] and ".mov" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_mxf_codecs_follow_the_source():
    """DNxHR HQ for 8-bit 4:2:0, HQX (10-bit) for a deep source, 444 for a 4:4:4 one, ProRes
    4444 for alpha; a phone's 29.98 average writes at 29.97."""
    from fractions import Fraction

    from videostyle.io.codecs import mxf_rate

    cases = [(colour.Picture(), "dnxhr", "yuv422p"), (colour.Picture(depth=10), "dnxhr", "yuv422p10le"),
             (colour.Picture(chroma="444"), "dnxhr", "yuv444p10le"),
             (colour.Picture(alpha=True, chroma="444", depth=12), "prores", "yuva444p10le")]
    for source, codec, pix_fmt in cases:
        assert default_codec("mxf", source) == codec
        assert output_picture(codec, "mxf", source)[0] == pix_fmt
    assert mxf_rate(Fraction(29.98), Path("o.mxf")) == Fraction(30000, 1001)
    assert mxf_rate(Fraction(25), Path("o.mxf")) == 25
