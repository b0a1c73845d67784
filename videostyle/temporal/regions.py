"""Style regions: masks that give parts of the frame their own style, or keep the content.

``--mask MASK=STYLE`` paints the white part of MASK (an image, or a video whose frames follow the
clip's) in STYLE; ``--mask MASK`` keeps the content there. Pixels in no mask get the main
``--style``. Masks are greyscale (white = in), taken in order (a later mask only claims what the
earlier ones left), resized to the stylized frame and feathered (``--mask-feather``, a Gaussian
sigma in px). ``--mask-follow flow`` carries a still mask along the source's optical flow, for a
moving shot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from videostyle.errors import ConfigError, InputError
from videostyle.io.images import is_image_path, read_image
from videostyle.temporal.flow import warp


@dataclass(frozen=True)
class RegionSpec:
    mask: str  # image or video path
    style: str | None  # style image path; None keeps the content


def parse(spec: str) -> RegionSpec:
    """``"sky.png=starry.jpg"`` or ``"person.png"`` (keeps the content)."""
    mask, sep, style = spec.partition("=")
    if not mask or (sep and not style):
        raise ConfigError(f"style.masks: expected MASK or MASK=STYLE, got {spec!r}")
    return RegionSpec(mask, style or None)


def style_images(specs: Sequence[str]) -> list[str]:
    """The distinct style paths the regions name, in order (their slots)."""
    out: list[str] = []
    for s in specs:
        st = parse(s).style
        if st is not None and st not in out:
            out.append(st)
    return out


class _Mask:
    """One mask's frames at the source's size, float32 (H, W) in [0, 1]: a still image, or a
    video read in step with the clip (its last frame holds if it is shorter)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"mask {self.path} does not exist")
        self.still: np.ndarray | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._index = -1
        self._last: np.ndarray | None = None
        if is_image_path(self.path):
            self.still = _grey(read_image(self.path, "mask"))
        else:
            from videostyle.io.media import read_frames

            self._frames = (_grey(f.image) for f in read_frames(self.path))
            self.at(0)  # a bad mask video fails before any work

    def at(self, index: int) -> np.ndarray:
        if self.still is not None:
            return self.still
        assert self._frames is not None
        if index < self._index:
            raise InputError(f"mask video {self.path}: frames are read in order")
        while self._index < index:
            nxt = next(self._frames, None)
            if nxt is None:
                if self._last is None:
                    raise InputError(f"mask video {self.path} has no frames")
                break  # shorter than the clip: the last frame holds
            self._last, self._index = nxt, self._index + 1
        assert self._last is not None
        return self._last


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0 else mask


@dataclass
class FrameRegions:
    """One frame's regions at the stylized size: (mask, slot) pairs (slot: a region style's
    index, None: the main style) and the mask whose pixels keep the content."""

    styled: list[tuple[np.ndarray, int | None]]
    keep: np.ndarray | None


class Regions:
    """Every mask of a render and how they share a frame."""

    def __init__(self, specs: Sequence[str], feather_px: float, follow: str = "off") -> None:
        self.specs = [parse(s) for s in specs]
        slots = style_images(specs)
        self.slots = [None if r.style is None else slots.index(r.style) for r in self.specs]
        self.masks = [_Mask(r.mask) for r in self.specs]
        self.feather_px, self.follow = feather_px, follow
        self._carried: list[np.ndarray] | None = None  # --mask-follow flow: last frame's masks

    def restart(self) -> None:
        """Carry the masks from the masks themselves again (a new chain: a painted keyframe's pass)."""
        self._carried = None

    def still(self) -> bool:
        """Whether every mask is a still image (a video mask is read in the clip's order)."""
        return all(m.still is not None for m in self.masks)

    def frame(self, index: int, hw: tuple[int, int], flow_back: np.ndarray | None = None) -> FrameRegions:
        """The regions of frame ``index`` (``flow_back``: from this frame to the previous one,
        for ``follow="flow"``; None restarts from the masks themselves)."""
        h, w = hw
        raw = [cv2.resize(m.at(index), (w, h), interpolation=cv2.INTER_AREA) for m in self.masks]
        if self.follow == "flow":
            if flow_back is not None and self._carried is not None:
                raw = [warp(m, flow_back) if mk.still is not None else r
                       for m, mk, r in zip(self._carried, self.masks, raw)]
            self._carried = raw
        covered = np.zeros((h, w), np.float32)
        styled: list[tuple[np.ndarray, int | None]] = []
        keep = np.zeros((h, w), np.float32)
        for m, slot, spec in zip(raw, self.slots, self.specs):
            share = np.minimum(np.clip(feather(m, self.feather_px), 0.0, 1.0), 1.0 - covered)
            covered += share
            if spec.style is None:
                keep += share
            else:
                styled.append((share, slot))
        styled.append((1.0 - covered, None))  # the rest: the main style
        return FrameRegions(styled, keep if keep.any() else None)


def composite(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Sum of image x mask over (image (H, W, 3) float in [0, 1], mask (H, W)) pairs: the fast
    engine's per-region outputs put together."""
    out = np.zeros(layers[0][0].shape, np.float32)
    for img, m in layers:
        out += img.astype(np.float32) * m[..., None]
    return out
