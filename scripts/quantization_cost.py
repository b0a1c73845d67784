#!/usr/bin/env python
"""What the embedded VGG-19's 8-bit quantization costs, measured without the float original.

The file stores each kernel as 256 k-means centroids per layer. The original float weight of an
entry lay somewhere in its centroid's cell (the interval between the midpoints to the
neighbouring centroids). This script draws plausible originals, each weight uniform in its cell,
and measures how far the network's outputs move from the quantized one's:

1. per layer: the weights' RMS quantization error against their RMS (signal-to-noise, dB);
2. the relative change of the content features (relu4_2) and of the style Gram matrices;
3. a stylization with the same settings and start on each network: PSNR against the quantized
   network's result, and the final losses; for scale, the same against a bf16 run of the shipped
   network (L-BFGS amplifies any small change over its iterations).

The true original is one such draw, so these are the size of the cost, not its exact value.

    python scripts/quantization_cost.py [--draws 3] [--size 256] [--iterations 50]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.assets import embedded_weights_path  # noqa: E402
from videostyle.gatys.features import VGGFeatures, layer_names
from videostyle.io.images import fit_size, read_image
from videostyle.gatys.losses import gram_matrix
from videostyle.gatys.stylizer import resize, to_tensor

MEDIA = Path(__file__).resolve().parents[1].parent / "shared/media"


def cells(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds of each centroid's cell (midpoints to its sorted neighbours)."""
    order = torch.argsort(table)
    srt = table[order]
    mid = (srt[1:] + srt[:-1]) / 2
    lo_s = torch.cat([srt[:1] - (mid[:1] - srt[:1]), mid])
    hi_s = torch.cat([mid, srt[-1:] + (srt[-1:] - mid[-1:])])
    lo, hi = torch.empty_like(table), torch.empty_like(table)
    lo[order], hi[order] = lo_s, hi_s
    return lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--style", type=Path, default=MEDIA / "style/starry_night.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    state = torch.load(embedded_weights_path(), map_location="cpu", weights_only=True)
    convs = [n for n in layer_names() if n.startswith("conv")]

    def stem(name: str) -> str:
        b, c = name[4:].split("_")
        return f"block{b}_conv{c}"

    print("| layer | weight RMS | quantization error RMS (uniform in cell) | SNR dB |")
    print("| --- | --- | --- | --- |")
    for name in convs:
        table, q = state[f"{stem(name)}_W_table"].float(), state[f"{stem(name)}_W_q"].long()
        lo, hi = cells(table)
        w = table[q]
        err_rms = float(((hi - lo)[q].pow(2) / 12).mean().sqrt())
        w_rms = float(w.pow(2).mean().sqrt())
        print(f"| {name} | {w_rms:.4f} | {err_rms:.5f} | {20 * math.log10(w_rms / err_rms):.1f} |")

    def network(draw: int | None) -> VGGFeatures:
        g = torch.Generator().manual_seed(draw or 0)
        weights = {}
        for name in convs:
            table, q = state[f"{stem(name)}_W_table"].float(), state[f"{stem(name)}_W_q"].long()
            if draw is None:
                w = table[q]
            else:
                lo, hi = cells(table)
                w = lo[q] + (hi - lo)[q] * torch.rand(q.shape, generator=g)
            weights[name] = (w, state[f"{stem(name)}_b"].float())
        m = VGGFeatures(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"), weights_format="caffe")
        m.load_conv_state(weights)
        return m.freeze()

    cfg = apply(Config(), {"optim.size": args.size, "optim.iterations": args.iterations, "render.precision": "fp32",
                           "render.device": "cpu"})
    content = read_image(args.content)
    h, w = fit_size(*content.shape[:2], args.size)
    x = resize(to_tensor(content), (h, w))
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
    base = network(None)
    with torch.no_grad():
        ref = base(x, layers)
    small = (content if max(content.shape[:2]) <= args.size else
             (resize(to_tensor(content), (h, w))[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    st = new_stylizer(cfg, extractor=base)
    st.set_styles([read_image(args.style)])
    out_ref = st.stylize(small)
    print(f"\n# {args.content.name} at {w}x{h}, {args.iterations} L-BFGS iterations, style {args.style.name}, fp32")
    print("| network | relu4_2 rel. change | Gram rel. change (relu1_1..relu5_1) | final loss | PSNR vs quantized (dB) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| quantized (shipped) | 0 | 0 | {out_ref.loss:.4f} | - |")
    # For scale: the same (shipped) network under bf16 autocast, the CPU default where supported.
    st_bf16 = new_stylizer(apply(cfg, {"render.precision": "bf16"}), extractor=base)
    st_bf16.set_styles([read_image(args.style)])
    out = st_bf16.stylize(small)
    psnr = 10 * math.log10(1.0 / max(float(np.mean((out.image - out_ref.image) ** 2)), 1e-12))
    print(f"| quantized, bf16 autocast (for scale) | - | - | {out.loss:.4f} | {psnr:.1f} |", flush=True)
    for d in range(1, args.draws + 1):
        net = network(d)
        with torch.no_grad():
            got = net(x, layers)
        content_change = float((got["relu4_2"] - ref["relu4_2"]).norm() / ref["relu4_2"].norm())
        gram_change = [float((gram_matrix(got[n]) - gram_matrix(ref[n])).norm() / gram_matrix(ref[n]).norm())
                       for n in layers if n != "relu4_2"]
        st2 = new_stylizer(cfg, extractor=net)
        st2.set_styles([read_image(args.style)])
        out = st2.stylize(small)
        mse = float(np.mean((out.image - out_ref.image) ** 2))
        psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
        print(f"| plausible original {d} | {content_change:.4f} | {', '.join(f'{g:.4f}' for g in gram_change)} | "
              f"{out.loss:.4f} | {psnr:.1f} |", flush=True)


if __name__ == "__main__":
    main()
