"""Image sequences as an output: ``-o out/%04d.png`` (or ``.tif``, ``.jpg``, ``.exr``) writes one
file per frame, each through a temporary name and a rename, so that a crash never leaves a half
file under a frame's name. Numbers follow the source's frame numbers when the input is a
sequence, else they start at ``--start-number`` (0).

A render writes its frames in the same chunks as a video's (``render.resume.Chunks``): a chunk's
file is the list of the frames it wrote, closed once they are all on disk, so a resumed render
passes over them. EXR holds linear light: frames go out through the inverse of the sRGB
transfer they came in by (IEC 61966-2-1), as 32-bit float, premultiplied by their alpha as
OpenEXR's convention is. PNG and TIFF are written at 16 bits for a source deeper than 8, and
with the source's alpha, unchanged, where it has one (JPEG holds neither).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from videostyle.errors import OutputError
from videostyle.io import colour, durable
from videostyle.io.colour import Picture
from videostyle.io.sequence import PRINTF, numbered_files

OUT_EXTS = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".exr"}


def is_pattern(path: str | os.PathLike[str]) -> bool:
    """Whether an output names an image sequence (a printf pattern with an image extension)."""
    p = Path(path)
    return bool(PRINTF.search(p.name)) and p.suffix.lower() in OUT_EXTS


def check_pattern(path: Path) -> None:
    """One printf field in the name and an extension videostyle writes (the folder is checked
    with any output's, ``render.output.check_output``)."""
    if len(PRINTF.findall(path.name)) != 1 or "%" in PRINTF.sub("", path.name):
        raise OutputError(f"output {path}: use one frame-number field such as %04d in the file name")
    if path.suffix.lower() not in OUT_EXTS:
        raise OutputError(f"output {path}: image sequences are written as .png, .tif, .jpg or .exr")


def name(pattern: Path, number: int) -> Path:
    return pattern.with_name(pattern.name % number)


def existing(pattern: Path) -> list[Path]:
    """Frame files already on disk under the pattern (any number)."""
    return [f for _, f in numbered_files(pattern)]


@dataclass(frozen=True)
class FramesOut:
    """An image-sequence output: its pattern and the number of the span's first frame."""

    pattern: Path
    first_number: int = 0
    picture: Picture = Picture()  # the files' depth (32: float) and whether they hold alpha


def output_picture(pattern: Path, source: Picture) -> tuple[Picture, tuple[str, ...]]:
    """What the files hold for a ``source``, and what they cannot keep of it (a line each)."""
    ext = pattern.suffix.lower()
    lost = []
    if ext in (".jpg", ".jpeg"):
        pic = Picture(depth=8)
        if source.alpha:
            lost.append("JPEG cannot hold the source's alpha, so the frames are colour only (.png, .tif or .exr "
                        "keep it)")
        if source.depth > 8:
            lost.append(f"JPEG holds 8 bits, so the source's {source.describe()} loses its depth (.png or .tif "
                        "write 16 bits)")
    else:
        pic = Picture(depth=32 if ext == ".exr" else 16 if source.depth > 8 else 8, alpha=source.alpha,
                      premultiplied=ext == ".exr" and source.alpha, linear=ext == ".exr")
    if source.hdr is not None:
        lost.append(f"image files are written as the network's SDR sRGB{' (linear)' if ext == '.exr' else ''}; the "
                    f"source's {source.hdr.upper()} goes back only into a video file")
    return pic, tuple(lost)


def encode(path: Path, image: np.ndarray, alpha: np.ndarray | None = None, pic: Picture = Picture()) -> bytes:
    """One frame's file contents for ``path``'s format: ``image`` is sRGB uint8, ``alpha`` the
    source's (kept where ``pic`` holds alpha)."""
    ext = path.suffix.lower()
    alpha = alpha if pic.alpha else None
    if ext == ".exr":
        return _exr(image, alpha)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    px = image.astype(np.uint16) * 257 if pic.depth == 16 else image
    px = cv2.cvtColor(px, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        px = np.dstack([px, colour.alpha_at(alpha, pic.depth)])
    ok, data = cv2.imencode(ext, px, params)
    if not ok:
        raise OutputError(f"cannot encode {path}")
    return data.tobytes()


def _exr(image: np.ndarray, alpha: np.ndarray | None) -> bytes:
    import io

    lin = colour.srgb_decode(image.astype(np.float32) / 255.0)
    fmt = "gbrpf32le"
    if alpha is not None:
        a = colour.alpha_at(alpha, 32)
        lin, fmt = np.dstack([lin * a[..., None], a]).astype(np.float32), "gbrapf32le"
    buf = io.BytesIO()
    with av.open(buf, "w", format="image2pipe") as out:
        s = out.add_stream("exr", rate=1)
        s.width, s.height, s.pix_fmt = image.shape[1], image.shape[0], fmt
        for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(lin), format=fmt)):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return buf.getvalue()


class SequenceWriter:
    """The frames of one chunk written as numbered files from ``number`` on; ``finish`` writes the
    chunk's list of them to ``manifest`` and returns it."""

    def __init__(self, out: FramesOut, manifest: Path, index: int) -> None:
        self.out, self.manifest = out, manifest
        self.number = out.first_number + index
        self.written: list[str] = []

    def write(self, image: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        path = name(self.out.pattern, self.number)
        try:
            durable.write_bytes(path, encode(path, np.ascontiguousarray(image), alpha, self.out.picture))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.written.append(path.name)
        self.number += 1

    def finish(self) -> Path:
        durable.write_text(self.manifest, "\n".join(self.written) + "\n")
        return self.manifest

    def abort(self) -> None:
        """The frames already written are finished work: they stay."""
