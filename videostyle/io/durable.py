"""Writes that survive a power cut, not only a kill.

A rename is atomic, but after a crash of the machine it may be on disk while the file's data is
not (an empty chunk), or not be on disk at all (a deleted PNG whose chunk never arrived). The
journal order: write the file, fsync it, rename it into place, fsync its directory; only then
delete what it replaces.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: str | os.PathLike[str]) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Persist a directory's entries (renames, new files). A no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and network mounts) refuse fsync on directories
    finally:
        os.close(fd)


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, synced: bool = False) -> None:
    """Rename ``src`` to ``dst`` durably: the data first (unless ``synced``), then the rename."""
    if not synced:
        fsync_file(src)
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file through a temporary name beside it, durably; on failure the temporary file
    is removed and ``path`` is untouched (the OSError propagates)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace(tmp, p, synced=True)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode())
