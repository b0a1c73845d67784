"""The loss of K chains' images stacked in one batch (``gatys.chains``): each image's terms
against its own targets, as a (K,) vector per term.

The batched twin of :class:`videostyle.gatys.losses.PerceptualLoss`: the same terms from the
same functions (Gram matrix, guided Gram, relative error, total variation, temporal term), each
reduced per image instead of over the batch, so that image ``k``'s terms are what
``PerceptualLoss`` gives for image ``k`` alone (tests/test_chains.py holds them to it). Each
image has its own Gram targets, style weight (strength keyframes), temporal terms and regions;
a chain with fewer temporal terms or regions than another is padded with terms of weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from videostyle.gatys.losses import EPS, gram_matrix, guided_gram
from videostyle.gatys.specs import LossSpec


def chain_mse(x: Tensor, target: Tensor) -> Tensor:
    """:func:`losses.relative_mse` of each image of a batch apart: (K, ...) -> (K,)."""
    t = target.float()
    k = x.shape[0]
    return (x.float() - t).pow(2).reshape(k, -1).mean(1) / (t.pow(2).reshape(k, -1).mean(1) + EPS)


def chain_tv(image: Tensor) -> Tensor:
    """:func:`losses.tv_loss` of each image apart: (K, 3, H, W) -> (K,)."""
    x = image.float()
    k = x.shape[0]
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx.pow(2).reshape(k, -1).mean(1) + dy.pow(2).reshape(k, -1).mean(1)


def chain_temporal(image: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """:func:`losses.temporal_loss` of each image apart: (K,)."""
    k = image.shape[0]
    return ((image.float() - target.float()).pow(2) * mask.float()).reshape(k, -1).mean(1)


@dataclass(frozen=True)
class ChainTargets:
    """The K images' targets, stacked: content features (K, C, H, W) by layer, Gram targets
    (K, C, C) by layer, style weights (K,), temporal terms (target (K, 3, H, W), mask
    (K, 1, H, W), weight (K,)) and regions (mask (K, 1, H, W), Gram targets (K, C, C) by
    layer)."""

    content: dict[str, Tensor]
    grams: dict[str, Tensor]
    style_weight: Tensor
    temporal: Sequence[tuple[Tensor, Tensor, Tensor]] = ()
    regions: Sequence[tuple[Tensor, dict[str, Tensor]]] = ()


class ChainLoss:
    """``PerceptualLoss`` of K images at once: the weighted terms by name, each (K,)."""

    def __init__(self, spec: LossSpec) -> None:
        self.spec = spec
        self.layer_weights = dict(zip(spec.style_layers, spec.layer_weights))

    def __call__(self, image: Tensor, feats: dict[str, Tensor], t: ChainTargets) -> dict[str, Tensor]:
        s = self.spec
        zero = torch.zeros(image.shape[0], device=image.device)
        if t.regions:
            style = sum((m.float().reshape(m.shape[0], -1).mean(1) * self.layer_weights[n]
                         * chain_mse(guided_gram(feats[n], m), g[n])
                         for m, g in t.regions for n in s.style_layers), zero)
        else:
            style = sum((self.layer_weights[n] * chain_mse(gram_matrix(feats[n]), t.grams[n])
                         for n in s.style_layers), zero)
        terms = {
            "content": s.content_weight * sum((chain_mse(feats[n], t.content[n]) for n in s.content_layers), zero),
            "style": t.style_weight * style,
        }
        if s.tv_weight:
            terms["tv"] = s.tv_weight * chain_tv(image)
        if t.temporal:
            terms["temporal"] = sum((w * chain_temporal(image, tgt, m) for tgt, m, w in t.temporal), zero)
        return terms
