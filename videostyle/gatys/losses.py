"""Losses of Gatys et al. (content, Gram style), total variation and Ruder et al.'s temporal term.

Plain functions, composed into the whole objective by :class:`PerceptualLoss` from a
:class:`LossSpec`. The targets (content features, blended Gram matrices, warped earlier outputs)
are arguments: the stylizer keeps them on its device, and in static buffers when it replays
CUDA graphs. Losses are computed in float32 even when features come out of a bf16/fp16 autocast
region: Gram sums over H*W products lose too much precision in half types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from videostyle.gatys.specs import LossSpec


class _Gram(torch.autograd.Function):
    """``x^T x`` of features ``x`` (N, M, C) -> (N, C, C), with a backward of one product,
    ``x (g + g^T)``: autograd's own would take one per operand (``x`` is both) and add them."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.bmm(x.transpose(1, 2), x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.bmm(x, grad + grad.transpose(1, 2))


def gram_matrix(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrix normalised by C*H*W.

    The paper's Gram matrix is unnormalised and its loss divides by 4 N^2 M^2; normalising
    the Gram itself (as neural-style does) keeps one style weight meaningful across layers
    and image sizes. Features in channels_last memory (the network's layout) are read as the
    (N, H*W, C) matrix they already are, without the copy a (N, C, H*W) reshape would make.
    """
    n, c, h, w = features.shape
    f = features.float()
    if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
        x = f.permute(0, 2, 3, 1).reshape(n, h * w, c)  # (a view of NHWC memory)
    else:
        x = f.reshape(n, c, h * w).transpose(1, 2)
    return _Gram.apply(x) / (c * h * w)


# Keeps an all-zero target (a black frame's deep features) from dividing by zero.
EPS = 1e-8


def relative_mse(x: Tensor, target: Tensor) -> Tensor:
    """Mean squared error divided by the target's mean square: ``|x - t|^2 / |t|^2``.

    Departure from the paper, whose losses are plain sums of squares: the features of a network
    fed 0-255 pixels (the original Caffe VGG-19) are ~60x those of one fed ImageNet-normalised
    pixels, so its content term is ~60^2 and its Gram term ~60^4 times larger, and one style
    weight meant something thousands of times different per model. Divided by the target's own
    magnitude each term is invariant to the feature scale (as crowsonkb/style-transfer-pytorch
    normalises its losses), and the five style layers, whose Gram entries span orders of
    magnitude, count alike without hand-tuned layer weights.
    """
    t = target.float()
    return F.mse_loss(x.float(), t) / (t.pow(2).mean() + EPS)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Relative squared error between feature maps (scale-invariant; see :func:`relative_mse`)."""
    return relative_mse(features, target)


def style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Relative squared error between the Gram matrix of ``features`` and a target Gram matrix."""
    return relative_mse(gram_matrix(features), target_gram.float().expand(features.shape[0], -1, -1))


def guided_gram(features: Tensor, mask: Tensor) -> Tensor:
    """Gatys et al. 2017's guided Gram matrix ("Controlling Perceptual Factors in Neural Style
    Transfer", spatial control): the Gram matrix of ``features`` weighted by ``mask`` (N, 1, H', W')
    in [0, 1] at any size (area-resized to the features'), normalised by C times the mask's sum,
    so that it is the region's own mean and an all-ones mask gives :func:`gram_matrix`."""
    n, c, h, w = features.shape
    m = F.interpolate(mask.float(), size=(h, w), mode="area") if mask.shape[-2:] != (h, w) else mask.float()
    f = features.float() * m
    f = f.reshape(n, c, h * w)
    total = m.reshape(n, -1).sum(1).clamp_min(EPS)
    # (F m)(F m)^T weights each position by m^2: the mask is 0/1 inside and outside a region and
    # fractional only on its feathered edge, where a softer weight is what feathering asks for.
    return torch.bmm(f, f.transpose(1, 2)) / (c * total).view(n, 1, 1)


def guided_style_loss(features: Tensor, mask: Tensor, target_gram: Tensor) -> Tensor:
    """Relative squared error between the region's guided Gram matrix and a target Gram matrix."""
    return relative_mse(guided_gram(features, mask), target_gram.float().expand(features.shape[0], -1, -1))


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: mean squared difference of neighbouring pixels.

    Not in the paper; added (as in jcjohnson/neural-style) to suppress high-frequency noise.
    Squared differences and a mean keep the gradient smooth and the weight size-independent.
    """
    x = image.float()
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def temporal_loss(image: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Ruder et al.'s short-term temporal loss: (1/D) sum c * (x - warped previous)^2.

    ``mask`` (N, 1, H, W) in [0, 1] is 0 where the flow is unreliable (occlusions, motion
    boundaries) so those pixels are free to change.
    """
    diff = (image.float() - target.float()).pow(2)
    return (diff * mask.float()).mean()


class PerceptualLoss:
    """Gatys et al.'s loss, composed of the terms above: the content term on ``content_layers``,
    the Gram term on ``style_layers`` (weighted per layer), total variation, and Ruder et al.'s
    temporal terms. Returns the weighted terms by name (their sum is the loss), so progress can
    show each and the early stop can leave the temporal ones out."""

    def __init__(self, spec: LossSpec) -> None:
        if len(spec.layer_weights) != len(spec.style_layers):
            raise ValueError("one layer weight per style layer")
        self.spec = spec
        self.layer_weights = dict(zip(spec.style_layers, spec.layer_weights))

    def __call__(self, image: Tensor, feats: dict[str, Tensor], content_feats: dict[str, Tensor],
                 grams: dict[str, Tensor], temporal: Sequence[tuple[Tensor, Tensor, float]] = (),
                 regions: Sequence[tuple[Tensor, dict[str, Tensor]]] = ()) -> dict[str, Tensor]:
        """``regions``: (mask (N, 1, H, W), Gram targets) pairs; when given, the style term is
        each region's guided Gram term weighted by the region's share of the frame (``grams``
        unused), and pixels in no region get no style term."""
        s = self.spec
        zero = torch.zeros((), device=image.device)
        if regions:
            style = sum((m.float().mean() * self.layer_weights[n] * guided_style_loss(feats[n], m, g[n])
                         for m, g in regions for n in s.style_layers), zero)
        else:
            style = sum((self.layer_weights[n] * style_loss(feats[n], grams[n]) for n in s.style_layers), zero)
        terms = {
            "content": s.content_weight * sum((content_loss(feats[n], content_feats[n]) for n in s.content_layers), zero),
            "style": s.style_weight * style,
        }
        if s.tv_weight:
            terms["tv"] = s.tv_weight * tv_loss(image)
        if temporal:
            terms["temporal"] = sum((wt * temporal_loss(image, tgt, m) for tgt, m, wt in temporal), zero)
        return terms
