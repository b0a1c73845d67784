#!/usr/bin/env python
"""End-to-end render speed on a real clip, against the per-iteration floor of the same device.

For each variant (flow method, overlap on/off) it renders the clip and prints per-stage time per
frame (decode, flow, stylize, encode, all run on their threads when overlapped), the stylizer's
busy fraction (stylize time / wall time), iterations per later frame, seconds per later frame
(median), peak RSS and peak GPU memory, the per-iteration time against the floor (VGG-19
forward + input-gradient backward at the same size and precision, measured here in the same
run), and the temporal error of each render (Farneback flow for the measure, so flow methods
compare fairly).

    python scripts/bench.py                       # CPU: 256 px
    python scripts/bench.py --device cuda         # CUDA: 512 and 1080 px
    python scripts/bench.py --config configs/preview.yaml --frames 24
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stylizer import LAYERS, time_iteration  # noqa: E402
from benchlib import media_parser  # noqa: E402

from videostyle.config import Config, apply, load  # noqa: E402
from videostyle.features import VGGFeatures, random_init  # noqa: E402
from videostyle.media import probe  # noqa: E402
from videostyle.metrics import temporal_error  # noqa: E402
from videostyle.pipeline import render_video  # noqa: E402
from videostyle.stylize import Stylizer, fit_size, resolve_precision  # noqa: E402


def floor_ms(size_hw: tuple[int, int], device: torch.device, dtype: torch.dtype | None, channels_last: bool) -> float:
    """Median ms of one VGG forward+backward at (H, W); time_iteration takes a square, so use
    the same pixel count (conv cost is linear in pixels)."""
    side = int(round((size_hw[0] * size_hw[1]) ** 0.5))
    model = random_init(VGGFeatures(LAYERS), 0).freeze()
    return 1e3 * time_iteration(model, side, dtype, channels_last, device, repeats=5, warmup=2)


def main() -> None:
    ap = media_parser(__doc__, frames=12, size=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 256 on CPU, 512 1080 on CUDA")
    ap.add_argument("--config", type=Path, help="preset to measure (default: the built-in defaults)")
    ap.add_argument("--model", default="random")
    ap.add_argument("--variants", default="farneback,dis,farneback-inline",
                    help="comma list of farneback, dis, farneback-inline (overlap off)")
    args = ap.parse_args()
    device = torch.device(args.device)
    sizes = args.sizes or ([args.size] if args.size else [256] if device.type == "cpu" else [512, 1080])
    base = load(args.config) if args.config else Config()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {args.clip.name}, {args.frames} frames, model {args.model}, preset {args.config or 'defaults'} "
          f"(iterations {base.optim.iterations}/{base.optim.iterations_later}), device {name}, torch {torch.__version__}")
    print("| size | variant | decode ms/f | flow ms/f | stylize s/f | encode ms/f | busy | iters/later frame "
          "| s/later frame | ms/iter | floor ms/iter | ratio | temporal err | peak RSS MB | peak GPU MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    stylizer = None
    info = probe(args.clip)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            hw = fit_size(info.height, info.width, size)
            floors: dict[Any, float] = {}  # the floor per (precision, channels_last), measured once per size
            for variant in args.variants.split(","):
                method = "dis" if variant.startswith("dis") else "farneback"
                cfg = apply(base, {"model.name": args.model, "style.images": [str(args.style)], "optim.size": size,
                                   "render.max_frames": args.frames, "render.device": str(device),
                                   "flow.method": method, "render.stage_threads": not variant.endswith("inline")})
                if stylizer is None:
                    stylizer = Stylizer(cfg)
                stylizer.cfg = cfg
                stylizer._targets.clear()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                out = Path(tmp) / f"{size}_{variant}.mp4"
                res = render_video(args.clip, out, cfg, stylizer=stylizer)
                s, n = res.stages, res.frames
                later_secs = res.frame_seconds[1:] or res.frame_seconds
                later_iters = res.iterations[1:] or res.iterations
                ms_iter = 1e3 * s.stylize / max(sum(res.iterations), 1)
                dtype = resolve_precision(cfg.render.precision, device, hw[0] * hw[1])
                key = (dtype, cfg.render.channels_last)
                if key not in floors:
                    floors[key] = floor_ms(hw, device, dtype, cfg.render.channels_last)
                floor = floors[key]
                te = temporal_error(out, args.clip, max_frames=args.frames).error[1]
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                print(f"| {size} | {variant} | {1e3 * s.decode / n:.1f} | {1e3 * s.flow / n:.1f} | {s.stylize / n:.2f} | "
                      f"{1e3 * s.encode / n:.1f} | {s.stylize / res.seconds:.0%} | {statistics.median(later_iters):g} "
                      f"(min {min(later_iters)}, max {max(later_iters)}) | {statistics.median(later_secs):.2f} | "
                      f"{ms_iter:.1f} | {floor:.1f} | {ms_iter / floor:.2f}x | {te:.5f} | {rss:.0f} | {gpu:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
