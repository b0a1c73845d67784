"""What a later frame's iteration costs, part by part, against the bare network, in one run:
the network alone (torchvision's VGG-19 layers to relu5_1, forward and input gradient), the
network with the five Gram matrices as its loss, the package's network with its whole loss, and
a later frame's optimisation as a render runs it, per iteration."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, inner

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
TAPS = {1: "relu1_1", 6: "relu2_1", 11: "relu3_1", 20: "relu4_1", 29: "relu5_1"}


def _autocast(dtype: Any, device: str) -> contextlib.AbstractContextManager[Any]:
    import torch

    return torch.autocast(device, dtype=dtype) if dtype else contextlib.nullcontext()


def bare_net(device: Any) -> Any:
    """torchvision's VGG-19 layers up to relu5_1 (index 29), random weights, frozen, channels_last."""
    import torch
    from torchvision.models import vgg19

    net = vgg19(weights=None).features[:30].eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device=device, memory_format=torch.channels_last)


def net_and_grams(hw: tuple[int, int], dtype: Any, seconds: float, device: Any,
                  grams: bool = True) -> tuple[float, float]:
    """Seconds of the bare network, and (``grams``) of it with the Gram matrices as the loss (else 0)."""
    import torch

    from videostyle.gatys.losses import gram_matrix

    net = bare_net(device)
    x = torch.rand(1, 3, *hw, device=device).contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def run(grams: bool) -> None:
        feats, h = [], x
        with _autocast(dtype, device.type):
            for i, layer in enumerate(net):
                h = layer(h)
                if i in TAPS:
                    feats.append(h)
        loss = sum(gram_matrix(f).sum() for f in feats) if grams else sum(f.float().sum() for f in feats)
        loss.backward()  # type: ignore[union-attr]
        x.grad = None

    return inner(lambda: run(False), seconds).median, inner(lambda: run(True), seconds).median if grams else 0.0


def loss_time(hw: tuple[int, int], dtype: Any, seconds: float, device: Any) -> float:
    """Seconds of the package's network and whole loss (one temporal term), forward and backward."""
    import torch

    from videostyle.gatys.features import VGGFeatures, random_init
    from videostyle.gatys.losses import PerceptualLoss, gram_matrix
    from videostyle.gatys.specs import DEFAULT_LOSS

    model = random_init(VGGFeatures(LAYERS), 0).freeze().to(device=device, memory_format=torch.channels_last)
    x = torch.rand(1, 3, *hw, device=device).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    with torch.no_grad(), _autocast(dtype, device.type):
        target = {k: v.float() for k, v in model(torch.rand(1, 3, *hw, device=device), LAYERS).items()}
    grams = {k: gram_matrix(target[k]) for k in STYLE}
    loss = PerceptualLoss(DEFAULT_LOSS)
    warped, mask = torch.rand(1, 3, *hw, device=device), torch.ones(1, 1, *hw, device=device)

    def run() -> None:
        with _autocast(dtype, device.type):
            feats = model(x, LAYERS)
        terms = loss(x, feats, {"relu4_2": target["relu4_2"]}, grams, [(warped, mask, 30.0)])
        sum(terms.values()).backward()
        x.grad = None

    return inner(run, seconds).median


def iteration_time(hw: tuple[int, int], iterations: int, seconds: float, device: str) -> tuple[float, int]:
    """Seconds per iteration of a later frame's optimisation (``Stylizer.stylize`` from a warm
    start with a temporal term), and its iterations."""
    from videostyle.config import Config, apply
    from videostyle.engine import TemporalTerm
    from videostyle.engines import new_stylizer

    st = new_stylizer(apply(Config(), {"model.name": "random", "render.device": device,
                                       "optim.iterations": iterations, "optim.tile": "off"}))
    rng = np.random.default_rng(0)
    h, w = hw
    st.set_styles([rng.integers(0, 256, (h, w, 3), dtype=np.uint8)], [1.0])
    content = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    start = np.clip(content.astype(np.int16) + rng.integers(-8, 9, (h, w, 3)), 0, 255).astype(np.uint8)
    term = TemporalTerm(start.astype(np.float32) / 255.0, np.ones((h, w), np.float32), 30.0)
    done: list[int] = []

    def run() -> None:
        done.append(st.stylize(content, start, iterations=iterations, temporal=[term], pyramid=False, seed=0).iterations)

    run()  # (the style targets at this size, once, as a render's first frame makes them)
    return inner(run, seconds).median / max(done[-1], 1), done[-1]


def measure(ctx: Context) -> list[Row]:
    from videostyle.device import resolve_device, resolve_precision

    device = resolve_device(ctx.device)
    rows: list[Row] = []
    for side in ctx.pick((256, 512), (64,)):
        hw = (round(side * 9 / 16 / 2) * 2, side)
        dtype = resolve_precision("auto", device, hw[0] * hw[1])
        net, grams = net_and_grams(hw, dtype, ctx.seconds(4.0), device)
        loss = loss_time(hw, dtype, ctx.seconds(4.0), device)
        it, n = iteration_time(hw, ctx.pick(20, 2), ctx.seconds(8.0), ctx.device)
        rows.append({"size": f"{hw[1]}x{hw[0]}", "precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
                     "net": net * 1e3, "grams": (grams - net) * 1e3, "loss": loss * 1e3, "iteration": it * 1e3,
                     "its": n, "ratio": it / net})
    return rows


SCENARIOS = [
    Scenario("iteration", "A later frame's iteration, part by part, against the bare network",
             (Column("size", "size"), Column("precision", "precision"), Column("net", "net ms", "{:.1f}"),
              Column("grams", "Grams ms", "{:.1f}"), Column("loss", "loss ms", "{:.1f}"),
              Column("iteration", "iteration ms", "{:.1f}"), Column("its", "iterations"),
              Column("ratio", "iteration / net", "{:.2f}x")),
             measure,
             "Random weights (the cost does not depend on them); precision as auto picks it on the device; "
             "torch.utils.benchmark medians."),
]
