#!/usr/bin/env python
"""The same image render on CUDA and on the CPU, both in fp32 with the real network: the final
losses must agree within --tolerance (2%). Exits 1 when they do not.

    python scripts/cuda_vs_cpu.py [--clip ...] [--style ...] [--size 512] [--iterations 40]

The content is the clip's first frame (so only the benchmark clip and style need to travel).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.io.images import read_image
from videostyle.io.media import read_frames
from videostyle.factory import prepare_content

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402


def main() -> int:
    ap = media_parser(__doc__, frames=1, size=512)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--devices", default="cuda,cpu", help="the two devices to compare")
    args = ap.parse_args()
    model = resolve_model(args.model)
    content = prepare_content(next(read_frames(args.clip)).image, args.size, "content")
    style = read_image(args.style)
    print(f"# {args.clip.name} frame 0 at {content.shape[1]}x{content.shape[0]}, model {model}, "
          f"{args.iterations} L-BFGS iterations, fp32, torch {torch.__version__}")
    print("| device | loss | content | style | tv | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    losses: list[float] = []
    for dev in args.devices.split(","):
        cfg = apply(Config(), {"model.name": model, "render.device": dev, "render.precision": "fp32",
                               "optim.iterations": args.iterations})
        st = new_stylizer(cfg)
        st.set_styles([style])
        t0 = time.perf_counter()
        res = st.stylize(content)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        losses.append(res.loss)
        t = res.losses
        print(f"| {dev} | {res.loss:.5g} | {t['content']:.5g} | {t['style']:.5g} | {t.get('tv', 0):.5g} | {secs:.1f} |",
              flush=True)
    a, b = losses
    rel = abs(a - b) / max(abs(b), 1e-12)
    verdict = "ok" if rel <= args.tolerance else "FAILS"
    print(f"\nrelative difference {rel:.2%} (tolerance {args.tolerance:.0%}): {verdict}")
    return 0 if rel <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
