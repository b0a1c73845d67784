#!/usr/bin/env python
"""The feed-forward engine: speed, flicker with and without flow blending, and how many Gatys
iterations `hybrid` needs to reach the style loss that plain `gatys` reaches at its full count.

    python scripts/bench_fast.py [--clip ...] [--style ...] [--frames 48] [--model auto]
    python scripts/bench_fast.py --docs docs/   # also write the README's pictures
    python scripts/bench_fast.py --tables stages --frames 120   # per stage, 640x360 and 1280x720
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.fast.network import FastStylizer
from videostyle.temporal.flow import FlowParams
from videostyle.io.images import fit_size, read_image, to_uint8, write_image
from videostyle.io.media import Span, probe, read_frames
from videostyle.metrics import temporal_error
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import MEDIA, media_parser, resolve_model  # noqa: E402


def at_size(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` with its longer side at ``size`` (area-averaged down, bicubic up)."""
    h, w = frame.shape[:2]
    th, tw = round(h * size / max(h, w)), round(w * size / max(h, w))
    return cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA if size <= max(h, w) else cv2.INTER_CUBIC)


def timed(f: FastStylizer, img: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    """The stylized frame (a first, untimed call) and the median seconds of ``repeats`` more."""
    out = f.stylize(img)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f.stylize(img)
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def speed_table(fast_by_mode: dict[str, FastStylizer], clip: Path, repeats: int) -> None:
    frame = next(read_frames(clip)).image
    print("| engine | size | ms/frame (median) | fps |")
    print("| --- | --- | --- | --- |")
    for size in (256, 512, 1080):
        img = at_size(frame, size)
        th, tw = img.shape[:2]
        for mode, f in fast_by_mode.items():
            med = timed(f, img, repeats)[1]
            print(f"| fast ({mode}) | {tw}x{th} | {med * 1e3:.0f} | {1 / med:.1f} |", flush=True)


RUNTIMES = {
    # name: (fast.runtime, torch device, TorchGraph options)
    "onnxruntime": ("onnxruntime", "cpu", {}),
    "compiled": ("compiled", "cpu", {}),
    "torch-cpu": ("torch", "cpu", {}),
    "torch-cuda": ("torch", "cuda", {}),
    "torch-cuda-eager": ("torch", "cuda", {"graphs": False}),
    "torch-cuda-ops": ("torch", "cuda", {"fused_quant": False}),
    "torch-cuda-fp16": ("torch", "cuda", {"dtype": "float16"}),
    "torch-cuda-bf16": ("torch", "cuda", {"dtype": "bfloat16"}),
}


def runtime_stylizer(name: str, style: np.ndarray) -> FastStylizer:
    """A FastStylizer on one of RUNTIMES (the torch variants swap in their own TorchGraph)."""
    import torch

    from videostyle.assets import model_bytes
    from videostyle.fast.onnx_torch import TorchGraph

    runtime, dev, opts = RUNTIMES[name]
    f = FastStylizer(dev if runtime == "torch" else "cpu", runtime=runtime)
    if opts:
        opts = {k: getattr(torch, v) if k == "dtype" else v for k, v in opts.items()}
        f.transform = TorchGraph(model_bytes("arbitrary_transform.onnx"), f.torch_device, **opts)
    f.set_styles([style])
    return f


def runtimes_table(clip: Path, style: np.ndarray, names: list[str], sizes: list[int], repeats: int,
                   images: Path | None = None) -> None:
    """The network alone per runtime and frame size: ms/frame (numpy frame in, numpy frame out,
    host transfers included) and how far its frames are from onnxruntime's on the CPU (mean and
    99th percentile of |difference|, in 1/255). ``images``: a folder for each size's frames side
    by side, onnxruntime's first."""
    import torch

    frame = next(read_frames(clip)).image
    avail = [n for n in names if RUNTIMES[n][1] != "cuda" or torch.cuda.is_available()]
    skipped = sorted(set(names) - set(avail))
    if skipped:
        print(f"# skipped (no CUDA): {', '.join(skipped)}")
    engines = {n: runtime_stylizer(n, style) for n in ["onnxruntime", *avail] if n in RUNTIMES}
    print("| size | runtime | ms/frame (median) | fps | mean diff vs onnxruntime (/255) | p99 diff (/255) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        img = at_size(frame, size)
        th, tw = img.shape[:2]
        ref = engines["onnxruntime"].stylize(img)
        row = []
        for n in avail:
            out, med = timed(engines[n], img, repeats)
            d = np.abs(out - ref) * 255
            print(f"| {tw}x{th} | {n} | {med * 1e3:.1f} | {1 / med:.1f} | {d.mean():.2f} | {np.percentile(d, 99):.1f} |",
                  flush=True)
            row.append(out)
        if images is not None and size <= 640:
            images.mkdir(parents=True, exist_ok=True)
            write_image(images / f"runtimes_{tw}x{th}.png", to_uint8(np.concatenate(row, 1)))


def cli_table(clip: Path, style: Path, seconds: float, sizes: list[int], runtimes: list[str], repeats: int) -> None:
    """The command a user types, timed as they would time it: ``videostyle render CLIP --style S
    --method fast --size N --duration SECONDS`` in a new process, start-up and the muxing of the
    audio included; the runtimes take turns, ``repeats`` times, and the table gives the median
    with the slowest and fastest run, the ratio to the first runtime, and the temporal error of
    the last output by videostyle eval."""
    import subprocess

    from bench import upscaled

    print(f"| size | fast.runtime | frames | s (median of {repeats}) | fps end to end (median) | slowest - fastest fps "
          f"| x the {runtimes[0]} median | temporal error (eval) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            src = clip
            if size > 640:  # a stand-in source at the size (the renderer never upscales)
                src = upscaled(clip, size, round(seconds * float(probe(clip).fps)) + 2, Path(tmp))
            walls: dict[str, list[float]] = {r: [] for r in runtimes}
            frames: dict[str, int] = {}
            for _ in range(repeats):
                for rt in runtimes:
                    out = Path(tmp) / f"c{size}_{rt}.mp4"
                    cmd = [sys.executable, "-m", "videostyle", "render", str(src), "--style", str(style), "--method",
                           "fast", "--size", str(size), "--duration", str(seconds), "-o", str(out), "-y", "-q",
                           "--fast-runtime", rt]
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True)
                    walls[rt].append(time.perf_counter() - t0)
                    frames[rt] = sum(1 for _ in read_frames(out))
            base = frames[runtimes[0]] / statistics.median(walls[runtimes[0]])
            for rt in runtimes:
                n, med = frames[rt], statistics.median(walls[rt])
                err = temporal_error(Path(tmp) / f"c{size}_{rt}.mp4", src, span=Span(duration=seconds)).error[1]
                print(f"| {size} | {rt} | {n} | {med:.1f} | {n / med:.2f} | {n / max(walls[rt]):.2f} - "
                      f"{n / min(walls[rt]):.2f} | {n / med / base:.2f} | {err:.5f} |", flush=True)


def flicker_table(clip: Path, style: Path, frames: int, size: int) -> None:
    print("| fast video | temporal error | long-term (gap 4) | s/frame (median) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for blend in (0.0, 0.6, 0.8):
            cfg = apply(Config(), {"fast.method": "fast", "style.images": [str(style)], "optim.size": size,
                                   "render.max_frames": frames, "fast.blend": blend, "encode.crf": 12})
            out = Path(tmp) / f"b{blend}.mkv"
            res = render_video(clip, out, render_spec(cfg))
            rep = temporal_error(out, clip, gaps=(1, 4), span=Span(max_frames=frames))
            label = "no blending" if blend == 0 else f"flow blending {blend}"
            print(f"| {label} | {rep.error[1]:.5f} | {rep.error[4]:.5f} | {statistics.median(res.frame_seconds):.3f} |",
                  flush=True)


def render_table(clip: Path, style: Path, frames: int, sizes: list[int], device: str, runtime: str = "auto") -> None:
    """End to end: decode, the fast engine with flow blending, encode, over the clip (scaled up
    for sizes past its own, as bench.py does)."""
    from bench import upscaled

    print("| fast render | frames | fps end to end | s/frame (median) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            src = upscaled(clip, size, frames, Path(tmp)) if size > 640 else clip
            cfg = apply(Config(), {"fast.method": "fast", "style.images": [str(style)], "optim.size": size,
                                   "render.max_frames": frames, "render.device": device, "fast.runtime": runtime})
            res = render_video(src, Path(tmp) / f"r{size}.mkv", render_spec(cfg))
            print(f"| {size} px | {res.frames} | {res.frames / res.seconds:.1f} | "
                  f"{statistics.median(res.frame_seconds):.3f} |", flush=True)


def stages_table(clip: Path, style: Path, frames: int, sizes: list[int], device: str,
                 flows: list[str], runtime: str = "auto", preset: str | None = None) -> None:
    """End to end per stage at each size and blend flow (``fast.flow``, ``FLOW:BLEND`` for
    another fast.blend): ms/frame of decoding, flow, the network, the blend and encoding
    (decode, flow and the network run on their own threads, so they overlap), the render's
    frames/s and its temporal error: videostyle eval's measure (Farneback at full size, both
    ways, which favours blends that use that same flow) and the same with DIS's flow."""
    from bench import upscaled

    print(f"# encode preset: {preset or Config().encode.preset}")
    print("| size | blend flow | fast.blend | decode ms/f | flow ms/f | model ms/f | blend ms/f | encode ms/f "
          "| fps end to end | temporal error (eval) | temporal error (DIS judge) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    labels = {"lite": "lite: Farneback, half size, one way", "flow": "Farneback, full size, both ways",
              "dis": "DIS, full size", "dis-half": "DIS, half size"}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            src = upscaled(clip, size, frames, Path(tmp)) if size > 640 else clip
            for entry in flows:
                flow, _, weight = entry.partition(":")
                over = {"fast.blend": float(weight)} if weight else {}
                cfg = apply(Config(), {"fast.method": "fast", "style.images": [str(style)], "optim.size": size,
                                       "render.max_frames": frames, "render.device": device, "fast.flow": flow,
                                       "fast.runtime": runtime, **over,
                                       **({"encode.preset": preset} if preset else {})})
                out = Path(tmp) / f"s{size}_{flow}_{weight}.mkv"
                res = render_video(src, out, render_spec(cfg))
                s, n = res.stages, res.frames
                span = Span(max_frames=frames)
                err = temporal_error(out, src, span=span).error[1]
                dis = temporal_error(out, src, span=span, params=FlowParams(method="dis")).error[1]
                print(f"| {size} | {labels[flow]} | {cfg.fast.blend} | {1e3 * s.decode / n:.1f} | {1e3 * s.flow / n:.1f} "
                      f"| {1e3 * s.model / n:.1f} | {1e3 * s.blend / n:.1f} | {1e3 * s.encode / n:.1f} "
                      f"| {n / res.seconds:.1f} | {err:.5f} | {dis:.5f} |", flush=True)


def hybrid_table(content: np.ndarray, style: np.ndarray, model: str, size: int, iterations: int,
                 fast: FastStylizer) -> None:
    cfg = apply(Config(), {"model.name": model, "optim.size": size, "optim.iterations": iterations})
    st = new_stylizer(cfg)
    st.set_styles([style])
    h, w = fit_size(*content.shape[:2], size)
    img = cv2.resize(content, (w, h), interpolation=cv2.INTER_AREA)
    curve: list[float] = []
    t0 = time.perf_counter()
    st.stylize(img, "content", iterations=iterations, callback=lambda it: curve.append(it.losses["style"]))
    t_gatys = time.perf_counter() - t0
    target = curve[-1]
    fast.set_styles([style])
    t0 = time.perf_counter()
    init = fast.stylize(img)
    hcurve: list[float] = []
    st.stylize(img, init, iterations=iterations, callback=lambda it: hcurve.append(it.losses["style"]))
    reached = next((i + 1 for i, v in enumerate(hcurve) if v <= target), None)
    t_fast = time.perf_counter() - t0
    print(f"| engine | iterations to reach gatys' final style loss ({model} weights, {w}x{h}) | style loss at 0 its |")
    print("| --- | --- | --- |")
    print(f"| gatys from content | {iterations} (by definition) | {curve[0]:.4g} |")
    print(f"| hybrid (fast init) | {reached if reached else f'not within {iterations}'} | {hcurve[0]:.4g} |")
    print(f"\n(gatys {iterations} iterations: {t_gatys:.1f} s; fast init + {iterations} iterations: {t_fast:.1f} s)")


def docs(out_dir: Path, content: np.ndarray, style: np.ndarray, clip: Path, fast: FastStylizer) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.set_styles([style])
    h = 256

    def fit(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (round(img.shape[1] * h / img.shape[0]), h), interpolation=cv2.INTER_AREA)

    result = to_uint8(fast.stylize(cv2.resize(content, (512, round(512 * content.shape[0] / content.shape[1])))))
    row = np.concatenate([fit(content), np.full((h, 8, 3), 255, np.uint8), fit(style),
                          np.full((h, 8, 3), 255, np.uint8), fit(result)], axis=1)
    write_image(out_dir / "before_after.jpg", row)
    frames = [fr.image for i, fr in zip(range(97), read_frames(clip)) if i % 24 == 0][:4]
    strip_src = np.concatenate([fit(f)[:, :, :] for f in frames], axis=1)
    stylized = [to_uint8(fast.stylize(cv2.resize(f, (384, round(384 * f.shape[0] / f.shape[1]))))) for f in frames]
    strip_out = np.concatenate([fit(f) for f in stylized], axis=1)
    strip = np.concatenate([strip_src, np.full((8, strip_src.shape[1], 3), 255, np.uint8), strip_out], axis=0)
    scale = 1024 / strip.shape[1]
    write_image(out_dir / "clip_strip.jpg", cv2.resize(strip, (1024, round(strip.shape[0] * scale)),
                                                       interpolation=cv2.INTER_AREA))
    print(f"\nwrote {out_dir / 'before_after.jpg'} and {out_dir / 'clip_strip.jpg'}")


def main() -> None:
    ap = media_parser(__doc__, frames=48, size=256)
    ap.add_argument("--content", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--docs", type=Path, help="write the README pictures into this folder")
    ap.add_argument("--tables", default="speed,flicker,hybrid",
                    help="comma list of speed, flicker, hybrid, render (end to end at --render-sizes), stages "
                         "(per stage and blend flow at --stage-sizes), runtimes (the network per --runtimes "
                         "at --runtime-sizes), cli (the render command per --cli-runtimes at --cli-sizes, "
                         "timed from outside, --repeats times each)")
    ap.add_argument("--render-sizes", type=int, nargs="+", default=[1080])
    ap.add_argument("--stage-sizes", type=int, nargs="+", default=[640, 1280])
    ap.add_argument("--stage-flows", default="lite,flow:0.6,flow,dis-half",
                    help="comma list of fast.flow values, FLOW:BLEND for another fast.blend")
    ap.add_argument("--runtime", default="auto", help="fast.runtime of the render and stages tables")
    ap.add_argument("--runtimes", default="onnxruntime,torch-cpu,torch-cuda",
                    help=f"comma list for the runtimes table, of: {', '.join(RUNTIMES)}")
    ap.add_argument("--runtime-sizes", type=int, nargs="+", default=[640, 1280, 1920])
    ap.add_argument("--runtime-images", type=Path, help="write each size's frames per runtime side by side here")
    ap.add_argument("--preset", help="encode.preset of the render and stages tables (default: the config's)")
    ap.add_argument("--cli-sizes", type=int, nargs="+", default=[640, 1280])
    ap.add_argument("--cli-runtimes", default="onnxruntime,compiled", help="comma list of fast.runtime values")
    ap.add_argument("--cli-seconds", type=float, default=5.0, help="--duration of the cli table's renders")
    args = ap.parse_args()
    tables = set(args.tables.split(","))
    model = resolve_model(args.model)
    style = read_image(args.style)
    content = read_image(args.content) if "hybrid" in tables or args.docs else style
    if "cli" in tables:  # first, before this process's engines take memory and threads
        cli_table(args.clip, args.style, args.cli_seconds, args.cli_sizes, args.cli_runtimes.split(","),
                  args.repeats)
        print()
    modes = {m: FastStylizer(args.device, tiling=m, runtime=args.runtime if m == "whole" else "onnxruntime")
             for m in ("whole", "tiles")}
    for f in modes.values():
        f.set_styles([style])
    print(f"# fast engine: {modes['whole'].provider}")
    if "runtimes" in tables:
        runtimes_table(args.clip, style, args.runtimes.split(","), args.runtime_sizes, args.repeats,
                       args.runtime_images)
        print()
    if "speed" in tables:
        speed_table(modes, args.clip, args.repeats)
        print()
    if "flicker" in tables:
        flicker_table(args.clip, args.style, args.frames, args.size)
        print()
    if "render" in tables:
        render_table(args.clip, args.style, args.frames, args.render_sizes, args.device, args.runtime)
        print()
    if "stages" in tables:
        stages_table(args.clip, args.style, args.frames, args.stage_sizes, args.device, args.stage_flows.split(","),
                     args.runtime, args.preset)
        print()
    if "hybrid" in tables:
        hybrid_table(content, style, model, args.size, args.iterations, modes["whole"])
    if args.docs:
        docs(args.docs, content, style, args.clip, modes["whole"])


if __name__ == "__main__":
    main()
