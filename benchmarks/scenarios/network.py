"""The optimiser against the device's limit. For each size and variant (fp32 or bf16 autocast,
channels_last or not): the FLOPs and bytes one iteration moves (counted from VGG-19's layer
shapes to relu5_1, forward and input-gradient backward), the bare network's time and a default
stylizer iteration's, the achieved TFLOPS and their share of the card's dense peak.

Counted, not measured: the FLOPs are the convolutions' multiply-adds x2 (ReLUs, pools and Gram
matrices add under 1%); the bytes are each conv's input, output and weights once forward and its
output gradient, input gradient, weights and saved ReLU output once backward, in the variant's
element size: what a perfect cache between layers would still move."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, inner

# Dense peaks (no sparsity): bf16 and tf32 tensor TFLOPS, fp32 TFLOPS without tensor cores, and
# memory TB/s, from the vendors' data sheets. Matched by the longest key in the card's name.
PEAKS: dict[str, tuple[float, float, float, float]] = {
    "H200": (989.0, 494.0, 67.0, 4.8),
    "H100 NVL": (835.0, 418.0, 60.0, 3.9),
    "H100 PCIe": (756.0, 378.0, 51.0, 2.0),
    "H100": (989.0, 494.0, 67.0, 3.35),  # SXM
    "A100": (312.0, 156.0, 19.5, 2.0),
    "L40S": (362.0, 183.0, 91.6, 0.864),
    "L4": (121.0, 60.0, 30.3, 0.3),
    "A10G": (70.0, 35.0, 31.2, 0.6),
}


def peaks(name: str) -> tuple[float, float, float, float] | None:
    keys = [k for k in PEAKS if k in name]
    return PEAKS[max(keys, key=len)] if keys else None


def _convs(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """(cin, cout, h, w) of each conv up to conv5_1."""
    from videostyle.gatys.features import VGG19_DEPTHS, VGG19_WIDTHS

    out, cin = [], 3
    for block, (width, depth) in enumerate(zip(VGG19_WIDTHS, VGG19_DEPTHS), start=1):
        for _ in range(depth if block < 5 else 1):
            out.append((cin, width, h, w))
            cin = width
        h, w = h // 2, w // 2
    return out


def vgg_flops(h: int, w: int) -> float:
    """Forward multiply-adds x2 of the conv stack up to relu5_1."""
    return sum(2.0 * cin * cout * 9 * hh * ww for cin, cout, hh, ww in _convs(h, w))


def vgg_bytes(h: int, w: int, element: int) -> float:
    """Bytes one iteration moves at least (the module's docstring), ``element`` bytes a value."""
    total = 0.0
    for cin, cout, hh, ww in _convs(h, w):
        inp, out, weights = cin * hh * ww, cout * hh * ww, cin * cout * 9
        total += (inp + out + weights) + (out + inp + weights + out)
    return total * element


def floor_seconds(hw: tuple[int, int], dtype: Any, channels_last: bool, device: Any, seconds: float) -> float:
    """torchvision's VGG-19 layers to relu5_1 (random weights), forward and input gradient."""
    import torch
    from torchvision.models import vgg19

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = vgg19(weights=None).features[:30].eval().requires_grad_(False).to(device=device, memory_format=fmt)
    x = torch.rand(1, 3, *hw, device=device).contiguous(memory_format=fmt).requires_grad_(True)

    def run() -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            y = net(x)
        y.float().sum().backward()
        x.grad = None

    return inner(run, seconds).median


def stylizer_seconds(hw: tuple[int, int], precision: str, channels_last: bool, device: str, iterations: int) -> float:
    """The median of a default stylizer's iteration times (after its first two) on a random
    picture: each iteration's report comes once its host reads are done."""
    from videostyle.config import Config, apply
    import torch

    from videostyle.engines import new_stylizer

    h, w = hw
    st = new_stylizer(apply(Config(), {"model.name": "random", "optim.size": max(h, w), "render.device": device,
                                       "render.precision": precision, "render.channels_last": channels_last,
                                       "optim.tile": "off"}))
    rng = np.random.default_rng(0)
    st.set_styles([rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)], [1.0])
    stamps: list[float] = []

    def tick(_: Any) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    st.stylize(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "content", iterations=iterations, pyramid=False,
               seed=0, callback=tick)
    return float(np.median(np.diff(stamps)[2:] if len(stamps) > 4 else np.diff(stamps)))


# (label, autocast dtype, --precision, channels_last, bytes a value, the peak's slot in PEAKS)
VARIANTS = (("fp32", None, "fp32", False, 4, 1), ("fp32 + channels_last", None, "fp32", True, 4, 1),
            ("bf16", "bfloat16", "bf16", False, 2, 0), ("bf16 + channels_last", "bfloat16", "bf16", True, 2, 0))


def _device_name(device: Any) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def measure(ctx: Context) -> list[Row]:
    import torch

    from videostyle.device import resolve_device

    device = resolve_device(ctx.device)
    peak = peaks(_device_name(device)) if device.type == "cuda" else None
    rows: list[Row] = []
    for h, w in ctx.pick(((288, 512), (1080, 1920)) if device.type == "cuda" else ((144, 256), (288, 512)), ((36, 64),)):
        flops = 2 * vgg_flops(h, w)
        for label, dtype, precision, cl, element, slot in ctx.pick(VARIANTS, VARIANTS[:1]):
            dtype = getattr(torch, dtype) if dtype else None
            floor = floor_seconds((h, w), dtype, cl, device, ctx.seconds(2.0))
            it = stylizer_seconds((h, w), precision, cl, ctx.device, ctx.pick(30, 4))
            top = peak[slot] if peak else None  # (fp32 runs on tf32 tensor cores on a GPU)
            rows.append({"size": f"{w}x{h}", "variant": label, "gflop": flops / 1e9, "mb": vgg_bytes(h, w, element) / 2 ** 20,
                         "floor": floor * 1e3, "floor_tf": flops / floor / 1e12, "it": it * 1e3,
                         "it_tf": flops / it / 1e12, "floor_share": flops / floor / 1e12 / top if top else None,
                         "it_share": flops / it / 1e12 / top if top else None,
                         "at_peak": flops / (top * 1e12) * 1e3 if top else None})
    return rows


SCENARIOS = [
    Scenario("roofline", "The bare network and a stylizer iteration against the device's peak",
             (Column("size", "size"), Column("variant", "variant"), Column("gflop", "GFLOP/iter", "{:.1f}"),
              Column("mb", "MB/iter", "{:.0f}"), Column("floor", "network ms", "{:.1f}"),
              Column("floor_tf", "network TFLOPS", "{:.3f}"), Column("floor_share", "network % of peak", "{:.0%}"),
              Column("it", "iteration ms", "{:.1f}"), Column("it_tf", "iteration TFLOPS", "{:.3f}"),
              Column("it_share", "iteration % of peak", "{:.0%}"), Column("at_peak", "ms at peak FLOPS", "{:.2f}")),
             measure, "Random weights (the speed does not depend on them); the peaks are the card's dense data-sheet "
                      "figures (a CPU has none); torch.utils.benchmark medians for the network."),
]
