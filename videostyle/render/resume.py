"""What a render keeps from an interrupted run (the settings its work folder must match are
``render.spec.record``): what to redo and what to skip, and the chunk encoder that turns finished frames into closed chunks
(after which their PNGs go)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videostyle.io import durable
from videostyle.io.sink import FrameSink
from videostyle.render.output import VideoJob, open_sink
from videostyle.io.workdir import WorkDir


@dataclass(frozen=True)
class ResumePlan:
    """Where a render picks up. Frames below ``covered`` are in closed chunks; of those, the
    ones below ``skip`` are not even decoded into the stylizer (the last ``keep`` before
    ``covered`` are restored from their PNGs, for the warm start). ``kept`` frames are finished."""

    covered: int
    skip: int
    kept: int
    ref_loss: float | None  # the reference loss in force at ``skip`` (None: the first frame sets it)


def plan_resume(work: WorkDir, keep: int) -> ResumePlan:
    """A closed chunk whose last ``keep`` frames' PNGs are gone cannot warm-start its successor:
    it is redone."""
    covered = work.covered()
    while covered and not all(work.has(i) for i in range(max(0, covered - keep), covered)):
        work.drop_chunk(work.closed_chunks()[-1][0])
        covered = work.covered()
    skip = max(0, covered - keep)
    return ResumePlan(covered, skip, covered + work.count(covered), work.latest_ref_loss(0, skip))


class Chunks:
    """The open chunk of a render's work folder: encoded frames go into it, and every
    ``render.chunk_frames`` frames it is closed (renamed into place) and the PNGs that a resume
    no longer needs are deleted. Chunk boundaries fall at fixed frame indices, so a resumed
    render encodes exactly as an uninterrupted one."""

    def __init__(self, work: WorkDir, job: VideoJob, out: Path, keep: int, warn: Callable[[str], None], *,
                 chunk_frames: int, loop: int = 0, before_close: Callable[[], None] = lambda: None) -> None:
        """``chunk_frames``: frames a chunk holds; ``loop``: --loop's frames, a chunk of their own."""
        self.work, self.job, self.keep, self.warn = work, job, keep, warn
        self.chunk_frames, self.loop = chunk_frames, loop
        self.before_close = before_close  # waits for the chunk's frames' PNGs (saved on threads)
        self.suffix = job.chunk_suffix(out)
        self.writer: FrameSink | None = None
        self.start = self.end = 0
        self.pruned = 0  # PNGs below this index are already deleted
        closed = {f for _, _, f in work.closed_chunks()}
        for f in work.chunks.iterdir():  # an open chunk of an interrupted run is redone
            if f not in closed:
                f.unlink(missing_ok=True)

    def write(self, index: int, image: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        # (--loop's frames are a chunk of their own: it is replaced)
        if self.writer is not None and (index >= self.start + self.chunk_frames or index == self.loop):
            self.close()
        if self.writer is None:
            self.start = index
            path = self.work.chunks / f"{index:06d}.open{self.suffix}"
            self.writer = open_sink(None, path, self.job, self.warn, manifest=path, first=index)
        self.writer.write(image, pts, alpha)
        self.end = index + 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.before_close()
        done = self.writer.finish()
        self.writer = None
        # Journal order: the chunk's data and name are on disk before the PNGs it replaces go
        # (VideoWriter.finish synced the file; this syncs the chunks folder after the rename).
        durable.replace(done, self.work.chunk_path(self.start, self.end, self.suffix), synced=True)
        upto = self.end - self.keep
        if upto > self.pruned:
            self.work.prune(self.pruned, upto)
            self.pruned = upto

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def parts(self) -> list[Path]:
        """The closed chunks, in order."""
        return [f for _, _, f in self.work.closed_chunks()]
