"""Image sequences as a video source: ``shot/%04d.png`` (a printf pattern, any start number),
``shot/*.png`` (a glob, in natural order) or a folder of numbered images.

Each file is decoded by FFmpeg through PyAV, as the ffmpeg tool's image2 demuxer does: PNG at 8
and 16 bits, TIFF, JPEG, BMP, WebP, OpenEXR (half and float) and DPX. OpenEXR holds linear
light, its alpha premultiplied; its frames are divided by their alpha and converted to
display-referred sRGB with the IEC 61966-2-1 transfer on the way in (``colour.to_display``), and
every kind's alpha travels beside them unchanged. The sequence's frames are numbered: a missing number
is refused with the missing file's name, or (``fill_gaps="hold"``) its slot shows the frame
before it, as a held frame, so the timing stays that of the numbers.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from videostyle.errors import InputError, setting
from videostyle.io import colour
from videostyle.io.limits import MAX_PIXELS, check_pixels

SEQUENCE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".dpx"}
PRINTF = re.compile(r"%(0?)(\d*)d")  # a frame-number field: %d, %04d
_NUMBER = re.compile(r"(\d+)(?=\D*$)")  # the last run of digits in a name


def is_sequence(spec: str | os.PathLike[str]) -> bool:
    """Whether an input names an image sequence rather than one file."""
    p = Path(spec)
    if p.is_file():  # a file named "clip [final].mp4" is that file
        return False
    return bool(PRINTF.search(p.name)) or any(c in p.name for c in "*?[") or p.is_dir()


def _natural(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Sequence:
    """A resolved sequence: its files in order, by frame number (None: a missing number whose slot
    holds the previous frame) and the first number."""

    spec: str
    files: tuple[Path | None, ...]
    first_number: int

    @property
    def existing(self) -> list[Path]:
        return [f for f in self.files if f is not None]


def numbered_files(spec: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(number, path) of the files a printf pattern names, in no order (the field's width is a
    minimum: ``%04d`` takes 0012 and 12345, not 12)."""
    p = Path(spec)
    m = PRINTF.search(p.name)
    assert m is not None
    pad = int(m.group(2) or 0) if m.group(1) or m.group(2) else 0
    prefix, suffix = p.name[:m.start()], p.name[m.end():]
    rx = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"$")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"input {spec}: the folder {folder} does not exist")
    out = []
    for entry in os.scandir(folder):
        mm = rx.match(entry.name)
        if mm and (not pad or len(mm.group(1)) >= pad) and entry.is_file():
            out.append((int(mm.group(1)), folder / entry.name))
    return out


def _numbered(paths: list[Path]) -> list[tuple[int, Path]]:
    """Files in natural order with the number their names end in (their position when they have none)."""
    paths = sorted(paths, key=lambda q: _natural(q.name))
    nums = [_NUMBER.search(q.stem) for q in paths]
    if all(nums):
        return [(int(m.group(1)), q) for m, q in zip(nums, paths)]  # type: ignore[union-attr]
    return list(enumerate(paths))


def resolve(spec: str | os.PathLike[str], fill_gaps: str = "refuse") -> Sequence:
    """The sequence an input names; a gap in its numbers is refused (``fill_gaps="refuse"``)
    with the first missing file's name, or held (``"hold"``)."""
    s = str(spec)
    p = Path(s)
    if PRINTF.search(p.name):
        found = numbered_files(s)
    elif p.is_dir():
        images = [q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SEQUENCE_EXTS]
        exts = {q.suffix.lower() for q in images}
        if len(exts) > 1:
            raise InputError(f"input {s}: the folder holds images of several kinds ({', '.join(sorted(exts))}); "
                             f"name one, e.g. {p / ('*' + sorted(exts)[0])}")
        found = _numbered(images)
    else:
        found = _numbered([Path(q) for q in glob.glob(s) if Path(q).is_file()])
    if not found:
        raise InputError(f"input {s}: no image files match; give a pattern like shot/%04d.png, a glob "
                         f"like 'shot/*.png' (quoted), or a folder")
    found.sort(key=lambda t: t[0])
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        dup = next(n for n in numbers if numbers.count(n) > 1)
        names = [q.name for n, q in found if n == dup]
        raise InputError(f"input {s}: frame number {dup} is there twice ({', '.join(names)}); keep one")
    files: list[Path | None] = []
    expected = numbers[0]
    for n, q in found:
        while expected < n:
            if fill_gaps != "hold":
                raise InputError(f"input {s}: frame {_name_for(q, n, expected)} is missing (the numbers jump from "
                                 f"{expected - 1} to {n}); add it, or pass {setting('fill_gaps', 'hold')} to show the frame before")
            files.append(None)
            expected += 1
        files.append(q)
        expected = n + 1
    return Sequence(s, tuple(files), numbers[0])


def _name_for(example: Path, number: int, missing: int) -> str:
    """The name the missing frame would have, from a neighbour's name and number."""
    m = _NUMBER.search(example.stem)
    if m is None:
        return f"#{missing}"
    digits = m.group(1)
    width = len(digits) if digits.startswith("0") or len(str(number)) == len(digits) else 0
    return str(example.with_name(example.stem[:m.start()] + str(missing).zfill(width) + example.stem[m.end():]
                                 + example.suffix))


def decode(path: Path, srgb: bool = False, max_pixels: int = MAX_PIXELS) -> av.VideoFrame:
    """One image file's picture, decoded by FFmpeg: OpenEXR as the linear floats it holds, or
    (``srgb``) through the sRGB transfer in the decoder (``apply_trc``: the same transfer, in C).
    A header that declares more than ``max_pixels`` is refused before the picture is decoded."""
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            stream = c.streams.video[0]
            check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels, "input", path)
            if srgb and stream.codec_context.name == "exr":
                stream.codec_context.options = {"apply_trc": "iec61966_2_1"}
            for frame in c.decode(stream):
                return frame
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"input {path} is not a readable image, or is truncated or corrupt "
                         f"({getattr(exc, 'strerror', None) or type(exc).__name__}); replace it or leave it out") from None
    raise InputError(f"input {path} holds no picture; replace it or leave it out")


def picture_of(path: Path, frame: av.VideoFrame) -> colour.Picture:
    """What an image file holds (OpenEXR: linear light, premultiplied alpha)."""
    return colour.of_frame(frame, linear=path.suffix.lower() == ".exr")


def frames(seq: Sequence, fps: Fraction, pic: colour.Picture, *, start: float = 0.0, duration: float = 0.0,
           max_frames: int = 0, skip: int = 0) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
    """(index, pts in 1/fps units, RGB uint8, alpha or None) of the span's frames; ``skip`` frames
    of the span are passed over without decoding (resume). Every picture must have the first
    one's size."""
    first = round(start * fps)
    last = len(seq.files) if duration <= 0 else min(len(seq.files), first + round(duration * fps))
    if max_frames:
        last = min(last, first + max_frames)
    size: tuple[int, int] | None = None
    held: tuple[np.ndarray, np.ndarray | None] | None = None  # the last picture decoded
    # OpenEXR without alpha goes through the decoder's transfer; with alpha its colour is divided
    # by the alpha first, in linear light (colour.to_display).
    srgb = pic.linear and not pic.alpha
    view = dataclasses.replace(pic, linear=False) if srgb else pic
    for pos in range(first + skip, last):
        index = pos - first
        f = seq.files[pos]
        if f is None:  # a held gap: the frame before it again
            if held is None:
                held = _last_before(seq, pos, srgb, view)
            yield index, pos, *held
            continue
        img, alpha = colour.to_display(decode(f, srgb), view)
        if size is None:
            size = img.shape[:2]
        elif img.shape[:2] != size:
            raise InputError(f"input {f} is {img.shape[1]}x{img.shape[0]}, the sequence's first frame "
                             f"{size[1]}x{size[0]}; every frame of a sequence needs the same size")
        held = img, alpha
        yield index, pos, img, alpha


def _last_before(seq: Sequence, pos: int, srgb: bool, view: colour.Picture) -> tuple[np.ndarray, np.ndarray | None]:
    for k in range(pos - 1, -1, -1):
        f = seq.files[k]
        if f is not None:
            return colour.to_display(decode(f, srgb), view)
    raise InputError(f"input {seq.spec}: no frame before the gap at number {seq.first_number + pos}")


def first_picture(seq: Sequence, max_pixels: int = MAX_PIXELS) -> tuple[int, int, colour.Picture]:
    """(width, height, Picture) of the sequence's first file."""
    f = seq.existing[0]
    frame = decode(f, max_pixels=max_pixels)
    return frame.width, frame.height, picture_of(f, frame)


def digest(seq: Sequence) -> str:
    """sha256 of the sequence's file names, sizes and modification times (a resume's check that
    the frames on disk are those the work folder was made from)."""
    import hashlib

    h = hashlib.sha256()
    for f in seq.existing:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
