"""A render's progress on disk, beside its output, so an interrupted render resumes.

``.{output name}.videostyle-work/`` holds ``state.json`` (a hash of everything that determines
the frames and their encoding, and the settings behind it), ``chunks/AAAAAA-BBBBBB.EXT``: the
finished frames A..B-1 encoded as the output will carry them, one file per closed chunk, and
``frames/NNNNNN.png``: the finished frames of the open chunk, lossless, each written atomically,
plus the last few frames of the closed chunks that a resume needs to warm-start the next frame
(a chunk's other PNGs are deleted once it is closed, so the folder stays about the size of the
output plus one chunk of PNGs). Resuming keeps the closed chunks, re-encodes the open chunk's
kept frames and continues from the first missing one; the output is muxed from the chunks at
the end and the folder removed after it is in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from videostyle.io import durable
from videostyle.errors import VideostyleError, setting
from videostyle.io.images import read_image, write_image


class ResumeConflict(VideostyleError):
    exit_code = 2


def file_digest(path: str | os.PathLike[str], full: bool = True) -> str:
    """sha256 of a file; with ``full=False`` of its size, first and last MiB (large videos)."""
    p = Path(path)
    h = hashlib.sha256()
    size = p.stat().st_size
    h.update(str(size).encode())
    with open(p, "rb") as fh:
        if full or size <= 4 << 20:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(fh.read(1 << 20))
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def work_path(output: Path) -> Path:
    """The work folder of a render into ``output``: beside it, hidden."""
    return output.with_name(f".{output.name}.videostyle-work")


class WorkDir:
    def __init__(self, output: Path, settings: dict[str, Any]) -> None:
        self.output = output
        self.path = work_path(output)
        self.frames = self.path / "frames"
        self.settings = settings
        self.hash = digest(settings)

    def open(self, restart: bool) -> None:
        """Prepare the folder: new, or kept from an interrupted render with the same settings."""
        state_file = self.path / "state.json"
        if restart and self.path.exists():
            shutil.rmtree(self.path)
        if state_file.exists():
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                state = {}
            if state.get("hash") != self.hash and not self._holds_work():
                shutil.rmtree(self.path)  # a render that stopped before finishing a frame: start over
            elif state.get("hash") != self.hash:
                old = _flat(state.get("settings", {}))
                new = _flat(json.loads(json.dumps(self.settings, default=str)))
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                what = ", ".join(changed[:5]) + ("..." if len(changed) > 5 else "") if changed else "unknown"
                raise ResumeConflict(
                    f"{self.output} has an interrupted render made with other settings (changed: {what}); "
                    f"rerun with {setting('restart')} to discard its {self.finished()} finished frames, or restore the settings"
                )
        self.frames.mkdir(parents=True, exist_ok=True)
        self.chunks.mkdir(exist_ok=True)
        if not state_file.exists():
            durable.write_text(state_file, json.dumps({"hash": self.hash, "settings": self.settings}, indent=1,
                                                      default=str))

    def _holds_work(self) -> bool:
        """Any finished frame here: a PNG (parallel segments included) or a closed chunk."""
        return bool(self.closed_chunks()) or next(self.path.rglob("*.png"), None) is not None

    def _file(self, index: int, suffix: str) -> Path:
        return self.frames / f"{index:06d}{suffix}"

    def frame_path(self, index: int) -> Path:
        return self._file(index, ".png")

    def count(self, first: int = 0) -> int:
        """Consecutive finished frames (PNGs) from ``first`` on."""
        n = first
        while self.frame_path(n).exists():
            n += 1
        return n - first

    def has(self, index: int) -> bool:
        return self.frame_path(index).exists()

    def save(self, index: int, image: np.ndarray) -> None:
        write_image(self.frame_path(index), image)

    def mark_cut(self, index: int) -> None:
        """Remember that ``index`` restarted at a scene cut (resume rebuilds the same history)."""
        self._file(index, ".cut").touch()

    def is_cut(self, index: int) -> bool:
        return self._file(index, ".cut").exists()

    def save_ref_loss(self, index: int, loss: float) -> None:
        """Remember the final loss of a full-iteration frame (later frames stop at a ratio of it)."""
        durable.write_text(self._file(index, ".ref"), repr(float(loss)))

    def ref_loss(self, index: int) -> float | None:
        try:
            return float(self._file(index, ".ref").read_text())
        except (OSError, ValueError):
            return None

    def latest_ref_loss(self, first: int, before: int) -> float | None:
        """The reference loss of the last full-iteration frame in ``first`` .. ``before - 1``."""
        for i in range(before - 1, first - 1, -1):
            ref = self.ref_loss(i)
            if ref is not None:
                return ref
        return None

    # -- encoded chunks

    @property
    def chunks(self) -> Path:
        return self.path / "chunks"

    def chunk_path(self, start: int, end: int, suffix: str) -> Path:
        """Where the closed chunk of frames ``start`` .. ``end - 1`` lives."""
        return self.chunks / f"{start:06d}-{end:06d}{suffix}"

    def closed_chunks(self) -> list[tuple[int, int, Path]]:
        """Consecutive closed chunks from frame 0: (start, end, path)."""
        found: dict[int, tuple[int, Path]] = {}
        if self.chunks.is_dir():
            for f in self.chunks.iterdir():
                a, sep, b = f.stem.partition("-")
                if sep and a.isdigit() and b.isdigit() and int(b) > int(a) and not f.name.startswith("."):
                    found[int(a)] = (int(b), f)
        out: list[tuple[int, int, Path]] = []
        start = 0
        while start in found:
            end, f = found[start]
            out.append((start, end, f))
            start = end
        return out

    def covered(self) -> int:
        """Frames 0 .. N-1 held by closed chunks: N."""
        chunks = self.closed_chunks()
        return chunks[-1][1] if chunks else 0

    def finished(self) -> int:
        """Consecutive finished frames from 0, in closed chunks or as PNGs."""
        covered = self.covered()
        return covered + self.count(covered)

    def drop_chunk(self, start: int) -> None:
        for a, _, f in self.closed_chunks():
            if a == start:
                f.unlink(missing_ok=True)

    def prune(self, first: int, before: int) -> None:
        """Delete the PNGs of frames ``first`` .. ``before - 1`` (held by closed chunks); their
        cut and loss markers stay for resume."""
        for i in range(first, before):
            self.frame_path(i).unlink(missing_ok=True)

    def load(self, index: int) -> np.ndarray:
        return read_image(self.frame_path(index), "finished frame")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def at(cls, path: Path) -> WorkDir:
        """A frame store at ``path`` (no state file): a parallel worker's view of a work folder."""
        store = cls.__new__(cls)
        store.output, store.settings, store.hash = path, {}, ""
        store.path = path
        store.frames = path / "frames"
        return store

    def store(self, name: str) -> WorkDir:
        """A frame store of its own inside this folder (a painted render's source frames, each of
        its passes' frames)."""
        sub = WorkDir.at(self.path / name)
        sub.frames.mkdir(parents=True, exist_ok=True)
        return sub

    def segment(self, index: int) -> WorkDir:
        """The frame store of parallel segment ``index`` (its own frames, cut and loss markers)."""
        seg = WorkDir.at(self.path / f"segment{index:03d}")
        seg.frames.mkdir(parents=True, exist_ok=True)
        return seg
