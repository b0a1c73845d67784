"""Image sequences as an output: ``-o out/%04d.png`` (or ``.tif``, ``.jpg``, ``.exr``) writes one
file per frame, each through a temporary name and a rename, so that a crash never leaves a half
file under a frame's name. Numbers follow the source's frame numbers when the input is a
sequence, else they start at ``--start-number`` (0).

A render writes its frames in the same chunks as a video's (``render.resume.Chunks``): a chunk's
file is the list of the frames it wrote, closed once they are all on disk, so a resumed render
passes over them. EXR holds linear light: frames go out through the inverse of the sRGB
transfer they came in by (IEC 61966-2-1), as 32-bit float.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from videostyle.errors import OutputError
from videostyle.io import durable
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


def _linear(image: np.ndarray) -> np.ndarray:
    """sRGB uint8 to linear light, float32 (IEC 61966-2-1's inverse transfer)."""
    c = image.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def encode(path: Path, image: np.ndarray) -> bytes:
    """One frame's file contents for ``path``'s format."""
    ext = path.suffix.lower()
    if ext == ".exr":
        import io

        buf = io.BytesIO()
        with av.open(buf, "w", format="image2pipe") as out:
            s = out.add_stream("exr", rate=1)
            s.width, s.height, s.pix_fmt = image.shape[1], image.shape[0], "gbrpf32le"
            for p in s.encode(av.VideoFrame.from_ndarray(_linear(image), format="gbrpf32le")):
                out.mux(p)
            for p in s.encode(None):
                out.mux(p)
        return buf.getvalue()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"cannot encode {path}")
    return data.tobytes()


class SequenceWriter:
    """The frames of one chunk written as numbered files from ``number`` on; ``finish`` writes the
    chunk's list of them to ``manifest`` and returns it."""

    def __init__(self, out: FramesOut, manifest: Path, index: int) -> None:
        self.out, self.manifest = out, manifest
        self.number = out.first_number + index
        self.written: list[str] = []

    def write(self, image: np.ndarray, pts: int) -> None:
        path = name(self.out.pattern, self.number)
        try:
            durable.write_bytes(path, encode(path, np.ascontiguousarray(image)))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.written.append(path.name)
        self.number += 1

    def finish(self) -> Path:
        durable.write_text(self.manifest, "\n".join(self.written) + "\n")
        return self.manifest

    def abort(self) -> None:
        """The frames already written are finished work: they stay."""
