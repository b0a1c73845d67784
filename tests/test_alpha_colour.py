"""Alpha, bit depth, colour tags and HDR: what a compositor or a colourist brings comes back
intact. Fixtures are made by PyAV as cameras and compositors write them; the outputs are checked
by an independent reader, Debian's ffprobe (``.ci/run`` installs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.io import colour
from videostyle.io.images import write_image
from videostyle.io.media import probe, read_frames
from videostyle.io.codecs import output_picture
from videostyle.io.mux import VideoFormat, VideoWriter

from .conftest import pattern, stripes

TINY = ["--model", "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--device", "cpu",
        "--precision", "fp32", "--settle", "0", "-q"]
FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="needs ffprobe (Debian's ffmpeg package)")


def ffprobe(path: Path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-count_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return next(s for s in json.loads(out)["streams"] if s["codec_type"] == "video")


def _alpha_ramp(h: int, w: int, i: int = 0) -> np.ndarray:
    """A soft-edged matte, as a keyer leaves it: opaque middle, a ramp, transparent outside."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(yy - h / 2, xx - w / 2 - i)
    return np.clip((min(h, w) * 0.45 - r) / 6.0, 0.0, 1.0)


def _style(tmp_path: Path) -> Path:
    p = tmp_path / "style.png"
    write_image(p, stripes(48, 48))
    return p


def _encode(path: Path, codec: str, pix_fmt: str, frames: list[av.VideoFrame], fmt: str | None = None,
            options: dict[str, str] | None = None, tags: tuple[int, int, int, int] | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=12, options=options or {})
        s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, pix_fmt
        if tags:
            cc = s.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = tags
        for i, f in enumerate(frames):
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def _rgba_frames(n: int, h: int = 48, w: int = 64, depth: int = 16) -> list[np.ndarray]:
    """RGBA frames at ``depth`` bits (as uint16 at full scale), the colour garbage where transparent."""
    top = 2 ** depth - 1
    out = []
    for i in range(n):
        rgb = pattern(h, w, shift=2 * i).astype(np.float32) / 255.0
        a = _alpha_ramp(h, w, i)
        rgb[a == 0] = np.random.default_rng(i).random(((a == 0).sum(), 3))  # what a keyer leaves behind
        out.append(np.round(np.dstack([rgb, a]) * top).astype(np.uint16))
    return out


def _prores_4444(path: Path, n: int = 6) -> Path:
    frames = []
    for img in _rgba_frames(n, depth=16):
        f = av.VideoFrame.from_ndarray(img, format="rgba64le").reformat(format="yuva444p10le", dst_colorspace=1,
                                                                         dst_color_range=1)
        a10 = (img[..., 3] >> 6).astype("<u2")  # the matte at the encoder's 10 bits, written as is
        p = f.planes[3]
        buf = np.zeros((p.height, p.line_size // 2), "<u2")
        buf[:, :p.width] = a10
        p.update(buf.tobytes())
        frames.append(f)
    return _encode(path, "prores_ks", "yuva444p10le", frames, options={"profile": "4"}, tags=(1, 1, 1, 1))


def _alpha_of(path: Path) -> list[np.ndarray]:
    """Each frame's alpha as the file holds it (PyAV's decoders, read as videostyle reads it)."""
    return [f.alpha for f in read_frames(path)]


# -- the compositing round trips ----------------------------------------------------------------

def test_sixteen_bit_rgba_png_sequence_round_trip_keeps_alpha_bit_identical(tmp_path):
    shot = tmp_path / "shot"
    shot.mkdir()
    frames = _rgba_frames(4)
    for i, img in enumerate(frames):
        cv2.imwrite(str(shot / f"{i + 101:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", str(shot / "%04d.png"), "--style", str(_style(tmp_path)), "-o",
                 str(out / "%04d.png"), *TINY]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0101.png", "0102.png", "0103.png", "0104.png"]
    for img, name in zip(frames, names):
        back = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16 and back.shape == (48, 64, 4)
        back = cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA)
        assert np.array_equal(back[..., 3], img[..., 3])  # the matte, bit for bit
        seen = img[..., 3] > 0
        assert np.abs(back[..., :3].astype(int) - img[..., :3])[seen].mean() > 1000  # the colour is stylized
    if FFPROBE:
        assert ffprobe(out / "0101.png")["pix_fmt"] == "rgba64be"


@needs_ffprobe
def test_prores_4444_round_trip_keeps_alpha_bit_identical(tmp_path):
    src = _prores_4444(tmp_path / "key.mov")
    out = tmp_path / "out.mov"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) == 0
    info = ffprobe(out)
    assert info["codec_name"] == "prores" and info["profile"] == "4444"
    assert info["pix_fmt"].startswith("yuva444p")
    assert int(info["nb_read_frames"]) == 6
    a_in, a_out = _alpha_of(src), _alpha_of(out)
    assert len(a_out) == 6 and all(np.array_equal(a, b) for a, b in zip(a_in, a_out))
    with av.open(str(out)) as c:  # the colour is stylized
        got = next(c.decode(video=0)).to_ndarray(format="rgb24")
    first = next(read_frames(src))
    assert np.abs(got.astype(int) - first.image)[first.alpha > 0].mean() > 5


@needs_ffprobe
def test_vp9_alpha_webm_keeps_its_alpha_and_mp4_says_it_cannot(tmp_path, capsys):
    frames = [av.VideoFrame.from_ndarray((img >> 8).astype(np.uint8), format="rgba") for img in _rgba_frames(6)]
    src = _encode(tmp_path / "key.webm", "libvpx-vp9", "yuva420p", frames, options={"crf": "20", "b": "0"})
    assert probe(src).picture.alpha
    out = tmp_path / "out.webm"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) == 0
    info = ffprobe(out)
    assert info["codec_name"] == "vp9" and info.get("tags", {}).get("alpha_mode") == "1"
    a_in, a_out = _alpha_of(src), _alpha_of(out)
    assert len(a_out) == 6
    # VP9 codes its alpha lossily, as it codes colour: close, not identical
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(a_in, a_out)) < 2 * 257
    capsys.readouterr()
    mp4 = tmp_path / "out.mp4"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(mp4), *TINY[:-1]]) == 0
    err = capsys.readouterr().err
    assert "cannot hold the source's alpha" in err
    assert sum("alpha" in line for line in err.splitlines()) == 1  # said once, not once a chunk
    assert ffprobe(mp4)["pix_fmt"] == "yuv420p"


def test_exr_with_alpha_round_trip_keeps_the_alpha_and_premultiplies(tmp_path):
    shot = tmp_path / "shot"
    shot.mkdir()
    a = _alpha_ramp(48, 64).astype(np.float32)
    lin = colour.srgb_decode(pattern(48, 64).astype(np.float32) / 255.0)
    for i in range(3):
        with av.open(str(shot / f"{i:03d}.exr"), "w", format="image2") as o:
            s = o.add_stream("exr", rate=1)
            s.width, s.height, s.pix_fmt = 64, 48, "gbrapf32le"
            rgba = np.dstack([lin * a[..., None], a]).astype(np.float32)  # premultiplied, as OpenEXR holds it
            for p in s.encode(av.VideoFrame.from_ndarray(rgba, format="gbrapf32le")):
                o.mux(p)
            for p in s.encode(None):
                o.mux(p)
    frames = list(read_frames(shot / "%03d.exr"))
    # divided by its alpha on the way in: the visible colour is the pattern's
    seen = a > 0.2
    assert np.abs(frames[0].image.astype(int) - pattern(48, 64))[seen].max() <= 2
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", str(shot / "%03d.exr"), "--style", str(_style(tmp_path)), "-o",
                 str(out / "%03d.exr"), *TINY]) == 0
    with av.open(str(out / "000.exr")) as c:
        f = next(c.decode(video=0))
        assert f.format.name == "gbrapf32le"
        back = f.to_ndarray(format="gbrapf32le")
    assert np.array_equal(back[..., 3], a)
    assert np.all(back[..., :3] <= back[..., 3:] + 1e-6)  # premultiplied: colour never above its alpha


def test_transparent_pixels_are_filled_from_the_visible_ones():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 10)
    rgb[:, 16:] = np.random.default_rng(0).integers(0, 255, (32, 16, 3))  # noise behind the matte
    alpha = np.zeros((32, 32), np.uint16)
    alpha[:, :16] = 65535
    filled = colour.fill_transparent(rgb, alpha)
    assert np.array_equal(filled[:, :16], rgb[:, :16])  # the visible colour untouched
    assert np.abs(filled[:, 16:].astype(int) - (200, 40, 10)).max() <= 2  # the hidden part takes its colour


# -- depth, colour tags and HDR ------------------------------------------------------------------

def _deep_clip(path: Path, tags: tuple[int, int, int, int], signal: np.ndarray, n: int = 4) -> Path:
    """A 10-bit HEVC clip of ``signal`` (R'G'B' 0..1 in the clip's own encoding), tagged ``tags``."""
    frames = []
    for i in range(n):
        img = np.round(np.roll(signal, 2 * i, axis=1) * 65535).astype(np.uint16)
        f = av.VideoFrame.from_ndarray(img, format="rgb48le")
        frames.append(f.reformat(format="yuv420p10le", dst_colorspace=tags[2], dst_color_range=tags[3]))
    return _encode(path, "libx265", "yuv420p10le", frames, options={"crf": "4", "preset": "ultrafast",
                                                                     "x265-params": "log-level=error"}, tags=tags)


def _smooth(h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([0.2 + 0.5 * xx / w, 0.3 + 0.4 * yy / h, 0.5 - 0.3 * xx / w]).astype(np.float32)


@needs_ffprobe
def test_ten_bit_bt2020_keeps_its_depth_and_tags(tmp_path):
    src = _deep_clip(tmp_path / "deep.mp4", (9, 14, 9, 1), _smooth())  # BT.2020, bt2020-10, limited
    out = tmp_path / "out.mp4"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) == 0
    info = ffprobe(out)
    assert info["codec_name"] == "hevc" and info["profile"] == "Main 10" and info["pix_fmt"] == "yuv420p10le"
    assert (info["color_primaries"], info["color_transfer"], info["color_space"], info["color_range"]) == \
        ("bt2020", "bt2020-10", "bt2020nc", "tv")
    assert int(info["nb_read_frames"]) == 4
    out8 = tmp_path / "vp9.webm"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out8), "--codec", "vp9",
                 *TINY]) == 0
    assert ffprobe(out8)["color_primaries"] == "bt2020"


def test_colour_survives_the_frame_path_in_the_source_matrix(tmp_path):
    """Read and written again without stylizing: a BT.2020 10-bit clip's pixels come back where
    they were (an 8-bit network picture's rounding), not shifted by a BT.709 matrix."""
    signal = _smooth()
    src = _deep_clip(tmp_path / "deep.mkv", (9, 14, 9, 1), signal)
    info = probe(src)
    assert info.picture.depth == 10 and info.picture.matrix == 9
    pix_fmt, pic, lost = output_picture("hevc", "matroska", info.picture)
    assert (pix_fmt, lost) == ("yuv420p10le", ())
    out = tmp_path / "again.mkv"
    w = VideoWriter(out, VideoFormat(64, 48, info.time_base, info.fps, codec="hevc", crf=4, preset="ultrafast",
                                     pix_fmt=pix_fmt, picture=pic))
    for fr in read_frames(src):
        w.write(fr.image, fr.pts)
    w.finish()
    with av.open(str(src)) as a, av.open(str(out)) as b:
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        assert fb.format.name == "yuv420p10le" and fb.colorspace == 9
        ra, rb = (f.reformat(format="rgb48le").to_ndarray().astype(np.float32) / 65535 for f in (fa, fb))
    assert np.abs(ra - rb).mean() < 1.5 / 255


@needs_ffprobe
@pytest.mark.parametrize("transfer,trc,name", [("pq", 16, "smpte2084"), ("hlg", 18, "arib-std-b67")])
def test_hdr_is_converted_by_the_named_operator_and_back(tmp_path, capsys, transfer, trc, name):
    srgb = _smooth()
    signal = colour.display_to_hdr(srgb, transfer)
    src = _deep_clip(tmp_path / f"{transfer}.mp4", (9, trc, 9, 1), signal)
    frames = list(read_frames(src))
    assert np.abs(frames[0].image.astype(np.float32) / 255 - srgb).mean() < 2 / 255  # the network's SDR picture
    out = tmp_path / "out.mp4"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY[:-1]]) == 0
    err = capsys.readouterr().err
    assert colour.OPERATOR in err and f"back to {transfer.upper()}" in err
    info = ffprobe(out)
    assert (info["pix_fmt"], info["color_transfer"], info["color_primaries"]) == ("yuv420p10le", name, "bt2020")
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(tmp_path / "no.mp4"),
                 "--hdr", "refuse", *TINY]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is HDR" in err[0] and "--hdr convert" in err[0]
    assert not (tmp_path / "no.mp4").exists()


def test_hdr_operator_is_invertible_below_the_peak():
    x = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32) * 0.95
    for transfer in ("pq", "hlg"):
        back = colour.hdr_to_display(colour.display_to_hdr(x, transfer), transfer)
        assert np.abs(back - x).max() < 0.5 / 255
    white = colour.display_to_hdr(colour.srgb_encode(np.full((1, 1, 3), colour.KNEE, np.float32)), "pq")
    nits = colour.pq_eotf(white)
    assert nits == pytest.approx(colour.REFERENCE_WHITE * colour.KNEE, rel=1e-3)  # identity below the knee


def test_an_untagged_eight_bit_source_is_tagged_bt709_as_before():
    pix_fmt, pic, lost = output_picture("h264", "mp4", colour.Picture())
    assert pix_fmt == "yuv420p" and (pic.primaries, pic.trc, pic.matrix, pic.range) == (1, 1, 1, 1) and not lost


def test_default_codec_keeps_depth_and_alpha():
    from videostyle.io.codecs import default_codec

    deep, keyed = colour.Picture(depth=10), colour.Picture(alpha=True, chroma="444", depth=12)
    assert [default_codec(f, deep) for f in ("mp4", "mov", "matroska", "webm")] == ["hevc", "prores", "hevc", "av1"]
    assert [default_codec(f, keyed) for f in ("mov", "matroska", "webm")] == ["prores", "prores", "vp9"]
    assert default_codec("mp4", colour.Picture()) == "h264"


@needs_ffprobe
def test_quicktime_animation_argb_goes_to_prores_4444_with_its_alpha(tmp_path):
    frames = [av.VideoFrame.from_ndarray((img >> 8).astype(np.uint8), format="rgba").reformat(format="argb")
              for img in _rgba_frames(4)]
    src = _encode(tmp_path / "anim.mov", "qtrle", "argb", frames)
    assert probe(src).picture.alpha
    out = tmp_path / "out.mov"
    assert main(["render", str(src), "--style", str(_style(tmp_path)), "-o", str(out), *TINY]) == 0
    assert ffprobe(out)["profile"] == "4444"
    a_in, a_out = _alpha_of(src), _alpha_of(out)
    assert len(a_out) == 4 and all(np.array_equal(a >> 8, b >> 8) for a, b in zip(a_in, a_out))  # at its 8 bits
