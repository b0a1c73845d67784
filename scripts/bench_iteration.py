#!/usr/bin/env python
"""What a later frame's iteration costs, part by part, against the bare network, in one run.

For each size (the long side of a 16:9 frame) it times, with ``torch.utils.benchmark`` (median
of its blocks), at the precision ``auto`` picks on this device and in channels_last:

- net: VGG-19 up to relu5_1 as plain torchvision layers (``torchvision.models.vgg19().features``),
  forward plus the input's gradient: the network's own cost, the floor of an iteration;
- net + Grams: the same with the five Gram matrices (``gatys.losses.gram_matrix``) as the loss;
- loss: the package's feature network and its whole loss (content, style, TV, one temporal
  term) forward and backward;
- iteration: a later frame's optimisation as a render runs it (``Stylizer.stylize`` from a warm
  start with a temporal term, ``--iterations-later`` iterations), per iteration, its per-frame
  set-up included.

Each row is measured twice in the same run: with the Gram as it was (a (N, C, H*W) reshape, a
copy of channels_last memory, and autograd's backward, one product per operand) and as it is.
Random weights: the cost does not depend on them.

    python scripts/bench_iteration.py                 # 256 and 512 px
    python scripts/bench_iteration.py --sizes 256 --iterations 10
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark

from videostyle.device import resolve_precision
from videostyle.engine import TemporalTerm
from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.gatys import losses, stylizer as stylizer_module
from videostyle.gatys.features import VGGFeatures, random_init

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def copied_gram(features: torch.Tensor) -> torch.Tensor:
    """The Gram before: a (N, C, H*W) reshape (a copy of channels_last memory), autograd's backward."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


@contextlib.contextmanager
def gram(kind: str) -> Iterator[None]:
    """The package's Gram replaced by the one before (``kind`` "before") for the block."""
    if kind == "after":
        yield
        return
    saved = losses.gram_matrix, stylizer_module.gram_matrix
    losses.gram_matrix = stylizer_module.gram_matrix = copied_gram
    try:
        yield
    finally:
        losses.gram_matrix, stylizer_module.gram_matrix = saved


def median_ms(fn: Callable[[], Any], min_run_time: float) -> float:
    return 1e3 * benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def autocast(dtype: torch.dtype | None, device: str = "cpu") -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device, dtype=dtype) if dtype else contextlib.nullcontext()


def bare_net() -> torch.nn.Module:
    """torchvision's VGG-19 layers up to relu5_1 (index 29), random weights, frozen."""
    from torchvision.models import vgg19

    net = vgg19(weights=None).features[:30].eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(memory_format=torch.channels_last)


def net_parts(hw: tuple[int, int], dtype: torch.dtype | None, seconds: float,
              device: torch.device = torch.device("cpu"), grams: bool = True) -> dict[str, float]:
    """ms of the bare network on ``device``, and (``grams``) of it with each Gram (before,
    after) as the loss (``torch.utils.benchmark`` synchronises a GPU around each call)."""
    net = bare_net().to(device)
    taps = {1: "relu1_1", 6: "relu2_1", 11: "relu3_1", 20: "relu4_1", 29: "relu5_1"}
    x = torch.rand(1, 3, *hw, device=device).contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def run(with_grams: bool) -> None:
        feats = []
        with autocast(dtype, device.type):
            h = x
            for i, layer in enumerate(net):
                h = layer(h)
                if i in taps:
                    feats.append(h)
        loss = sum(losses.gram_matrix(f).sum() for f in feats) if with_grams else sum(f.float().sum() for f in feats)
        loss.backward()  # type: ignore[union-attr]
        x.grad = None

    out = {"net": median_ms(lambda: run(False), seconds)}
    for kind in ("before", "after") if grams else ():
        with gram(kind):
            out[f"grams {kind}"] = median_ms(lambda: run(True), seconds) - out["net"]
    return out


def loss_ms(hw: tuple[int, int], dtype: torch.dtype | None, seconds: float, kind: str) -> float:
    """ms of the package's network and whole loss (one temporal term), forward and backward."""
    from videostyle.gatys.losses import PerceptualLoss
    from videostyle.gatys.specs import DEFAULT_LOSS

    model = random_init(VGGFeatures(LAYERS), 0).freeze().to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, *hw).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    with torch.no_grad(), autocast(dtype):
        target = {k: v.float() for k, v in model(torch.rand(1, 3, *hw), LAYERS).items()}
    with gram(kind):
        grams = {k: losses.gram_matrix(target[k]) for k in STYLE}
        loss = PerceptualLoss(DEFAULT_LOSS)
        warped, mask = torch.rand(1, 3, *hw), torch.ones(1, 1, *hw)

        def run() -> None:
            with autocast(dtype):
                feats = model(x, LAYERS)
            terms = loss(x, feats, {"relu4_2": target["relu4_2"]}, grams, [(warped, mask, 30.0)])
            sum(terms.values()).backward()
            x.grad = None

        return median_ms(run, seconds)


def iteration_ms(hw: tuple[int, int], iterations: int, seconds: float, kind: str) -> tuple[float, int]:
    """ms per iteration of a later frame's optimisation, and its iterations."""
    cfg = apply(Config(), {"model.name": "random", "render.device": "cpu", "optim.iterations": iterations,
                           "optim.tile": "off"})
    st = new_stylizer(cfg)
    rng = np.random.default_rng(0)
    h, w = hw
    st.set_styles([rng.integers(0, 256, (h, w, 3), dtype=np.uint8)], [1.0])
    content = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    start = np.clip(content.astype(np.int16) + rng.integers(-8, 9, (h, w, 3)), 0, 255).astype(np.uint8)
    term = TemporalTerm(start.astype(np.float32) / 255.0, np.ones((h, w), np.float32), 30.0)
    done: list[int] = []

    def run() -> None:
        res = st.stylize(content, start, iterations=iterations, temporal=[term], pyramid=False, seed=0)
        done.append(res.iterations)

    with gram(kind):
        run()  # (the style targets at this size, once, as a render's first frame makes them)
        ms = median_ms(run, seconds)
    return ms / max(done[-1], 1), done[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="long sides of 16:9 frames")
    ap.add_argument("--iterations", type=int, default=20, help="a later frame's iterations (--iterations-later)")
    ap.add_argument("--seconds", type=float, default=4.0, help="least time per measurement")
    args = ap.parse_args()
    device = torch.device("cpu")
    print(f"# CPU, {torch.get_num_threads()} threads; torch {torch.__version__}; torch.utils.benchmark medians")
    print("| size | precision | gram | net ms | Grams ms | loss ms | iteration ms | iteration / net |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        hw = (round(size * 9 / 16 / 2) * 2, size)
        dtype = resolve_precision("auto", device, hw[0] * hw[1])
        prec = "fp32" if dtype is None else str(dtype).removeprefix("torch.")
        parts = net_parts(hw, dtype, args.seconds)
        for kind in ("before", "after"):
            lo = loss_ms(hw, dtype, args.seconds, kind)
            it, n = iteration_ms(hw, args.iterations, args.seconds * 2, kind)
            print(f"| {hw[1]}x{hw[0]} | {prec} | {kind} | {parts['net']:.1f} | {parts[f'grams {kind}']:.1f} | "
                  f"{lo:.1f} | {it:.1f} ({n} its) | {it / parts['net']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
