"""The feed-forward engine: the network per frame size and runtime, its flicker with and without
flow blending, a render's stages end to end, the command as a user times it, and how many Gatys
iterations ``hybrid`` needs to reach the style loss plain ``gatys`` reaches at its full count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, inner, whole
from benchmarks.scenarios.common import config, median, model, upscaled

# name: (fast.runtime, torch device, TorchGraph options)
RUNTIMES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "onnxruntime": ("onnxruntime", "cpu", {}),
    "compiled": ("compiled", "cpu", {}),
    "torch-cpu": ("torch", "cpu", {}),
    "torch-cuda": ("torch", "cuda", {}),
    "torch-cuda-eager": ("torch", "cuda", {"graphs": False}),
    "torch-cuda-ops": ("torch", "cuda", {"fused_quant": False}),
    "torch-cuda-fp16": ("torch", "cuda", {"dtype": "float16"}),
    "torch-cuda-bf16": ("torch", "cuda", {"dtype": "bfloat16"}),
}


def at_size(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` with its longer side at ``size`` (area-averaged down, bicubic up)."""
    import cv2

    h, w = frame.shape[:2]
    th, tw = round(h * size / max(h, w)), round(w * size / max(h, w))
    return cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA if size <= max(h, w) else cv2.INTER_CUBIC)


def runtime_stylizer(name: str, style: np.ndarray) -> Any:
    """A FastStylizer on one of RUNTIMES (the torch variants swap in their own TorchGraph)."""
    import torch

    from videostyle.assets import model_bytes
    from videostyle.fast.network import FastStylizer
    from videostyle.fast.onnx_torch import TorchGraph

    runtime, dev, opts = RUNTIMES[name]
    f = FastStylizer(dev if runtime == "torch" else "cpu", runtime=runtime)
    if opts:
        opts = {k: getattr(torch, v) if k == "dtype" else v for k, v in opts.items()}
        f.transform = TorchGraph(model_bytes("arbitrary_transform.onnx"), f.torch_device, **opts)
    f.set_styles([style])
    return f


def _first(ctx: Context) -> tuple[np.ndarray, np.ndarray, Path, Path]:
    from videostyle.io.images import read_image
    from videostyle.io.media import read_frames

    clip, style = ctx.media()
    return next(read_frames(clip)).image, read_image(style), clip, style


def runtimes(ctx: Context) -> list[Row]:
    """The network alone per runtime and size (a numpy frame in and out, host transfers included)
    and how far its frames are from onnxruntime's on the CPU."""
    import torch

    frame, style, _, _ = _first(ctx)
    names = [n for n in ctx.pick(list(RUNTIMES), ["onnxruntime", "torch-cpu"])
             if (RUNTIMES[n][1] != "cuda" or torch.cuda.is_available()) and n != "compiled"]
    engines = {n: runtime_stylizer(n, style) for n in names}
    rows: list[Row] = []
    for size in ctx.pick((640, 1280, 1920), (64,)):
        img = at_size(frame, size)
        ref = engines["onnxruntime"].stylize(img)
        for n in names:
            t = inner(lambda: engines[n].stylize(img), ctx.seconds(2.0)).median
            d = np.abs(engines[n].stylize(img) - ref) * 255
            rows.append({"size": f"{img.shape[1]}x{img.shape[0]}", "runtime": n, "ms": t * 1e3, "fps": 1 / t,
                         "mean": float(d.mean()), "p99": float(np.percentile(d, 99))})
    return rows


def speed(ctx: Context) -> list[Row]:
    """The network per frame, whole and in tiles, at three sizes."""
    from videostyle.fast.network import FastStylizer

    frame, style, _, _ = _first(ctx)
    rows: list[Row] = []
    modes = {m: FastStylizer("auto" if ctx.device == "cpu" else ctx.device, tiling=m,
                             runtime="auto" if m == "whole" else "onnxruntime") for m in ("whole", "tiles")}
    for f in modes.values():
        f.set_styles([style])
    for size in ctx.pick((256, 512, 1080), (64,)):
        img = at_size(frame, size)
        for mode, f in modes.items():
            t = inner(lambda: f.stylize(img), ctx.seconds(2.0)).median
            rows.append({"engine": f"fast ({mode}, {f.provider})", "size": f"{img.shape[1]}x{img.shape[0]}",
                         "ms": t * 1e3, "fps": 1 / t})
    return rows


def flicker(ctx: Context) -> list[Row]:
    from videostyle.engines import render_spec
    from videostyle.io.media import Span
    from videostyle.metrics import temporal_error
    from videostyle.render.pipeline import render_video

    clip, style = ctx.media()
    frames, rows = ctx.pick(48, 3), []
    for blend in ctx.pick((0.0, 0.6, 0.8), (0.0, 0.6)):
        cfg = config(ctx, style, fast__method="fast", optim__size=ctx.pick(256, 64), render__max_frames=frames,
                     fast__blend=blend, encode__crf=12, render__device="auto" if ctx.device == "cpu" else ctx.device)
        out = ctx.work / f"blend{blend}.mkv"
        res = render_video(clip, out, render_spec(cfg), overwrite=True)
        rep = temporal_error(out, clip, gaps=(1, 4), span=Span(max_frames=frames))
        rows.append({"video": "no blending" if blend == 0 else f"flow blending {blend}", "error": rep.error[1],
                     "long": rep.error[4], "spf": median(res.frame_seconds)})
    return rows


LABELS = {"lite": "lite: Farneback, half size, one way", "flow": "Farneback, full size, both ways",
          "dis": "DIS, full size", "dis-half": "DIS, half size"}


def stages(ctx: Context) -> list[Row]:
    """End to end per stage at each size and blend flow (``FLOW:BLEND`` for another fast.blend):
    decode, flow and the network run on their own threads, so they overlap. The temporal error is
    eval's (Farneback at full size, both ways, which favours blends on that flow) and DIS's."""
    from videostyle.engines import render_spec
    from videostyle.io.media import Span
    from videostyle.metrics import temporal_error
    from videostyle.render.pipeline import render_video
    from videostyle.temporal.flow import FlowParams

    clip, style = ctx.media()
    frames, rows = ctx.pick(48, 2), []
    for size in ctx.pick((640, 1280, 1920) if ctx.device != "cpu" else (640, 1280), (64,)):
        src = upscaled(clip, size, frames, ctx.work) if size > 640 else clip
        for entry in ctx.pick(("lite", "flow:0.6", "flow", "dis-half"), ("lite",)):
            flow, _, weight = entry.partition(":")
            cfg = config(ctx, style, fast__method="fast", optim__size=size, render__max_frames=frames, fast__flow=flow,
                         render__device="auto" if ctx.device == "cpu" else ctx.device,
                         **({"fast__blend": float(weight)} if weight else {}))
            out = ctx.work / f"s{size}_{flow}_{weight}.mkv"
            res = render_video(src, out, render_spec(cfg), overwrite=True)
            s, n, span = res.stages, res.frames, Span(max_frames=frames)
            rows.append({"size": size, "flow": LABELS[flow], "blend": cfg.fast.blend, "decode": 1e3 * s.decode / n,
                         "flowms": 1e3 * s.flow / n, "model": 1e3 * s.model / n, "blendms": 1e3 * s.blend / n,
                         "encode": 1e3 * s.encode / n, "fps": n / res.seconds,
                         "error": temporal_error(out, src, span=span).error[1],
                         "dis": temporal_error(out, src, span=span, params=FlowParams(method="dis")).error[1]})
    return rows


def command(ctx: Context) -> list[Row]:
    """The command a user types, in a new process, timed as they would time it (start-up and the
    audio's muxing included): ``videostyle render CLIP --style S --method fast --size N --duration
    T`` per runtime, and a short Gatys render. Run from a checkout of each of two commits (``git
    worktree``) and ``compare`` the two JSON files to compare the commits."""
    from videostyle.io.media import Span, probe, read_frames
    from videostyle.metrics import temporal_error

    clip, style = ctx.media()
    seconds, rows = ctx.pick(5.0, 0.2), []
    runs = [(size, rt, ["--method", "fast", "--size", str(size), "--duration", str(seconds), "--fast-runtime", rt])
            for size in ctx.pick((640, 1280), ()) for rt in ("onnxruntime", "compiled")]
    runs.append((ctx.pick(128, 64), "gatys", ["--size", str(ctx.pick(128, 64)), "--duration", str(seconds),
                                              "--iterations", str(ctx.pick(40, 2)), "--iterations-later",
                                              str(ctx.pick(10, 1)), "--settle", "0", "--restart",
                                              *ctx.pick([], ["--model", "random"])]))
    base: dict[int, float] = {}
    for size, rt, extra in runs:
        src = upscaled(clip, size, round(seconds * float(probe(clip).fps)) + 2, ctx.work) if size > 640 else clip
        out = ctx.work / f"c{size}_{rt}.mp4"
        cmd = [sys.executable, "-m", "videostyle", "render", str(src), "--style", str(style), "-o", str(out), "-y", "-q",
               *extra]
        if not ctx.smoke:
            subprocess.run(cmd, check=True)  # (untimed: a compiled runtime's package is built once, here)
        t = whole(lambda: subprocess.run(cmd, check=True), ctx.pick(5, 1))
        n = sum(1 for _ in read_frames(out))
        base.setdefault(size, n / t.median)
        rows.append({"size": size, "runtime": rt, "frames": n, "s": t.median, "iqr": t.iqr, "fps": n / t.median,
                     "vs": n / t.median / base[size],
                     "error": temporal_error(out, src, span=Span(duration=seconds)).error[1]})
    return rows


def hybrid(ctx: Context) -> list[Row]:
    """Iterations from the fast engine's frame to the style loss Gatys reaches from the content."""
    import cv2

    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.fast.network import FastStylizer
    from videostyle.io.images import fit_size, read_image

    from benchmarks.media import SHARED

    _, style, _, _ = _first(ctx)
    photo = SHARED / "content" / "astronaut.png"
    content = read_image(photo) if photo.exists() and not ctx.smoke else _first(ctx)[0]
    size, iterations, name = ctx.pick(256, 64), ctx.pick(100, 3), model(ctx)
    st = new_stylizer(apply(Config(), {"model.name": name, "optim.size": size, "optim.iterations": iterations}))
    st.set_styles([style])
    h, w = fit_size(*content.shape[:2], size)
    img = cv2.resize(content, (w, h), interpolation=cv2.INTER_AREA)
    curve: list[float] = []
    st.stylize(img, "content", iterations=iterations, callback=lambda it: curve.append(it.losses["style"]))
    fast = FastStylizer("auto")
    fast.set_styles([style])
    hcurve: list[float] = []
    st.stylize(img, fast.stylize(img), iterations=iterations, callback=lambda it: hcurve.append(it.losses["style"]))
    reached = next((i + 1 for i, v in enumerate(hcurve) if v <= curve[-1]), None)
    return [{"engine": "gatys from content", "its": f"{iterations} (by definition)", "first": curve[0],
             "weights": f"{name}, {w}x{h}"},
            {"engine": "hybrid (fast init)", "its": reached or f"not within {iterations}", "first": hcurve[0],
             "weights": f"{name}, {w}x{h}"}]


SCENARIOS = [
    Scenario("fast-runtimes", "The fast engine's network per runtime and frame size",
             (Column("size", "size"), Column("runtime", "runtime"), Column("ms", "ms/frame (median)", "{:.1f}"),
              Column("fps", "fps", "{:.1f}"), Column("mean", "mean diff vs onnxruntime (/255)", "{:.2f}"),
              Column("p99", "p99 diff (/255)", "{:.1f}")),
             runtimes, "A numpy frame in and out, host transfers included; CUDA runtimes where a GPU is."),
    Scenario("fast-speed", "The fast engine's network per frame, whole and in tiles",
             (Column("engine", "engine"), Column("size", "size"), Column("ms", "ms/frame (median)", "{:.0f}"),
              Column("fps", "fps", "{:.1f}")), speed, "The shared clip's first frame at each size."),
    Scenario("fast-flicker", "The fast engine's flicker with and without flow blending",
             (Column("video", "fast video"), Column("error", "temporal error", "{:.5f}"),
              Column("long", "long-term (gap 4)", "{:.5f}"), Column("spf", "s/frame (median)", "{:.3f}")),
             flicker, "48 frames at 256 px."),
    Scenario("fast-stages", "A fast render's stages end to end, per size and blend flow",
             (Column("size", "size"), Column("flow", "blend flow"), Column("blend", "fast.blend"),
              Column("decode", "decode ms/f", "{:.1f}"), Column("flowms", "flow ms/f", "{:.1f}"),
              Column("model", "model ms/f", "{:.1f}"), Column("blendms", "blend ms/f", "{:.1f}"),
              Column("encode", "encode ms/f", "{:.1f}"), Column("fps", "fps end to end", "{:.1f}"),
              Column("error", "temporal error (eval)", "{:.5f}"), Column("dis", "temporal error (DIS judge)", "{:.5f}")),
             stages, "48 frames of the shared clip (scaled up past 640 px: speed only), the auto runtime."),
    Scenario("command", "The render command as a user times it",
             (Column("size", "size"), Column("runtime", "fast.runtime (or gatys)"), Column("frames", "frames"),
              Column("s", "s (median)", "{:.1f}"), Column("iqr", "IQR s", "{:.2f}"),
              Column("fps", "fps end to end", "{:.2f}"), Column("vs", "x the first at its size", "{:.2f}"),
              Column("error", "temporal error (eval)", "{:.5f}")),
             command, "videostyle render CLIP --style S --method fast --size N --duration 5 in a new process, and "
                      "a Gatys render at 128 px (40/10 iterations, no settle pass), 5 runs each after an untimed one."),
    Scenario("fast-hybrid", "Gatys iterations from the fast engine's frame (hybrid) to plain Gatys's style loss",
             (Column("engine", "engine"), Column("weights", "weights, size"),
              Column("its", "iterations to gatys' final style loss"), Column("first", "style loss at 0 its", "{:.4g}")),
             hybrid, "The shared astronaut photo at 256 px, 100 iterations."),
]
