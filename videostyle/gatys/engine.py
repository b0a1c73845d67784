"""The Gatys engine: every frame is an optimisation of the image on VGG-19 features
(``stylizer.Stylizer``); a fresh frame runs the full iterations coarse-to-fine, a later frame
its few from its warm start. Imports no torch itself (the stylizer does), so the factory can
name this type for any render."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from videostyle.engine import Callback, Painted, WarmStart
from videostyle.io.images import to_uint8

if TYPE_CHECKING:
    from videostyle.gatys.stylizer import Stylizer
    from videostyle.temporal.regions import FrameRegions


class GatysEngine:
    optimises: ClassVar[bool] = True

    def __init__(self, stylizer: Stylizer, iterations: int) -> None:
        """``iterations``: a fresh frame's (the first frame's, an image's, a scene cut's)."""
        self.st, self.iterations = stylizer, iterations
        self.on_gpu = stylizer.device.type != "cpu"

    def set_keys(self, weights: Sequence[float], strength: float) -> None:
        self.st.set_blend(weights)
        self.st.set_strength(strength)

    def set_styles(self, images: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        self.st.set_styles(list(images), list(weights))

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        self.st.set_region_styles(list(images))

    def set_regions(self, regions: FrameRegions | None) -> None:
        if regions is None:
            self.st.set_regions([])  # (the whole frame, unguided)
        else:
            self.st.set_regions(regions.styled, regions.keep)

    def fresh(self, src: np.ndarray, init: str | np.ndarray, seed: int, callback: Callback | None) -> Painted:
        res = self.st.stylize(src, init, iterations=self.iterations, pyramid=True, seed=seed, callback=callback)
        return Painted(to_uint8(res.image), res.iterations, res.loss)

    def later(self, src: np.ndarray, warm: WarmStart, seed: int, callback: Callback | None) -> Painted:
        res = self.st.stylize(src, warm.start, iterations=warm.iterations, temporal=warm.temporal, pyramid=False,
                              coarse=warm.coarse, seed=seed, stop_loss=warm.stop_loss, callback=callback)
        return Painted(to_uint8(res.image), res.iterations, res.loss)

    def ahead(self, src: np.ndarray, keys: tuple[np.ndarray, float] | None) -> np.ndarray | None:
        return None  # (a frame starts from the previous output: it cannot run ahead)

    def close(self) -> None:
        pass
