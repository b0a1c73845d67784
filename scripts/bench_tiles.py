#!/usr/bin/env python
"""Tiled against untiled optimisation of one image: peak memory, seconds per iteration and the
final losses, per size. Each run is its own process, so its peak RSS (or peak CUDA memory) is its
own; untiled runs are skipped above --untiled-max.

    python scripts/bench_tiles.py [--clip ...] [--style ...] [--sizes 512 1024 2048] [--tile 512]
        [--iterations 10] [--model auto] [--device cpu] [--seam-crop docs/tile_seam.png]

--tile is the network's input; each tile owns tile - 2 x margin px of the frame. The seam ratio
is the output's mean gradient magnitude across the unshifted grid's tile edges over that
elsewhere (1.0: no seam; untiled rows measure the same lines, as a control).

The content is the benchmark clip's first frame scaled up to each size (the renderer never
upscales; this is a stand-in with the frame's structure at every size).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import media_parser, resolve_model  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import cv2, numpy as np, torch
from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.io.images import read_image
from videostyle.io.media import read_frames
from videostyle.gatys.stylizer import Stylizer
a = json.loads(sys.argv[1])
frame = next(read_frames(a["clip"])).image
h, w = frame.shape[:2]
f = a["size"] / max(h, w)
content = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
cfg = apply(Config(), {"model.name": a["model"], "render.device": a["device"], "optim.size": 0,
                       "optim.iterations": a["iterations"], "optim.tile": a["tile"] or "off",
                       "optim.tile_margin": a["margin"], "style.stroke_side": 0})
if a.get("heap") == "glibc":  # glibc's own mmap threshold: the tiled path's map_large_blocks off
    import videostyle.gatys.runners
    videostyle.gatys.runners.map_large_blocks = lambda: None
if a.get("history_dtype"):
    import videostyle.gatys.runners as vs
    vs.TiledRunner.history_dtype = getattr(torch, a["history_dtype"])
st = new_stylizer(cfg)
st.set_styles([read_image(a["style"])])
if st.device.type == "cuda":
    # Untimed: the style targets and cuDNN's one-time algorithm search (untiled: most of the
    # device's memory at its peak, seconds of time) stay out of the iterations' figures.
    st.stylize(content, iterations=1)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
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


def seam_ratio(image: np.ndarray, core: int) -> float:
    """Mean gradient magnitude of ``image``'s luminance on the pixel pairs that straddle a tile
    edge of the unshifted grid (every ``core`` px), over the mean on all other pairs: 1.0 = no
    seam. (The grid shifts every iteration; its unshifted edges are where the first step cut.)"""
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    ex = np.zeros(gx.shape[1], bool)
    ex[core - 1::core] = True  # the pair (core - 1, core) straddles the edge at x = core
    ey = np.zeros(gy.shape[0], bool)
    ey[core - 1::core] = True
    on = np.concatenate([gx[:, ex].ravel(), gy[ey, :].ravel()])
    off = np.concatenate([gx[:, ~ex].ravel(), gy[~ey, :].ravel()])
    return float(on.mean() / off.mean()) if on.size else float("nan")  # (no edge: one tile)


def seam_crop(image: np.ndarray, core: int, dest: Path, control: np.ndarray | None = None, side: int = 192) -> None:
    """A crop around a corner where four tiles meet, the same crop with the edges marked, and
    (``control``) the untiled render's crop."""
    cy, cx = core, core
    y0, x0 = max(0, cy - side // 2), max(0, cx - side // 2)
    crop = image[y0:y0 + side, x0:x0 + side].copy()
    marked = crop.copy()
    marked[:, cx - x0] = (255, 0, 0)
    marked[cy - y0, :] = (255, 0, 0)
    gap = np.full((side, 8, 3), 255, np.uint8)
    parts = [crop, gap, marked] + ([gap, control[y0:y0 + side, x0:x0 + side]] if control is not None else [])
    sheet = np.concatenate(parts, 1)
    sheet = cv2.resize(sheet, (sheet.shape[1] * 2, side * 2), interpolation=cv2.INTER_NEAREST)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


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
    ap.add_argument("--history-dtypes", nargs="+", default=["default"], choices=("default", "float32", "bfloat16"),
                    help="dtype of the tiled runs' L-BFGS history (one tiled run each; default: the renderer's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--heaps", nargs="+", default=["mapped"], choices=("mapped", "glibc"),
                    help="tiled runs: large blocks mapped (memory.map_large_blocks, the default) or glibc's choice")
    ap.add_argument("--save", type=Path, help="folder for the outputs (to look at the seams)")
    ap.add_argument("--seam-crop", type=Path, help="write a crop of the largest tiled output's seam region here "
                    "(tiled | edges marked | untiled, where the untiled ran)")
    args = ap.parse_args()
    model = resolve_model(args.model)
    print(f"# {args.clip.name} frame 0 scaled to each size, {args.style.name}, model {model}, {args.device}, "
          f"{args.iterations} L-BFGS iterations; tiles of {args.tile} px ({args.tile - 2 * args.margin} px cores, "
          f"{args.margin} px of context)")
    print("| size | run | peak memory MB | s/iteration | final loss | content | style | loss vs untiled | seam ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    core = args.tile - 2 * args.margin
    folder = args.save or Path(tempfile.mkdtemp())
    last, whole = None, None
    for size in args.sizes:
        base = None
        runs = ([(0, "")] if size <= args.untiled_max else []) + (
            [(args.tile, d) for d in args.history_dtypes] if size > args.tile else [])
        runs = [(t, d, heap) for t, d in runs for heap in (args.heaps if t else ["mapped"])]
        for tile, hdt, heap in runs:
            save = str(folder / f"{size}_{'tiled' + hdt if tile else 'whole'}.png")
            r = run({"clip": str(args.clip), "style": str(args.style), "model": model, "device": args.device,
                     "size": size, "iterations": args.iterations, "tile": tile, "margin": args.margin, "save": save,
                     "history_dtype": "" if hdt == "default" else hdt, "heap": heap})
            if r is None:
                continue
            base = base if base is not None or tile else r["loss"]
            rel = f"{r['loss'] / base:.3f}x" if base and tile else "-"
            losses = r["losses"]
            out = cv2.cvtColor(cv2.imread(save), cv2.COLOR_BGR2RGB)
            seam = seam_ratio(out, core)  # (untiled: the same lines, as a control)
            if tile:
                last = (out, whole if whole is not None and whole.shape == out.shape else None)
            else:
                whole = out
            name = ("tiled" + (f", {hdt} history" if len(args.history_dtypes) > 1 else "")
                    + (f", {heap} large blocks" if len(args.heaps) > 1 else "")) if tile else "untiled"
            print(f"| {size} | {name} | {r['peak_mb']:.0f} | {r['s_iter']:.2f} | "
                  f"{r['loss']:.4g} | {losses['content']:.4g} | {losses['style']:.4g} | {rel} | {seam:.3f} |", flush=True)
    if args.seam_crop and last is not None:
        seam_crop(last[0], core, args.seam_crop, last[1])
        print(f"\nseam crop: {args.seam_crop}")


if __name__ == "__main__":
    main()
