#!/usr/bin/env python
"""Stylizer speed: ms per iteration (VGG-19 to relu5_1, forward + input-gradient backward).

Prints a table of medians for fp32 vs bf16 autocast and channels_last on/off at each size,
with the analytic VGG FLOP count and the achieved GFLOP/s. Uses seeded random weights (the
speed of a pretrained network is identical).

    python scripts/bench_stylizer.py --sizes 256 512 --repeats 5 [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from videostyle.gatys.features import VGG19_DEPTHS, VGG19_WIDTHS, VGGFeatures, random_init
from videostyle.gatys.losses import gram_matrix

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def vgg_flops(h: int, w: int) -> float:
    """Forward multiply-adds x2 of the conv stack up to relu5_1 (conv5_1 is the last conv)."""
    flops, cin = 0.0, 3
    for block, (width, depth) in enumerate(zip(VGG19_WIDTHS, VGG19_DEPTHS), start=1):
        d = depth if block < 5 else 1
        for _ in range(d):
            flops += 2.0 * cin * width * 9 * h * w
            cin = width
        h, w = h // 2, w // 2
    return flops


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iteration(model: VGGFeatures, size: int | tuple[int, int], dtype: torch.dtype | None, channels_last: bool,
                   device: torch.device, repeats: int, warmup: int) -> float:
    """Seconds of one forward + input-gradient backward at ``size`` (a square's side, or (H, W))."""
    h, w = (size, size) if isinstance(size, int) else size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = model.to(device=device, memory_format=fmt)
    x = torch.rand(1, 3, h, w, device=device).contiguous(memory_format=fmt).requires_grad_(True)
    times = []
    for i in range(warmup + repeats):
        sync(device)
        t0 = time.perf_counter()
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with ctx:
            feats = m(x, LAYERS)
        loss = sum(gram_matrix(f).sum() for f in feats.values()) + feats["relu4_2"].float().pow(2).mean()
        loss.backward()
        x.grad = None
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = random_init(VGGFeatures(LAYERS), 0).freeze()
    low = torch.bfloat16
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()} threads"
    print(f"# device: {name}; torch {torch.__version__}; median of {args.repeats} after {args.warmup} warm-up")
    print("| size | precision | channels_last | ms/iter | vs fp32 | GFLOP/iter | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        flops = 2 * vgg_flops(size, size)  # forward + input-gradient backward
        base = None
        for dtype, label in ((None, "fp32"), (low, "bf16")):
            for cl in (False, True):
                t = time_iteration(model, size, dtype, cl, device, args.repeats, args.warmup)
                base = base or t
                print(f"| {size} | {label} | {'on' if cl else 'off'} | {t * 1e3:.1f} | {base / t:.2f}x | "
                      f"{flops / 1e9:.1f} | {flops / t / 1e9:.0f} |", flush=True)


if __name__ == "__main__":
    main()
