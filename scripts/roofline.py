#!/usr/bin/env python
"""The optimiser against the device's limit. For each size: the FLOPs and the bytes one iteration
moves (the conv stack of VGG-19 to relu5_1, forward and input-gradient backward: the work itself,
counted from the layer shapes), the time of the floor (that forward and backward alone) and of a
default stylizer iteration (L-BFGS over the content, style and TV losses, as a render runs it),
the achieved TFLOPS and their share of the device's dense peak, for each variant (fp32, and bf16
autocast with channels_last). The peaks come from the small table below, by the card's name; a
device not in it (a CPU) gets no share. Prints one table.

    python scripts/roofline.py --device cuda --sizes 512 1080x1920
    python scripts/roofline.py --device cpu --sizes 64 96x128 --iterations 4    # a rehearsal

Counted, not measured: the FLOPs are multiply-adds x2 of the convolutions (the ReLUs, pools and
Gram matrices add under 1%); the bytes are each conv's input, output and weights once forward and
its output gradient, input gradient, weights and saved ReLU output once backward, in the
variant's element size: what a perfect cache between layers would still move.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stylizer import LAYERS, sync, time_iteration, vgg_flops  # noqa: E402

from videostyle import config as C  # noqa: E402
from videostyle.engines import build_stylizer  # noqa: E402
from videostyle.gatys.features import VGG19_DEPTHS, VGG19_WIDTHS, VGGFeatures, random_init  # noqa: E402

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


def vgg_bytes(h: int, w: int, element: int) -> float:
    """Bytes one iteration moves at least (module docstring), ``element`` bytes a value."""
    total, cin = 0.0, 3
    for block, (width, depth) in enumerate(zip(VGG19_WIDTHS, VGG19_DEPTHS), start=1):
        d = depth if block < 5 else 1
        for _ in range(d):
            inp, out, weights = cin * h * w, width * h * w, cin * width * 9
            total += (inp + out + weights) + (out + inp + weights + out)
            cin = width
        h, w = h // 2, w // 2
    return total * element


def parse_size(s: str) -> tuple[int, int]:
    """``512`` (a square) or ``HxW``."""
    if "x" in s:
        h, w = s.lower().split("x")
        return int(h), int(w)
    return int(s), int(s)


def stylizer_ms(h: int, w: int, precision: str, channels_last: bool, device: str, iterations: int) -> float:
    """The median of a default stylizer's iteration times (after the first two) on a random
    picture, with seeded random weights (a pretrained network's speed is the same)."""
    cfg = C.apply(C.Config(), {"model.name": "random", "optim.size": max(h, w), "render.device": device,
                               "render.precision": precision, "render.channels_last": channels_last})
    rng = np.random.default_rng(0)
    style = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    content = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    st = build_stylizer(cfg, [style], lambda m: None)
    stamps: list[float] = []

    def tick(it) -> None:  # (each STIterate comes once its iteration's host reads are done)
        sync(torch.device(device))
        stamps.append(time.perf_counter())

    st.stylize(content, "content", iterations=iterations, pyramid=False, seed=0, callback=tick)
    deltas = np.diff(stamps)[2:] if len(stamps) > 4 else np.diff(stamps)
    return float(statistics.median(deltas)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["512", "1080x1920"], help="512 (a square) or HxW")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=10, help="floor: timed repeats (median)")
    ap.add_argument("--iterations", type=int, default=30, help="stylizer: iterations timed (median)")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()} threads"
    peak = peaks(name) if device.type == "cuda" else None
    cuda = torch.version.cuda or "-"
    driver = "-"
    if device.type == "cuda":
        try:
            import subprocess

            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=20).stdout.strip() or "-"
        except (OSError, subprocess.SubprocessError):
            pass
    print(f"# {name}; driver {driver}; torch {torch.__version__}; CUDA {cuda}; peaks (bf16, tf32, fp32 TFLOPS, "
          f"TB/s): {peak if peak else 'not in the table'}")
    print("| size | variant | GFLOP/iter | MB/iter | FLOP/byte | floor ms | floor TFLOPS | floor % of peak | "
          "stylizer ms/iter | stylizer TFLOPS | stylizer % of peak | time at peak FLOPS, ms | at peak bandwidth, ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    model = random_init(VGGFeatures(LAYERS), 0).freeze()
    for s in args.sizes:
        h, w = parse_size(s)
        flops = 2 * vgg_flops(h, w)
        for label, dtype, precision, cl, element, slot in (("fp32", None, "fp32", False, 4, 1),
                                                           ("bf16 + channels_last", torch.bfloat16, "bf16", True, 2, 0)):
            if device.type == "cuda" and label == "fp32":
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # (as a render has it)
            moved = vgg_bytes(h, w, element)
            floor = time_iteration(model, (h, w), dtype, cl, device, args.repeats, 2) * 1e3
            it = stylizer_ms(h, w, precision, cl, args.device, args.iterations)
            top = peak[slot] if peak else None  # fp32 runs on tf32 tensor cores on a GPU
            share = (lambda ms: f"{flops / (ms / 1e3) / 1e12 / top * 100:.0f}%") if top else (lambda ms: "-")
            at_peak = f"{flops / (top * 1e12) * 1e3:.2f}" if top else "-"
            at_bw = f"{moved / (peak[3] * 1e12) * 1e3:.2f}" if peak else "-"
            print(f"| {h}x{w} | {label} | {flops / 1e9:.1f} | {moved / 2**20:.0f} | {flops / moved:.0f} | "
                  f"{floor:.1f} | {flops / (floor / 1e3) / 1e12:.3f} | {share(floor)} | {it:.1f} | "
                  f"{flops / (it / 1e3) / 1e12:.3f} | {share(it)} | {at_peak} | {at_bw} |", flush=True)


if __name__ == "__main__":
    main()
