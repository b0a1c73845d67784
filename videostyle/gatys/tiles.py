"""Tiled evaluation of the style-transfer objective: the loss and its gradient for an image
larger than the device holds, one tile at a time, equal to the untiled ones.

Each tile is a *core* (the tiles' cores partition the image) plus a *margin* of context on every
side. A tile's features are kept only on its core, so every feature position of the image is
counted once; with a margin at least the receptive field that matters, those features equal the
untiled network's. The terms are then sums over positions and add up over the tiles:

- the Gram matrix of a layer is a sum of F·Fᵀ over positions: the tiles' partial Grams add up to
  the image's (two passes: the first sums the Grams without a graph and takes the style loss's
  gradient with respect to each Gram; the second runs each tile with a graph and back-propagates
  ``<dL/dG, F·Fᵀ>``, whose gradient is the true one. Two passes, not one pass that applies the
  previous iteration's statistics: the gradient is then exact at every step, which L-BFGS's
  curvature pairs need, for one extra forward pass per tile without a graph);
- the content term is a sum of squared differences, normalised by the target's mean square over
  the whole image (summed in the first pass too);
- total variation and the temporal terms are per pixel and need no network: they are computed
  on the whole image, in bands of rows (``pixel_terms``).

A pixel in the margin of one tile and the core of another gets gradient from both: the tiles'
gradients are added over their whole extent, which is exactly the chain rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from videostyle.gatys.plan import ALIGN
from videostyle.gatys.losses import EPS, LossSpec, relative_mse
from videostyle.gatys.memory import release

# A layer's features step this many pixels (VGG: 2x pooling after each block): tile edges sit on
# multiples of the deepest layer's step, so every tile's pooling windows are the image's.


def layer_step(name: str) -> int:
    """Pixels between neighbouring feature positions of a VGG layer (relu4_2 -> 8)."""
    block = int(name[4:].split("_")[0]) if "_" in name[4:] else int(name[4:])
    return 2 ** (block - 1) if not name.startswith("pool") else 2 ** block


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # y0, y1, x0, x1: the pixels whose features this tile owns
    box: tuple[int, int, int, int]  # y0, y1, x0, x1: core plus margin, clipped to the image

    def core_slice(self, step: int) -> tuple[slice, slice]:
        """The core within the whole image's feature map at a layer of ``step`` pixels."""
        cy0, cy1, cx0, cx1 = self.core
        return (slice(cy0 // step, cy1 // step if cy1 % step == 0 else None),
                slice(cx0 // step, cx1 // step if cx1 % step == 0 else None))

    def feature_slice(self, step: int) -> tuple[slice, slice]:
        """The core within this tile's feature map at a layer of ``step`` pixels."""
        (cy0, cy1, cx0, cx1), (by0, _, bx0, _) = self.core, self.box
        return (slice((cy0 - by0) // step, (cy1 - by0) // step if cy1 % step == 0 else None),
                slice((cx0 - bx0) // step, (cx1 - bx0) // step if cx1 % step == 0 else None))


def _cuts(size: int, tile: int, offset: int) -> list[int]:
    """Core boundaries along one axis: every ``tile`` pixels from ``offset`` (all multiples of ALIGN)."""
    cuts = [0]
    c = offset % tile or tile
    while c < size:
        cuts.append(c)
        c += tile
    cuts.append(size)
    return cuts


def grid(h: int, w: int, tile: int, margin: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles of ``tile`` pixels (cores) with ``margin`` pixels of context, the grid shifted by
    ``offset`` (so that tile edges need not stay in one place from one iteration to the next)."""
    if tile % ALIGN or margin % ALIGN or offset[0] % ALIGN or offset[1] % ALIGN:
        raise ValueError(f"tile, margin and offset must be multiples of {ALIGN}")
    ys, xs = _cuts(h, tile, offset[0]), _cuts(w, tile, offset[1])
    out = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            box = (max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin))
            out.append(Tile((y0, y1, x0, x1), box))
    return out


def _crop(t: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    y0, y1, x0, x1 = box
    return t[..., y0:y1, x0:x1]


Features = Callable[[Tensor, Sequence[str]], dict[str, Tensor]]


def tiled_grams(features: Features, x: Tensor, layers: Sequence[str], tiles: Sequence[Tile]) -> dict[str, Tensor]:
    """Gram matrices of ``x`` (normalised as losses.gram_matrix) from its tiles, without a graph."""
    sums: dict[str, Tensor] = {}
    with torch.no_grad():
        for t in tiles:
            feats = features(_crop(x, t.box), layers)
            for name in layers:
                g = _core_gram(feats, name, t)
                sums[name] = sums[name] + g if name in sums else g
            del feats
            release()
    h, w = x.shape[-2:]
    return {n: sums[n] / (sums[n].shape[1] * positions(h, w, n)) for n in layers}


def positions(h: int, w: int, name: str) -> int:
    """Feature positions of an ``h`` x ``w`` image at a layer (each 2x pooling floors)."""
    step = layer_step(name)
    return (h // step) * (w // step)


def _core_gram(feats: dict[str, Tensor], name: str, t: Tile) -> Tensor:
    """F·Fᵀ over a tile's core positions at one layer, unnormalised: the tiles' sums add up."""
    f = feats[name][(..., *t.feature_slice(layer_step(name)))].float()
    flat = f.reshape(f.shape[0], f.shape[1], -1)
    return torch.bmm(flat, flat.transpose(1, 2))


def tiled_features(features: Features, x: Tensor, layers: Sequence[str], tiles: Sequence[Tile]) -> dict[str, Tensor]:
    """The whole image's feature maps, assembled from the tiles' cores, without a graph."""
    h, w = x.shape[-2:]
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for t in tiles:
            feats = features(_crop(x, t.box), layers)
            for name in layers:
                step = layer_step(name)
                f = feats[name][(..., *t.feature_slice(step))]
                if name not in out:
                    out[name] = f.new_zeros((*f.shape[:2], h // step, w // step))
                out[name][(..., *t.core_slice(step))] = f
            del feats
            release()
    return out


class TiledObjective:
    """The loss of ``PerceptualLoss`` and its gradient with respect to the image, by tiles.

    ``content`` is the content image (its features are taken per tile, as the image's);
    ``grams`` the style targets; ``temporal`` the temporal terms (whole-image tensors); ``core``
    the pixels each tile owns and ``margin`` its context (the network sees core + 2 x margin)."""

    def __init__(self, features: Features, spec: LossSpec, content: Tensor, grams: dict[str, Tensor],
                 temporal: Sequence[tuple[Tensor, Tensor, float]] = (), *, core: int, margin: int) -> None:
        self.features, self.spec, self.content, self.grams = features, spec, content, grams
        self.temporal, self.core, self.margin = list(temporal), core, margin
        self.layer_weights = dict(zip(spec.style_layers, spec.layer_weights))
        # The content's features do not depend on the grid (the margin covers the field): the
        # whole maps are assembled once, and each tile crops its core from them. ``_scale`` is
        # what losses.relative_mse divides a layer's sum of squares by: element count x mean square.
        self._target: dict[str, Tensor] = {}
        self._scale: dict[str, float] = {}

    def __call__(self, x: Tensor, offset: tuple[int, int] = (0, 0)) -> tuple[dict[str, Tensor], Tensor]:
        """The weighted terms (detached) and the gradient of their sum with respect to ``x``."""
        s = self.spec
        h, w = x.shape[-2:]
        tiles = grid(h, w, self.core, self.margin, offset)
        x = x.detach()
        # Pass 1, no graph: the image's Grams, and the style loss's gradient with respect to them.
        grams = tiled_grams(self.features, x, s.style_layers, tiles)
        leaves = {n: g.requires_grad_(True) for n, g in grams.items()}
        style = s.style_weight * sum(
            self.layer_weights[n] * relative_mse(leaves[n], self.grams[n].expand_as(leaves[n])) for n in s.style_layers)
        dgram = dict(zip(s.style_layers, torch.autograd.grad(style, [leaves[n] for n in s.style_layers])))
        if not self._target:
            self._target = tiled_features(self.features, self.content, s.content_layers, tiles)
            self._scale = {n: f.numel() * (float(f.float().pow(2).mean()) + EPS) for n, f in self._target.items()}
        # Pass 2, one tile at a time with a graph. Each layer's gradient on the tile's core is
        # written down directly (style: (dG + dGᵀ)·F / (C·positions), content: 2·(F - T) / scale)
        # and handed to autograd with the features: no graph for the Gram products, and no fp32
        # copies of the feature maps kept for it.
        grad = torch.zeros_like(x, dtype=torch.float32)
        content = torch.zeros((), device=x.device)
        layers = s.layers
        for t in tiles:
            xt = _crop(x, t.box).clone().requires_grad_(True)
            feats = self.features(xt, layers)
            grads = []
            for n in layers:
                g, part = self._layer_grad(feats[n], n, t, dgram, (h, w))
                grads.append(g)
                content += part
            torch.autograd.backward([feats[n] for n in layers], grads, inputs=[xt])
            y0, y1, x0, x1 = t.box
            grad[..., y0:y1, x0:x1] += xt.grad.float()
            del feats, grads, xt
            release()
        terms = {"content": s.content_weight * content, "style": style.detach()}
        terms.update(pixel_terms(x, s.tv_weight, self.temporal, grad))
        return terms, grad.to(x.dtype)

    # Feature positions per band in ``_layer_grad``.
    band = 1 << 16

    def _layer_grad(self, feats: Tensor, name: str, t: Tile, dgram: dict[str, Tensor],
                    hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The loss's gradient with respect to one layer's features of tile ``t`` (zero outside its
        core), in the features' dtype, and the tile's unweighted content term at that layer.

        Computed in fp32 over bands of about ``self.band`` positions: a whole fp32 copy of relu1_1's
        map of a 512 px tile (and its product with dG) would take ~130 MB while the tile's graph
        is held."""
        s = self.spec
        step = layer_step(name)
        g = torch.zeros_like(feats)
        ys, xs = t.feature_slice(step)
        cy, cx = t.core_slice(step)
        core = feats[..., ys, xs]
        rows = max(1, self.band // max(1, core.shape[-1]))
        d = dgram[name] + dgram[name].transpose(1, 2) if name in dgram else None
        norm = feats.shape[1] * positions(hw[0], hw[1], name)
        content = torch.zeros((), device=feats.device)
        with torch.no_grad():
            for r0 in range(0, core.shape[-2], rows):
                f = core[..., r0:r0 + rows, :].float()
                gc = torch.zeros_like(f)
                if d is not None:
                    gc += torch.bmm(d, f.reshape(f.shape[0], f.shape[1], -1)).reshape(f.shape) / norm
                if name in self._target:
                    tgt = self._target[name][..., cy, cx][..., r0:r0 + rows, :].float()
                    diff = f - tgt
                    content += diff.pow(2).sum() / self._scale[name]
                    gc += (2 * s.content_weight / self._scale[name]) * diff
                g[..., ys, xs][..., r0:r0 + rows, :] = gc.to(g.dtype)
        return g, content


def pixel_terms(x: Tensor, tv_weight: float, temporal: Sequence[tuple[Tensor, Tensor, float]], grad: Tensor,
                rows: int = 128) -> dict[str, Tensor]:
    """Total variation and the temporal terms of ``x`` (the values of losses.tv_loss and
    losses.temporal_loss), their gradient added to ``grad``; computed in bands of ``rows`` rows,
    so that no image-sized temporaries are made at the sizes that need tiles."""
    n, c, h, w = x.shape
    tv = x.new_zeros((), dtype=torch.float32)
    temp = x.new_zeros((), dtype=torch.float32)
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        # The band's own rows, and one more below for the vertical differences across its edge.
        xb = x[..., r0:min(r1 + 1, h), :].float().clone().requires_grad_(True)
        own = xb[..., : r1 - r0, :]
        part = xb.new_zeros(())
        if tv_weight:
            band_tv = (own[..., :, 1:] - own[..., :, :-1]).pow(2).sum() / (n * c * h * (w - 1))
            if h > 1:
                band_tv = band_tv + (xb[..., 1:, :] - xb[..., :-1, :]).pow(2).sum() / (n * c * (h - 1) * w)
            tv = tv + tv_weight * band_tv.detach()
            part = part + tv_weight * band_tv
        for tgt, m, wt in temporal:
            d = (own - tgt[..., r0:r1, :].float()).pow(2) * m[..., r0:r1, :].float()
            band = wt * d.sum() / (n * c * h * w)  # temporal_loss is a mean over (N, C, H, W)
            temp = temp + band.detach()
            part = part + band
        if part.requires_grad:
            (g,) = torch.autograd.grad(part, xb)
            grad[..., r0:r0 + g.shape[-2], :] += g
    out = {}
    if tv_weight:
        out["tv"] = tv
    if temporal:
        out["temporal"] = temp
    return out
