"""The style's Gram targets: each style image's Gram matrices at a content size, blended by the
style weights (keyframes change the blend in place, so a captured CUDA graph reads the new
targets), and the region styles' own. Computed once per content size and kept (a few sizes)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from videostyle.errors import ConfigError, NO_STYLE
from videostyle.gatys.tensors import to_tensor

Grams = dict[str, Tensor]
# Gram matrices of a style image (1, 3, H, W) at a long side in px, for a content of (H, W).
GramsAt = Callable[[Tensor, int, tuple[int, int]], Grams]

KEEP = 8  # content sizes kept


class StyleTargets:
    def __init__(self) -> None:
        self.styles: list[Tensor] = []
        self.blend: list[float] = []
        self.region_styles: list[Tensor] = []
        self._targets: dict[tuple[int, int], Grams] = {}  # blended, per content size
        self._per_style: dict[tuple[int, int], list[Grams]] = {}  # each style's, per size
        self._regions: dict[tuple[int, int], list[Grams]] = {}
        self._key: object = None  # the images and blend the targets were computed from

    def clear(self) -> None:
        """Forget the computed targets (a new loss or scale shapes them anew)."""
        self._targets.clear()
        self._per_style.clear()
        self._regions.clear()

    def set_styles(self, images: Sequence[np.ndarray], blend: Sequence[float] = ()) -> None:
        """New style images, blended by ``blend``; the same images and blend again keep the
        targets computed (a loaded network reused call after call: the API's Engine, previews)."""
        if not images:
            raise ConfigError(NO_STYLE)
        weights = list(blend) if blend else [1.0] * len(images)
        total = sum(weights)
        if total <= 0:
            raise ConfigError("style blend weights must sum to more than 0")
        key = (tuple((im.shape, hashlib.blake2b(np.ascontiguousarray(im).tobytes()).digest()) for im in images),
               tuple(w / total for w in weights))
        if key == self._key:
            return
        self._key = key
        self.styles = [to_tensor(im) for im in images]
        self.blend = [w / total for w in weights]
        self._targets.clear()
        self._per_style.clear()

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        self.region_styles = [to_tensor(im) for im in images]
        self._regions.clear()

    def set_blend(self, weights: Sequence[float]) -> None:
        """New blend weights of the same style images: the targets become the weighted sum of
        each style's Gram matrices, updated in place."""
        if len(weights) != len(self.styles):
            raise ValueError("one weight per style image")
        total = float(sum(weights))
        blend = [float(w) / total for w in weights]
        if blend == self.blend:
            return
        self.blend = blend
        if isinstance(self._key, tuple):
            self._key = (self._key[0], tuple(blend))
        for hw, targets in self._targets.items():
            with torch.no_grad():
                for name, g in self._blended(self._per_style[hw]).items():
                    targets[name].copy_(g)

    def _blended(self, per_style: list[Grams]) -> Grams:
        out: Grams = {}
        for grams, w in zip(per_style, self.blend):
            for name, g in grams.items():
                out[name] = out[name] + g * w if name in out else g * w
        return out

    def at(self, hw: tuple[int, int], side: int, grams_at: GramsAt) -> Grams:
        """The blended targets for a content of ``hw``, each style at long side ``side``."""
        if hw in self._targets:
            return self._targets[hw]
        if not self.styles:
            raise ConfigError(NO_STYLE)
        per_style = [grams_at(img, side, hw) for img in self.styles]
        with torch.no_grad():
            grams = self._blended(per_style)
        if len(self._targets) > KEEP:
            self._targets.clear()
            self._per_style.clear()
        self._targets[hw], self._per_style[hw] = grams, per_style
        return grams

    def regions_at(self, hw: tuple[int, int], side: int, grams_at: GramsAt) -> list[Grams]:
        """Each region style's targets for a content of ``hw`` (slot order)."""
        if hw not in self._regions:
            if len(self._regions) > KEEP:
                self._regions.clear()
            self._regions[hw] = [grams_at(img, side, hw) for img in self.region_styles]
        return self._regions[hw]
