"""How far a VGG-19 feature looks: the effective receptive field of each loss layer, measured.

For a feature at the centre of a real image, the gradient of its channels' sum with respect to
the input pixels says which pixels it depends on. The radius (Chebyshev distance from the
centre) that holds 95%, 99% and 99.9% of the gradient's magnitude is the context a tile needs
around the features it keeps (``--tile-margin``); the theoretical field bounds it from above.

    python -m benchmarks figure receptive-field [--clip ...] [--size 512] [--model auto]
"""

from __future__ import annotations

import math

import cv2
import torch

from videostyle.gatys.features import build_extractor
from videostyle.io.media import read_frames
from videostyle.gatys.stylizer import to_tensor
from videostyle.gatys.tiles import layer_step

from benchmarks.figures import media_parser, resolve_model

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def theoretical(name: str) -> int:
    """Radius of the theoretical receptive field: each 3x3 conv adds one step, each 2x2 pooling
    half a step and doubles the step."""
    block, conv = (int(v) for v in name[4:].split("_"))
    radius, step = 0.0, 1
    for depth in (2, 2, 4, 4)[: block - 1]:
        radius += depth * step + step / 2
        step *= 2
    return math.ceil(radius + conv * step)


def main(argv: list[str] | None = None) -> None:
    ap = media_parser(__doc__, frames=1, size=512)
    ap.add_argument("--model", default="auto")
    args = ap.parse_args(argv)
    model = resolve_model(args.model)
    net = build_extractor(LAYERS, model=model, download=False).float().eval()
    frame = next(read_frames(args.clip)).image
    side = args.size
    img = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
    x = to_tensor(img).requires_grad_(True)
    feats = net(x, LAYERS)
    print(f"# {args.clip.name} frame 0 at {side}x{side}, model {model}, fp32; gradient of the centre feature's "
          "channel sum")
    print("| layer | step px | theoretical radius px | radius for 95% | 99% | 99.9% |")
    print("| --- | --- | --- | --- | --- | --- |")
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    for name in LAYERS:
        f = feats[name]
        cy, cx = f.shape[2] // 2, f.shape[3] // 2
        (g,) = torch.autograd.grad(f[0, :, cy, cx].sum(), x, retain_graph=True)
        mag = g.abs().sum(1)[0]
        step = layer_step(name)
        py, px = cy * step + step // 2, cx * step + step // 2
        dist = torch.maximum((yy - py).abs(), (xx - px).abs())
        total = float(mag.sum())
        radii = []
        for q in (0.95, 0.99, 0.999):
            r = next(r for r in range(side) if float(mag[dist <= r].sum()) >= q * total)
            radii.append(r)
        print(f"| {name} | {step} | {theoretical(name)} | {radii[0]} | {radii[1]} | {radii[2]} |", flush=True)

