"""The engine protocol: what a render asks of whatever paints its frames.

Three types implement it: ``gatys.engine.GatysEngine`` (the optimisation), ``fast.engine.
FastEngine`` (the feed-forward network) and ``factory.HybridEngine`` (the network's output
refined by the optimisation). The video policy (``render.policy``) asks its engine what it
can do (``optimises``, ``ahead``) and never its name: the name is read once, in ``engines``.
Torch-free, so that a fast render starts without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from videostyle.gatys.specs import GatysSpec
from videostyle.io.limits import MAX_PIXELS
from videostyle.report import STIterate
from videostyle.temporal.keyframes import Keys

if TYPE_CHECKING:
    from videostyle.temporal.regions import FrameRegions

Callback = Callable[[STIterate], None]


@dataclass(frozen=True)
class TemporalTerm:
    """Temporal loss against a warped earlier output: target (H, W, 3) float, mask (H, W) in [0, 1]."""

    target: np.ndarray
    mask: np.ndarray
    weight: float


@dataclass(frozen=True)
class Painted:
    """One painted frame: (H, W, 3) uint8 at the stylized size, the optimiser's iterations (0
    for a network) and its final loss (NaN for a network)."""

    image: np.ndarray
    iterations: int = 0
    loss: float = math.nan


@dataclass(frozen=True)
class WarmStart:
    """A later frame's optimisation: its start (the warped previous output, mostly), its budget,
    its temporal terms and the loss at which it may stop early."""

    start: np.ndarray
    iterations: int
    temporal: Sequence[TemporalTerm] = ()
    stop_loss: float | None = None
    coarse: int = 0  # iterations at half size first
    # A network's later frame: its picture computed ahead (None: computed now), followed towards
    # ``start`` by ``follow`` (0..1) where ``reliable`` (H, W) says the flow can be trusted.
    ready: np.ndarray | None = None
    reliable: np.ndarray | None = None
    follow: float = 0.0


class Engine(Protocol):
    # Later frames are optimised from a warm start (a chain: --settle applies, the fast blend
    # does not); else every frame comes from a network, blended towards the warped previous output.
    optimises: ClassVar[bool]
    on_gpu: bool

    def set_keys(self, weights: Sequence[float], strength: float) -> None:
        """The style blend and strength from now on (style keyframes)."""

    def set_regions(self, regions: FrameRegions | None) -> None:
        """This frame's region masks (None: no regions)."""

    def set_styles(self, images: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        """New style images, blended by ``weights``, from now on (a painted keyframe's pass)."""

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        """The styles that regions name by slot (``FrameRegions.styled``), from now on."""

    def fresh(self, src: np.ndarray, init: str | np.ndarray, seed: int, callback: Callback | None) -> Painted:
        """A frame painted from nothing: an image, a first frame, a scene cut. ``init`` is the
        optimiser's start (content, noise or a picture; a network ignores it)."""

    def later(self, src: np.ndarray, warm: WarmStart, seed: int, callback: Callback | None) -> Painted:
        """A later frame from its warm start: optimised from ``warm.start`` (an optimising
        engine), or the network's picture followed towards it where the flow is reliable."""

    def ahead(self, src: np.ndarray, keys: tuple[np.ndarray, float] | None) -> np.ndarray | None:
        """The frame (uint8) with the keyframes' ``keys`` (weights, strength; None: the current
        ones), changing nothing: safe on another thread, ahead of the frame order. None where the
        frame depends on the frames before it (an optimising engine's): nothing runs ahead."""

    def close(self) -> None:
        """End what the engine started (worker processes)."""


# ---------------------------------------------------------------- what an engine is built from


@dataclass(frozen=True)
class StyleSpec:
    """The pictures an engine paints with: the style images and their keyframes, the region
    masks (``MASK=STYLE`` or ``MASK``), their feather and flow-following, whether the content's
    colours are kept, and the largest picture a file may declare."""

    keys: Keys = field(default_factory=Keys)
    masks: tuple[str, ...] = ()
    mask_feather: float = 4.0
    mask_follow: str = "off"
    preserve_colors: bool = False
    max_pixels: int = MAX_PIXELS


@dataclass(frozen=True)
class FastSpec:
    """The feed-forward network's settings: its device and runtime, whole frames or tiles (and
    their overlap), its strength, and the iterations the hybrid engine refines its frame with."""

    device: str = "auto"
    runtime: str = "auto"
    tiling: str = "whole"
    tile_overlap: int = 64
    strength: float = 1.0
    refine_iterations: int = 60


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine is built from besides the style pictures: its name (read in the
    factory, ``factory.build_engine``, only), the styles, the optimiser's and the network's
    settings. The builder (``engines.engine_spec``) translates the Config into it once."""

    method: str = "gatys"
    styles: StyleSpec = field(default_factory=StyleSpec)
    gatys: GatysSpec = field(default_factory=GatysSpec)
    fast: FastSpec = field(default_factory=FastSpec)
