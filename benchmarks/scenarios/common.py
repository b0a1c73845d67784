"""Pieces several scenarios share: the network a scenario renders with, a clip scaled up past
its own size, a render's config, and a call in a process of its own (its peak memory its own)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Context


def model(ctx: Context, name: str = "auto") -> str:
    """``auto``: the embedded VGG-19 when its weights are on this machine, else random weights
    (whose speed is the same); a smoke run always takes random weights."""
    from benchmarks.figures import resolve_model

    return "random" if ctx.smoke else resolve_model(name)


def config(ctx: Context, style: Path, **over: Any) -> Any:
    """The defaults with ``over`` (config keys with ``.`` written as ``__``), the style and device."""
    from videostyle.config import Config, apply

    return apply(Config(), {"style.images": [str(style)], "render.device": ctx.device,
                            **{k.replace("__", "."): v for k, v in over.items()}})


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def later(xs: Sequence[Any]) -> Sequence[Any]:
    """A render's per-frame values after frame 0 (frame 0's alone when there are no others)."""
    return xs[1:] or xs


def own_process(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a fresh process (spawned: nothing inherited), so that the peak resident
    memory it reports is its own."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def upscaled(clip: Path, long_side: int, frames: int, folder: Path) -> Path:
    """The first ``frames`` frames of ``clip`` scaled up to ``long_side`` (H.264, no audio), for
    sizes the clip is too small for (a render never enlarges). A stand-in for speed only: flow
    sees smoother, magnified motion than a real HD source has."""
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
