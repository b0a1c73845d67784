"""The fast engine: every frame from the feed-forward network (``network.FastStylizer``), at
--fast-strength times the style strength; with regions, each region's own output blended by
the feathered masks. A frame's output depends on its source alone, so frames can be computed
ahead of the frame order; the video policy blends them towards the warped previous output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from videostyle.engine import Callback, Painted, WarmStart
from videostyle.io.images import preserve_colors, to_uint8
from videostyle.temporal.flow import blend
from videostyle.temporal.regions import FrameRegions, composite

if TYPE_CHECKING:
    from videostyle.fast.network import FastStylizer


class FastEngine:
    optimises: ClassVar[bool] = False

    def __init__(self, network: FastStylizer, strength: float, preserve: bool) -> None:
        """``strength``: --fast-strength, which the style strength multiplies (up to 1);
        ``preserve``: keep the content's colours."""
        self.net, self.base, self.preserve = network, strength, preserve
        self.strength = 1.0  # the style strength now (keyframes)
        self.regions: FrameRegions | None = None
        self.on_gpu = bool(getattr(network, "on_gpu", False))

    def set_keys(self, weights: Sequence[float], strength: float) -> None:
        self.net.set_blend(weights)
        self.strength = strength

    def set_styles(self, images: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        self.net.set_styles(list(images), list(weights))

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        self.net.region_vecs = [self.net.style_vector(im) for im in images]

    def set_regions(self, regions: FrameRegions | None) -> None:
        self.regions = regions

    def network_strength(self, strength: float | None = None) -> float:
        """--fast-strength times the style strength (the current one by default), up to 1."""
        return min(1.0, self.base * (self.strength if strength is None else strength))

    def image(self, content: np.ndarray, strength: float | None = None, regions: FrameRegions | None = None,
              vec: np.ndarray | None = None) -> np.ndarray:
        """The network's frame, float in [0, 1], at ``strength`` (default: the current one) with
        the style vector ``vec`` (default: the current blend); with ``regions``, each region's
        own output (the content where a mask keeps it), blended by the feathered masks."""
        s = self.network_strength() if strength is None else strength
        if regions is None:
            out = self.net.stylize(content, s, vec)
        else:
            layers = [(self.net.stylize(content, s, None if slot is None else self.net.region_vecs[slot]), m)
                      for m, slot in regions.styled if m.any()]
            if regions.keep is not None:
                layers.append((content.astype(np.float32) / 255.0, regions.keep))
            out = composite(layers)
        if self.preserve:
            out = preserve_colors(out, content)
        return out

    def fresh(self, src: np.ndarray, init: str | np.ndarray, seed: int, callback: Callback | None) -> Painted:
        return Painted(to_uint8(self.image(src, regions=self.regions)))

    def later(self, src: np.ndarray, warm: WarmStart, seed: int, callback: Callback | None) -> Painted:
        """The network's frame (``warm.ready``, or computed now), followed towards the warped
        previous output ``warm.start`` where the flow is reliable: feed-forward frames flicker."""
        new = warm.ready if warm.ready is not None else to_uint8(self.image(src, regions=self.regions))
        if warm.follow > 0 and warm.reliable is not None:
            # In uint8 (a quarter of float32's time at 1080p; at most one level apart).
            new = blend(warm.start, new, warm.reliable, warm.follow)
        return Painted(new)

    def ahead(self, src: np.ndarray, keys: tuple[np.ndarray, float] | None) -> np.ndarray:
        if keys is None:
            return to_uint8(self.image(src))
        # In uint8 here, on the worker's thread: the blend on the main thread takes uint8.
        return to_uint8(self.image(src, self.network_strength(keys[1]), None, self.net.blend_vector(keys[0])))

    def close(self) -> None:
        self.net.close()
