"""A clip split into segments (``--workers``' Ray tasks, ``--chains``' chains): boundaries at
scene cuts where there are any, else at even lengths; a segment that does not begin at a cut
starts ``overlap`` frames early (its warm-up, cross-faded at the seam)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first frame this segment owns
    end: int  # one past its last frame
    warmup: int  # frames rendered before ``start`` (cross-faded with the previous segment)

    @property
    def first(self) -> int:
        return self.start - self.warmup


def plan_segments(n: int, cuts: list[int], workers: int, overlap: int) -> list[Segment]:
    """Split ``n`` frames into at most ``workers`` segments, snapping boundaries to scene cuts."""
    workers = max(1, min(workers, n))
    length = n / workers
    bounds: list[tuple[int, bool]] = []
    for k in range(1, workers):
        ideal = round(k * length)
        near = [c for c in cuts if abs(c - ideal) <= length / 4]
        b, at_cut = (min(near, key=lambda c: abs(c - ideal)), True) if near else (ideal, False)
        if (not bounds or b > bounds[-1][0]) and 0 < b < n:
            bounds.append((b, at_cut))
    segs: list[Segment] = []
    starts = [(0, True)] + bounds
    for i, (s, at_cut) in enumerate(starts):
        e = starts[i + 1][0] if i + 1 < len(starts) else n
        warm = 0 if at_cut else min(overlap, s)
        segs.append(Segment(i, s, e, warm))
    return segs
