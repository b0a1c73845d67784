"""Painted keyframes: frames an artist painted over, carried through the shot.

``--paint f:120=painted_0120.png`` (or ``SECONDS=IMAGE``) makes frame 120 a painted keyframe.
The render (``render.paint``) puts the painting itself at its frame, and renders the frames
around it as chains that start from the painting warped through the flow, with the painting's
own Gram matrices (or style vector) as their style: its brushwork is the style. This module is
the plan, torch-free: where the paintings fall, which passes render which frames in which
direction, how two passes blend, and whether a painting follows its frame's layout.

Between two paintings at frames a < b a forward pass renders a+1 .. b-1 from a's painting and a
backward pass renders b-1 .. a+1 from b's; frame i is (1 - w) forward + w backward with
w = (i - a) / (b - a), so each end is its painting (EbSynth blends its two passes the same way).
Before the first painting a backward pass alone; after the last, a forward pass alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from videostyle.errors import ConfigError, InputError, setting
from videostyle.temporal.flow import FramePair, difference, warp
from videostyle.temporal.keyframes import At, parse_time
from videostyle.temporal.regions import FrameRegions, Regions

# Below this correlation of edges a painting is taken not to follow its frame's layout.
# A painting over its frame keeps its edges where the frame has them (a stylized render of a
# frame correlates above 0.3 with it; the same painting against a frame a second away, or
# another shot, below 0.1: tests/test_paint.py).
MATCH = 0.15


@dataclass(frozen=True)
class Painting:
    """One painted keyframe: its image file and where it goes."""

    at: At
    image: Path
    spec: str  # as the user wrote it, for messages

    def frame(self, fps: float, start: float = 0.0) -> int:
        """The span-relative frame index of this painting (``start``: the span's first second)."""
        if self.at.frame is not None:
            return self.at.frame - round(start * fps)
        return round((self.at.resolve(fps) - start) * fps)


def parse(spec: str) -> Painting:
    """``f:120=painted.png`` or ``5.0=painted.png``."""
    when, sep, image = spec.partition("=")
    at = parse_time(when) if sep else None
    if at is None or not image:
        raise ConfigError(f"{setting('paint', repr(spec))}: expected TIME=IMAGE, with TIME as f:FRAME or seconds "
                          f"(e.g. {setting('paint', 'f:120=painted_0120.png')})")
    return Painting(at, Path(image), spec)


@dataclass(frozen=True)
class Pass:
    """One chain of a painted render: from the painting at frame ``origin``, over ``frames`` in
    the order they are rendered (``step`` +1 forward, -1 backward)."""

    origin: int
    frames: tuple[int, ...]

    @property
    def step(self) -> int:
        return 1 if not self.frames or self.frames[0] > self.origin else -1

    @property
    def name(self) -> str:
        return f"{'fwd' if self.step > 0 else 'bwd'}{self.origin:06d}"


def passes(painted: list[int], total: int) -> list[Pass]:
    """The chains that render the frames of a ``total``-frame span around the ``painted`` frames
    (sorted, distinct): backward to the start, forward and backward across each gap, forward to
    the end."""
    out: list[Pass] = []
    first, last = painted[0], painted[-1]
    if first > 0:
        out.append(Pass(first, tuple(range(first - 1, -1, -1))))
    for a, b in zip(painted, painted[1:]):
        if b - a > 1:
            out.append(Pass(a, tuple(range(a + 1, b))))
            out.append(Pass(b, tuple(range(b - 1, a, -1))))
    if last < total - 1:
        out.append(Pass(last, tuple(range(last + 1, total))))
    return out


def weights(index: int, painted: list[int]) -> tuple[tuple[int, float], ...]:
    """Frame ``index``'s sources: ((origin, weight), ...) of the passes that rendered it, their
    weights summing to 1. A painted frame is its painting alone (its own origin, weight 1)."""
    if index in painted:
        return ((index, 1.0),)
    before = [p for p in painted if p < index]
    after = [p for p in painted if p > index]
    if not before:
        return ((after[0], 1.0),)
    if not after:
        return ((before[-1], 1.0),)
    a, b = before[-1], after[0]
    w = (index - a) / (b - a)
    return ((a, 1.0 - w), (b, w))


def resolve(paintings: list[Painting], fps: float, total: int | None, start: float = 0.0) -> dict[int, Painting]:
    """The paintings by span-relative frame; one line for a painting outside the span or two on
    one frame."""
    out: dict[int, Painting] = {}
    for p in paintings:
        i = p.frame(fps, start)
        if i < 0 or (total is not None and i >= total):
            last = f"{total - 1}" if total is not None else "?"
            raise InputError(f"{setting('paint', p.spec)}: frame {i} of the render is outside its frames (0 to {last}, at "
                             f"{fps:g} frames a second from {start:g} s); check the painting's time")
        if i in out:
            raise ConfigError(f"{setting('paint', p.spec)}: frame {i} already has a painting ({out[i].spec})")
        if not p.image.is_file():
            raise InputError(f"{setting('paint', p.spec)}: painting {p.image} does not exist; check the path")
        out[i] = p
    return dict(sorted(out.items()))


def _edges(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) if img.ndim == 3 else img.astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.5)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return np.hypot(gx, gy)


def layout_match(painting: np.ndarray, frame: np.ndarray, covered: np.ndarray | None = None) -> float:
    """The correlation of the painting's edges with its frame's (both at the same size), over the
    painted pixels (``covered``, from the painting's alpha; all when None)."""
    a, b = _edges(painting).ravel(), _edges(frame).ravel()
    if covered is not None:
        keep = covered.ravel() > 0.5
        a, b = a[keep], b[keep]
    if a.size < 16 or a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def propose(unreliable: tuple[float, ...], cuts: tuple[int, ...], threshold: float = 2.0,
            every: int = 0) -> list[int]:
    """Frames worth painting: the first, each scene cut, and the frame where the unreliable flow
    accumulated since the last proposal passes ``threshold`` (in frames' worth of new pixels: 2
    is twice a frame's area revealed or changed); ``every``: at most that many frames apart."""
    out = [0] if unreliable else []
    acc = 0.0
    cut = set(cuts)
    for i in range(1, len(unreliable)):
        acc += unreliable[i]
        if i in cut or acc >= threshold or (every and i - out[-1] >= every):
            out.append(i)
            acc = 0.0
    return out


class PaintedRegions:
    """A pass's regions, duck-typed as ``temporal.regions.Regions`` for the video policy: the
    ``--mask`` regions first (in their order, as they claim the frame), then what a partial
    painting covers of what they leave (``cover``, its alpha, carried along the pass's flow), styled
    by the painting (region ``slot``), then the rest: the main styles (``rest_styled``: the
    painting and the style images blended, or the style images beside a partial painting), or
    the content kept."""

    def __init__(self, masks: Regions | None, cover: np.ndarray | None, slot: int, rest_styled: bool) -> None:
        self.masks, self.slot, self.rest_styled = masks, slot, rest_styled
        self.cover = None if cover is None else cover.astype(np.float32)
        if masks is not None:
            masks.restart()

    def frame(self, index: int, hw: tuple[int, int], flow_back: np.ndarray | None = None) -> FrameRegions:
        h, w = hw
        styled: list[tuple[np.ndarray, int | None]] = []
        keep = np.zeros((h, w), np.float32)
        free = np.ones((h, w), np.float32)
        if self.masks is not None:
            fr = self.masks.frame(index, hw, flow_back)
            styled += fr.styled[:-1]  # (the last is the rest, for the main style: handed out below)
            free = fr.styled[-1][0]
            if fr.keep is not None:
                keep += fr.keep
        if self.cover is not None:
            if flow_back is not None:
                self.cover = warp(self.cover, flow_back)
            part = free * np.clip(self.cover, 0.0, 1.0)
            styled.append((part, self.slot))
            free = free - part
        if self.rest_styled:
            styled.append((free, None))
        else:
            keep += free
        return FrameRegions(styled, keep if keep.any() else None)


# The window over which each flow's carried keyframe is compared with the frame, as a fraction
# of the frame's shorter side (a few pixels: a flow's error shows over a patch, not one pixel).
PATCH = 1 / 16


def _patch_error(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The mean absolute difference of ``a`` and ``b`` (uint8 RGB) over each ``k`` x ``k`` patch."""
    e = difference(a, b)
    return cv2.blur(e, (k, k)) if k > 1 else e


class Anchor:
    """A painted pass's keyframe (its source frame and its output), and the flow from the frame
    at hand back to it.

    Two flows lead back to the keyframe: the one computed straight to it, exact while the frame
    is near and wrong, though it may pass the round-trip check, once the motion is larger than
    Farneback's search; and the chain of frame-to-frame flows, composed (never failing all at
    once, but adding each step's small errors). Which one is right at a pixel shows in the
    frames themselves: each carries the keyframe's source frame too, and the one whose carried
    source is nearer the frame at hand over a small patch carries the painting there (as
    EbSynth's guides choose where a painting's pixels go, with two flows as the candidates). The
    painting is trusted where the chosen flow passed its own check (the round trip for the
    straight flow, every step's for the chain). Either is one resampling of the painting, not one
    per frame as the warm start's chain of outputs is."""

    def __init__(self, src: np.ndarray, out: np.ndarray, start: bool = True, content: bool = True) -> None:
        self.src, self.out = src, out
        self.content = content  # the content target is the carried keyframe where it holds (else the frame)
        self.start = start  # frames start from the carried keyframe where it holds (else from the frame before)
        self.chain: np.ndarray | None = None  # (H, W, 2): from the last frame pushed back to the keyframe
        self.reliable: np.ndarray | None = None  # (H, W) in [0, 1]: where every step was reliable
        self._next: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (src, chain, reliable) of the frame at hand

    def _step(self, back: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chain from a frame whose flow to the frame before is ``back`` (reliable at ``mask``)."""
        if self.chain is None or self.reliable is None:  # (the frame right after the keyframe)
            return back.astype(np.float32), mask.astype(np.float32)
        chain = back + warp(self.chain, back)
        return chain.astype(np.float32), (mask * warp(self.reliable, back)).astype(np.float32)

    def carry(self, src: np.ndarray, back: np.ndarray, mask: np.ndarray,
              pair: Callable[[np.ndarray, np.ndarray], FramePair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The flow from ``src`` back to the keyframe (H, W, 2), where it holds (float32 in [0, 1])
        and where it is the straight one (bool); ``back``/``mask``: ``src``'s flow to the frame
        before and its reliability."""
        chain, reliable = self._step(back, mask)
        self._next = (src, chain, reliable)
        direct = pair(src, self.src)
        k = max(1, round(min(src.shape[:2]) * PATCH)) | 1
        straight = _patch_error(warp(self.src, direct.back), src, k) <= _patch_error(warp(self.src, chain), src, k)
        flow = np.where(straight[..., None], direct.back, chain).astype(np.float32)
        held = np.where(straight, direct.mask, reliable).astype(np.float32)
        return flow, held, straight

    def term(self, src: np.ndarray, back: np.ndarray, mask: np.ndarray,
             pair: Callable[[np.ndarray, np.ndarray], FramePair]) -> tuple[np.ndarray, np.ndarray]:
        """The keyframe's output carried to ``src`` (uint8) and where it holds (``carry``)."""
        flow, held, _ = self.carry(src, back, mask, pair)
        return warp(self.out, flow), held

    def advance(self, src: np.ndarray, prev: np.ndarray | None,
                pair: Callable[[np.ndarray, np.ndarray], FramePair]) -> None:
        """``src`` joins the chain (after ``prev``; None: ``src`` is the keyframe)."""
        if prev is None:
            return
        if self._next is not None and self._next[0] is src:
            _, self.chain, self.reliable = self._next
        else:  # (a frame restored from the work folder: its flow was not needed until now)
            p = pair(src, prev)
            self.chain, self.reliable = self._step(p.back, p.mask)
        self._next = None
