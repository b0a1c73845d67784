"""Measures of a stylized video: temporal error (flicker) against the source's motion, and
per-frame style/content losses.

Temporal error at gap k: mean over frames t of  sum M * (O_t - warp(O_{t-k}))^2 / sum M, with the
flow and the reliability mask M computed on the *source* frames (Ruder et al.'s measure), O in
[0, 1] and the squared error averaged over the RGB channels.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from videostyle.errors import InputError
from videostyle.temporal.flow import FlowParams, pair, warp
from videostyle.io.media import Span


@dataclass
class TemporalReport:
    frames: int
    size: tuple[int, int]  # (H, W) compared at
    gaps: tuple[int, ...]
    error: dict[int, float]  # gap -> mean temporal error
    per_frame: dict[int, list[float]] = field(default_factory=dict)  # gap -> error of frames gap..n-1
    reliable: float = 0.0  # mean reliable fraction at gap 1
    losses: dict[str, float] = field(default_factory=dict)  # mean style/content loss per frame, if measured
    source_left: bool = False  # the source span has frames past the stylized video's last
    note: str = ""  # why a measure was left out (the losses without the network's weights)

    def as_dict(self) -> dict[str, object]:
        return {"frames": self.frames, "size": list(self.size), "temporal_error": {str(k): v for k, v in self.error.items()},
                "reliable_fraction": self.reliable, "losses": self.losses, "source_frames_left": self.source_left,
                "per_frame": {str(k): v for k, v in self.per_frame.items()}}


def masked_error(current: np.ndarray, earlier: np.ndarray, back: np.ndarray, mask: np.ndarray) -> float:
    """sum M (O_t - warp(O_{t-k}))^2 / sum M for one frame pair (images float [0, 1])."""
    warped = warp(earlier, back)
    sq = ((current - warped) ** 2).mean(-1)
    total = float(mask.sum())
    return float((sq * mask).sum() / total) if total > 0 else 0.0


def _frames(path: Path, span: Span) -> Iterator[np.ndarray]:
    for fr in span.frames(path):
        yield fr.image


def temporal_error(
    stylized: str | os.PathLike[str] | Sequence[np.ndarray],
    source: str | os.PathLike[str] | Sequence[np.ndarray],
    *,
    gaps: Sequence[int] = (1,),
    params: FlowParams = FlowParams(),
    span: Span = Span(),
) -> TemporalReport:
    """Temporal error of ``stylized`` against the motion of ``source`` (files or frame lists).

    ``span`` is the part of the source that was rendered (a render's own --start/--duration);
    its ``max_frames`` limits both. Source frames are resized to the stylized
    frames' size, and the two are paired frame by frame from their first.
    """
    whole = Span(max_frames=span.max_frames)
    sty_it = _frames(Path(stylized), whole) if isinstance(stylized, (str, os.PathLike)) else iter(stylized)
    src_it = _frames(Path(source), span) if isinstance(source, (str, os.PathLike)) else iter(source)
    gaps = tuple(sorted(set(int(g) for g in gaps)))
    if not gaps or gaps[0] < 1:
        raise InputError("temporal error gaps must be >= 1")
    depth = gaps[-1]
    hist: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=depth)
    per: dict[int, list[float]] = {g: [] for g in gaps}
    reliable: list[float] = []
    n = 0
    size = (0, 0)
    for o in sty_it:
        s = next(src_it, None)
        if s is None:
            raise InputError(f"the stylized video has more frames than the source ({n + 1}+); compare matching clips")
        h, w = o.shape[:2]
        size = (h, w)
        if s.shape[:2] != (h, w):
            s = cv2.resize(s, (w, h), interpolation=cv2.INTER_AREA)
        of = o.astype(np.float32) / 255.0 if o.dtype == np.uint8 else o.astype(np.float32)
        for g in gaps:
            if len(hist) >= g:
                src_prev, out_prev = hist[-g]
                p = pair(s, src_prev, params)
                per[g].append(masked_error(of, out_prev, p.back, p.mask))
                if g == 1:
                    reliable.append(p.reliable)
        hist.append((s, of))
        n += 1
    if n == 0:
        raise InputError("the stylized video has no frames")
    error = {g: float(np.mean(v)) if v else float("nan") for g, v in per.items()}
    left = next(src_it, None) is not None
    return TemporalReport(n, size, gaps, error, per, float(np.mean(reliable)) if reliable else 1.0, source_left=left)


def frame_losses(stylized: str | os.PathLike[str], source: str | os.PathLike[str], stylizer: object,
                 span: Span = Span()) -> dict[str, float]:
    """Mean weighted content and style loss per frame, measured with ``stylizer``'s network and
    styles, against the source ``span`` (as in :func:`temporal_error`)."""
    from videostyle.gatys.stylizer import Stylizer

    assert isinstance(stylizer, Stylizer)
    sums = {"content": 0.0, "style": 0.0}
    n = 0
    for o, s in zip(_frames(Path(stylized), Span(max_frames=span.max_frames)), _frames(Path(source), span)):
        h, w = o.shape[:2]
        if s.shape[:2] != (h, w):
            s = cv2.resize(s, (w, h), interpolation=cv2.INTER_AREA)
        terms = stylizer.score(o, s)
        sums["content"] += terms["content"]
        sums["style"] += terms["style"]
        n += 1
    return {k: v / max(n, 1) for k, v in sums.items()}
