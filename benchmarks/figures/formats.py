"""What goes in and what comes out: for each kind of source (made here with PyAV, as cameras and
compositors write them), a tiny render with the default codec, and what Debian's ffprobe (an
independent reader) says of the output; with the alpha compared plane for plane. Prints a table.

    python -m benchmarks figure formats
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from videostyle.cli import main as cli
from videostyle.io import colour
from videostyle.io.media import read_frames

TINY = ["--model", "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--settle", "0", "-q",
        "-y"]


def frames_rgba(n: int = 4, h: int = 48, w: int = 64) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        rgb = np.dstack([0.2 + 0.5 * xx / w, 0.3 + 0.4 * yy / h, 0.5 - 0.3 * np.roll(xx, i, 1) / w])
        a = np.clip((0.45 * min(h, w) - np.hypot(yy - h / 2, xx - w / 2 - i)) / 6.0, 0.0, 1.0)
        out.append(np.round(np.dstack([rgb, a]) * 65535).astype(np.uint16))
    return out


def encode(path: Path, codec: str, pix_fmt: str, frames: list[av.VideoFrame], options: dict | None = None,
           tags: tuple[int, int, int, int] | None = None, fmt: str | None = None, rate: int = 12) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=rate, options=options or {})
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


def deep(path: Path, trc: int, signal_of=lambda x: x, rate: int = 12, size: tuple[int, int] = (48, 64)) -> Path:
    fr = []
    for img in frames_rgba(4, *size):
        rgb = signal_of(img[..., :3].astype(np.float32) / 65535)
        f = av.VideoFrame.from_ndarray(np.round(rgb * 65535).astype(np.uint16), format="rgb48le")
        fr.append(f.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1))
    return encode(path, "libx265", "yuv420p10le", fr, {"crf": "8", "preset": "ultrafast",
                                                        "x265-params": "log-level=error"}, (9, trc, 9, 1), rate=rate)


def sources(d: Path, style: Path) -> list[tuple[str, Path, str]]:
    rgba = frames_rgba()
    prores = [av.VideoFrame.from_ndarray(x, format="rgba64le").reformat(format="yuva444p10le") for x in rgba]
    vp9 = [av.VideoFrame.from_ndarray((x >> 8).astype(np.uint8), format="rgba") for x in rgba]
    qtrle = [f.reformat(format="argb") for f in vp9]
    seq = d / "png16"
    seq.mkdir()
    for i, x in enumerate(rgba):
        cv2.imwrite(str(seq / f"{i + 1:04d}.png"), cv2.cvtColor(x, cv2.COLOR_RGBA2BGRA))
    out = d / "png16_out"
    out.mkdir()
    # MXF takes broadcast rates, and DNxHR frames of 256x120 and more.
    big = [av.VideoFrame.from_ndarray(x, format="rgba64le").reformat(format="yuva444p10le")
           for x in frames_rgba(4, 144, 256)]
    eight = [f.reformat(format="yuv420p") for f in big]
    return [
        ("ProRes 4444 with alpha (.mov)", encode(d / "key.mov", "prores_ks", "yuva444p10le", prores,
                                                 {"profile": "4"}, (1, 1, 1, 1)), "out.mov"),
        ("VP9 with alpha (.webm)", encode(d / "key.webm", "libvpx-vp9", "yuva420p", vp9, {"crf": "20", "b": "0"}),
         "out.webm"),
        ("QuickTime Animation ARGB (.mov)", encode(d / "anim.mov", "qtrle", "argb", qtrle), "out.mov"),
        ("VP9 with alpha into .mp4", d / "key.webm", "out.mp4"),
        ("16-bit RGBA PNG sequence", seq / "%04d.png", str(out / "%04d.png")),
        ("HEVC 10-bit BT.2020 SDR (.mp4)", deep(d / "sdr10.mp4", 14), "out.mp4"),
        ("HEVC 10-bit BT.2020 PQ (.mp4)", deep(d / "pq.mp4", 16, lambda x: colour.display_to_hdr(x, "pq")),
         "out.mp4"),
        ("HEVC 10-bit BT.2020 HLG (.mkv)", deep(d / "hlg.mkv", 18, lambda x: colour.display_to_hdr(x, "hlg")),
         "out.mkv"),
        ("HEVC 10-bit BT.2020 SDR into .webm --codec vp9", d / "sdr10.mp4", "out.webm"),
        ("H.264 8-bit at 25 fps into .mxf", encode(d / "cam.mp4", "libx264", "yuv420p", eight, rate=25), "out.mxf"),
        ("HEVC 10-bit BT.2020 SDR at 25 fps into .mxf", deep(d / "sdr10_25.mp4", 14, rate=25, size=(144, 256)),
         "out.mxf"),
        ("ProRes 4444 with alpha at 25 fps into .mxf", encode(d / "key25.mov", "prores_ks", "yuva444p10le", big,
                                                               {"profile": "4"}, (1, 1, 1, 1), rate=25), "out.mxf"),
    ]


def probe(path: Path) -> dict:
    got = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-count_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return next(s for s in json.loads(got)["streams"] if s["codec_type"] == "video")


def alpha_same(a: Path, b: Path) -> str:
    fa, fb = [f.alpha for f in read_frames(a)], [f.alpha for f in read_frames(b)]
    if fb[0] is None:
        return "none"
    if all(np.array_equal(x, y) for x, y in zip(fa, fb)):
        return "bit for bit"
    if all(np.array_equal(x >> 8, y >> 8) for x, y in zip(fa, fb)):
        return "bit for bit at the source's 8 bits"
    return f"mean difference {max(np.abs(x.astype(int) - y).mean() for x, y in zip(fa, fb)) / 257:.2f}/255"


def main(argv: list[str] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        style = d / "style.png"
        cv2.imwrite(str(style), (np.indices((48, 48)).sum(0) % 8 * 32).astype(np.uint8))
        print("| source | output | codec, profile | pixel format | primaries / transfer / matrix / range | frames | alpha | said |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for what, src, name in sources(d, style):
            out = d / name if "%" not in name else Path(name)
            extra = ["--codec", "vp9"] if "--codec vp9" in what else []
            extra += ["--output-size", "source"] if name.endswith(".mxf") else []
            import contextlib
            import io

            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = cli(["render", str(src), "--style", str(style), "-o", str(out), *TINY, *extra])
            said = " / ".join(line.removeprefix("videostyle: ") for line in err.getvalue().splitlines()
                              if "untrained" not in line) or "-"
            first = out if "%" not in name else out.with_name(out.name % 1)
            info = probe(first)
            tags = " / ".join(info.get(k, "-") for k in ("color_primaries", "color_transfer", "color_space",
                                                         "color_range"))
            n = info.get("nb_read_frames", "-") if "%" not in name else str(len(list(out.parent.glob("*.png"))))
            prof = f"{info['codec_name']}" + (f", {info['profile']}" if info.get("profile") else "")
            print(f"| {what} | {Path(name).suffix or name} | {prof} | {info['pix_fmt']} | {tags} | {n} | "
                  f"{alpha_same(src, out) if rc == 0 else '-'} | {said} |")

