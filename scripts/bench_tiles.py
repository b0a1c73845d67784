#!/usr/bin/env python
"""Tiled against untiled optimisation of one image: peak memory, seconds per iteration and the
final losses, per size. Each run is its own process, so its peak RSS (or peak CUDA memory) is its
own; untiled runs are skipped above --untiled-max.

    python scripts/bench_tiles.py [--content ...] [--style ...] [--sizes 512 1024 2048] [--tile 512]
        [--iterations 10] [--model auto] [--device cpu]

The content is the benchmark clip's first frame scaled up to each size (the renderer never
upscales; this is a stand-in with the frame's structure at every size).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import cv2, numpy as np, torch
from videostyle.config import Config, apply
from videostyle.images import read_image
from videostyle.media import read_frames
from videostyle.stylize import Stylizer
a = json.loads(sys.argv[1])
frame = next(read_frames(a["clip"])).image
h, w = frame.shape[:2]
f = a["size"] / max(h, w)
content = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
cfg = apply(Config(), {"model.name": a["model"], "render.device": a["device"], "optim.size": 0,
                       "optim.iterations": a["iterations"], "optim.tile": a["tile"] or "off",
                       "optim.tile_margin": a["margin"]})
st = Stylizer.from_config(cfg)
st.set_styles([read_image(a["style"])])
t0 = time.perf_counter()
res = st.stylize(content)
secs = time.perf_counter() - t0
if st.device.type == "cuda":
    peak = torch.cuda.max_memory_allocated() / 2**20
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = (res.image * 255).round().astype(np.uint8)
if a.get("save"):
    cv2.imwrite(a["save"], cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
print(json.dumps({"peak_mb": peak, "s_iter": secs / max(res.iterations, 1), "loss": res.loss,
                  "losses": res.losses}))
"""


def run(args: dict[str, object]) -> dict[str, object] | None:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"# failed: {args['size']} px tile {args['tile']}: {proc.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = media_parser(__doc__, frames=1, size=0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--margin", type=int, default=80)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--untiled-max", type=int, default=1024, help="largest size also run untiled")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--save", type=Path, help="folder for the outputs (to look at the seams)")
    args = ap.parse_args()
    model = resolve_model(args.model)
    print(f"# {args.clip.name} frame 0 scaled to each size, {args.style.name}, model {model}, {args.device}, "
          f"{args.iterations} L-BFGS iterations; tiles of {args.tile} px with {args.margin} px of context")
    print("| size | run | peak memory MB | s/iteration | final loss | content | style | loss vs untiled |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        base = None
        for tile in ([0] if size <= args.untiled_max else []) + ([args.tile] if size > args.tile else []):
            save = str(args.save / f"{size}_{'tiled' if tile else 'whole'}.png") if args.save else None
            r = run({"clip": str(args.clip), "style": str(args.style), "model": model, "device": args.device,
                     "size": size, "iterations": args.iterations, "tile": tile, "margin": args.margin, "save": save})
            if r is None:
                continue
            base = base if base is not None or tile else r["loss"]
            rel = f"{r['loss'] / base:.3f}x" if base and tile else "-"
            losses = r["losses"]
            print(f"| {size} | {'tiled' if tile else 'untiled'} | {r['peak_mb']:.0f} | {r['s_iter']:.2f} | "
                  f"{r['loss']:.4g} | {losses['content']:.4g} | {losses['style']:.4g} | {rel} |", flush=True)


if __name__ == "__main__":
    main()
