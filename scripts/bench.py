#!/usr/bin/env python
"""End-to-end render speed on a real clip, against the per-iteration floor of the same device.

For each variant (flow method, overlap on/off, optimiser, CUDA graphs) it renders the clip and prints per-stage time per
frame (decode, flow, stylize, encode, all run on their threads when overlapped), the stylizer's
busy fraction (stylize time / wall time), iterations per later frame, seconds per later frame
(median), peak RSS and peak GPU memory, the per-iteration time against the floor (the bare
network: torchvision's VGG-19 layers to relu5_1, channels_last, forward + input-gradient
backward at the same size and precision, no loss terms, measured here in the same run; what
each part of an iteration adds is the ``iteration`` benchmark's table (``python -m benchmarks run iteration``)), and the temporal error of each render (Farneback flow for the measure, so flow methods
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

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from benchmarks.scenarios.iteration import net_and_grams  # noqa: E402
from benchlib import media_parser  # noqa: E402

from videostyle.engines import new_stylizer, configure  # noqa: E402
from videostyle.config import Config, apply, load  # noqa: E402
from videostyle.io.media import Span, probe  # noqa: E402
from videostyle.metrics import temporal_error  # noqa: E402
from videostyle.render.pipeline import render_video  # noqa: E402
from videostyle.engines import render_spec  # noqa: E402
from videostyle.device import resolve_precision  # noqa: E402
from videostyle.io.images import fit_size  # noqa: E402


# Each variant's settings on top of the preset: flow method, stages overlapped or inline, and
# the optimiser (Adam eager, or replayed from a CUDA graph).
VARIANTS: dict[str, dict[str, Any]] = {
    "farneback": {"flow.method": "farneback"},
    "dis": {"flow.method": "dis"},
    "farneback-inline": {"flow.method": "farneback", "render.stage_threads": False},
    "farneback-w1": {"flow.method": "farneback", "flow.workers": 1},
    "farneback-w2": {"flow.method": "farneback", "flow.workers": 2},
    "farneback-w4": {"flow.method": "farneback", "flow.workers": 4},
    "adam": {"optim.optimizer": "adam"},
    "adam-graphs": {"optim.optimizer": "adam", "render.cuda_graphs": True},
}


def floor_ms(size_hw: tuple[int, int], device: torch.device, dtype: torch.dtype | None) -> float:
    """Median ms of the bare network at (H, W): torchvision's VGG-19 layers up to relu5_1,
    channels_last, forward plus the input's gradient, no loss terms (``benchmarks.scenarios.iteration``)."""
    return 1e3 * net_and_grams(size_hw, dtype, 2.0, device, grams=False)[0]


def upscaled(clip: Path, long_side: int, frames: int, folder: Path) -> Path:
    """The first ``frames`` frames of ``clip`` scaled up to ``long_side`` (H.264, no audio), for
    sizes the clip is too small for (the renderer never upscales). A stand-in for speed only:
    flow sees smoother, magnified motion than a real HD source has."""
    import av
    import cv2

    out = folder / f"{clip.stem}_{long_side}.mp4"
    if out.exists():
        return out
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        f = long_side / max(vin.width, vin.height)
        w, h = round(vin.width * f) // 2 * 2, round(vin.height * f) // 2 * 2
        vout = dst.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "16"}
        for i, frame in enumerate(src.decode(vin)):
            if i >= frames:
                break
            img = cv2.resize(frame.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_CUBIC)
            for packet in vout.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                dst.mux(packet)
        for packet in vout.encode(None):
            dst.mux(packet)
    return out


def main() -> None:
    ap = media_parser(__doc__, frames=12, size=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 256 on CPU, 512 1080 1920 on CUDA")
    ap.add_argument("--config", type=Path, help="preset to measure (default: the built-in defaults)")
    ap.add_argument("--model", default="random")
    ap.add_argument("--variants", default=None,
                    help="comma list of " + ", ".join(VARIANTS) + " (default: all; the graphs variant on CUDA only)")
    args = ap.parse_args()
    device = torch.device(args.device)
    variants = args.variants.split(",") if args.variants else [
        v for v in VARIANTS if device.type == "cuda" or not VARIANTS[v].get("render.cuda_graphs")]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    sizes = args.sizes or ([args.size] if args.size else [256] if device.type == "cpu" else [512, 1080, 1920])
    base = load(args.config) if args.config else Config()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {args.clip.name}, {args.frames} frames, model {args.model}, preset {args.config or 'defaults'} "
          f"(iterations {base.optim.iterations}/{base.optim.iterations_later}), device {name}, torch {torch.__version__}")
    print("| size | variant | decode ms/f | flow ms/f | stylize s/f | encode ms/f | busy | iters/later frame "
          "| s/later frame | ms/iter | floor ms/iter | ratio | temporal err | peak RSS MB | peak GPU MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    stylizer = None
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            clip = args.clip
            info = probe(clip)
            if size > max(info.width, info.height):
                clip = upscaled(clip, size, args.frames, Path(tmp))
                info = probe(clip)
                print(f"# {size}: {args.clip.name} scaled up to {info.width}x{info.height} (speed only)", flush=True)
            hw = fit_size(info.height, info.width, size)
            floors: dict[Any, float] = {}  # the floor per precision, measured once per size
            warm = False
            for variant in variants:
                cfg = apply(base, {"model.name": args.model, "style.images": [str(args.style)], "optim.size": size,
                                   "render.max_frames": args.frames, "render.device": str(device),
                                   **VARIANTS[variant]})
                if stylizer is None:
                    stylizer = new_stylizer(cfg)
                configure(stylizer, cfg)
                if device.type == "cuda" and not warm:
                    # Untimed: cuDNN's algorithm search at this size's shapes (seconds, and most
                    # of the device's memory at its peak) would otherwise land on the first variant.
                    render_video(clip, Path(tmp) / f"warm{size}.mp4", render_spec(apply(cfg, {"render.max_frames": 2})),
                                 stylizer=stylizer)
                    warm = True
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                out = Path(tmp) / f"{size}_{variant}.mp4"
                res = render_video(clip, out, render_spec(cfg), stylizer=stylizer)
                s, n = res.stages, res.frames
                later_secs = res.frame_seconds[1:] or res.frame_seconds
                later_iters = res.iterations[1:] or res.iterations
                ms_iter = 1e3 * s.stylize / max(sum(res.iterations), 1)
                dtype = resolve_precision(cfg.render.precision, device, hw[0] * hw[1])
                key = dtype
                if key not in floors:
                    floors[key] = floor_ms(hw, device, dtype)
                floor = floors[key]
                te = temporal_error(out, clip, span=Span(max_frames=args.frames)).error[1]
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                print(f"| {size} | {variant} | {1e3 * s.decode / n:.1f} | {1e3 * s.flow / n:.1f} | {s.stylize / n:.2f} | "
                      f"{1e3 * s.encode / n:.1f} | {s.stylize / res.seconds:.0%} | {statistics.median(later_iters):g} "
                      f"(min {min(later_iters)}, max {max(later_iters)}) | {statistics.median(later_secs):.2f} | "
                      f"{ms_iter:.1f} | {floor:.1f} | {ms_iter / floor:.2f}x | {te:.5f} | {rss:.0f} | {gpu:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
