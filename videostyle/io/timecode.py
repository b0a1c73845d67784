"""SMPTE timecode: the ``HH:MM:SS:FF`` label of a clip's first frame (``;`` before the frames for
drop-frame at 29.97 and 59.94 frames a second), moved on by a number of frames. A render that
starts at ``--start`` carries the source's timecode shifted by that many frames, so an editor
can conform the stylized clip to the original."""

from __future__ import annotations

import re
from fractions import Fraction

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def _nominal(fps: Fraction) -> int:
    return max(1, round(float(fps)))


def _drop(fps: Fraction, sep: str) -> int:
    """Frame numbers dropped each minute (but every tenth): 2 at 29.97, 4 at 59.94; 0 otherwise."""
    if sep not in ";,":
        return 0
    return round(float(fps) / 15) if abs(float(fps) * 1001 / 1000 - round(float(fps))) < 0.01 else 0


def to_frames(tc: str, fps: Fraction) -> tuple[int, str]:
    """The frame count a timecode stands for, and its frames separator."""
    m = _TC.match(tc.strip())
    if m is None:
        raise ValueError(f"not a timecode: {tc!r}")
    h, mi, s, sep, f = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4), int(m.group(5))
    n, d = _nominal(fps), _drop(fps, sep)
    minutes = 60 * h + mi
    return ((3600 * h + 60 * mi + s) * n + f) - d * (minutes - minutes // 10), sep


def from_frames(frames: int, fps: Fraction, sep: str = ":") -> str:
    """The timecode of frame count ``frames`` (wrapping at 24 hours)."""
    n, d = _nominal(fps), _drop(fps, sep)
    if d:
        per10 = 10 * 60 * n - 9 * d  # frames in ten minutes
        tens, rest = divmod(frames, per10)
        frames += 9 * d * tens + (d * ((rest - d) // (60 * n - d)) if rest > d else 0)
    f = frames % n
    s = frames // n
    return f"{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}{sep}{f:02d}"


def shifted(tc: str, frames: int, fps: Fraction) -> str:
    """``tc`` moved on by ``frames``."""
    start, sep = to_frames(tc, fps)
    return from_frames(start + frames, fps, sep)
