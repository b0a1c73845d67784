"""Whole renders: speed per stage against the bare network, time and memory as a clip grows,
where the threads wait, and the later-frame schedules (coarse-to-fine, --consistency, warm
starts and temporal terms) with their temporal error."""

from __future__ import annotations

import collections
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Column, Context, Row, Scenario, peak_memory_mb
from benchmarks.scenarios.common import config, later, median, model, own_process, upscaled

# A render's settings on top of the defaults: flow method, stages overlapped or inline, the
# optimiser (Adam eager, or replayed from a CUDA graph).
VARIANTS: dict[str, dict[str, Any]] = {
    "farneback": {"flow.method": "farneback"},
    "dis": {"flow.method": "dis"},
    "farneback-inline": {"flow.method": "farneback", "render.stage_threads": False},
    "farneback-w1": {"flow.method": "farneback", "flow.workers": 1},
    "farneback-w2": {"flow.method": "farneback", "flow.workers": 2},
    "adam": {"optim.optimizer": "adam"},
    "adam-graphs": {"optim.optimizer": "adam", "render.cuda_graphs": True},
}


def _sizes(ctx: Context) -> tuple[int, ...]:
    return ctx.pick((256,) if ctx.device == "cpu" else (512, 1080, 1920), (64,))


def renders(ctx: Context) -> list[Row]:
    import torch

    from benchmarks.scenarios.iteration import net_and_grams
    from videostyle.config import apply
    from videostyle.device import resolve_device, resolve_precision
    from videostyle.engines import configure, new_stylizer, render_spec
    from videostyle.io.images import fit_size
    from videostyle.io.media import Span, probe
    from videostyle.metrics import temporal_error
    from videostyle.render.pipeline import render_video

    clip0, style = ctx.media()
    frames, device = ctx.pick(12, 2), resolve_device(ctx.device)
    wanted = ctx.options["variants"].split(",") if ctx.options.get("variants") else ctx.pick(list(VARIANTS),
                                                                                               ["farneback", "adam"])
    names = [v for v in wanted if device.type == "cuda" or "render.cuda_graphs" not in VARIANTS[v]]
    rows: list[Row] = []
    stylizer = None
    for size in _sizes(ctx):
        clip = clip0
        if size > max(probe(clip).width, probe(clip).height):
            clip = upscaled(clip0, size, frames, ctx.work)
        info = probe(clip)
        hw = fit_size(info.height, info.width, size)
        floors: dict[Any, float] = {}
        for i, name in enumerate(names):
            cfg = config(ctx, style, model__name=model(ctx), optim__size=size, render__max_frames=frames,
                         optim__iterations=ctx.pick(300, 3), optim__iterations_later=ctx.pick(20, 2))
            cfg = apply(cfg, VARIANTS[name])
            stylizer = stylizer or new_stylizer(cfg)
            configure(stylizer, cfg)
            if i == 0:  # (untimed: cuDNN's search and the style targets at this size)
                render_video(clip, ctx.work / "warm.mp4", render_spec(apply(cfg, {"render.max_frames": 2})),
                             stylizer=stylizer, overwrite=True)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            out = ctx.work / f"{size}_{name}.mp4"
            res = render_video(clip, out, render_spec(cfg), stylizer=stylizer, overwrite=True)
            s, n = res.stages, res.frames
            dtype = resolve_precision(cfg.render.precision, device, hw[0] * hw[1])
            if dtype not in floors:
                floors[dtype] = 1e3 * net_and_grams(hw, dtype, ctx.seconds(2.0), device, grams=False)[0]
            ms = 1e3 * s.stylize / max(sum(res.iterations), 1)
            its = later(res.iterations)
            rows.append({"size": size, "variant": name, "decode": 1e3 * s.decode / n, "flow": 1e3 * s.flow / n,
                         "stylize": s.stylize / n, "encode": 1e3 * s.encode / n, "busy": s.stylize / res.seconds,
                         "its": f"{median(its):g} ({min(its)}-{max(its)})", "later": median(later(res.frame_seconds)),
                         "ms": ms, "floor": floors[dtype], "ratio": ms / floors[dtype],
                         "error": temporal_error(out, clip, span=Span(max_frames=frames)).error[1],
                         **peak_memory_mb(ctx.device)})
    return rows


def _length_run(clip: Path, style: Path, frames: int, size: int, its: tuple[int, int], work: Path) -> Row:
    """One render of ``frames`` frames (in a process of its own: its peak memory is its own)."""
    from videostyle.config import Config, apply
    from videostyle.engines import render_spec
    from videostyle.render.pipeline import render_video

    cfg = apply(Config(), {"model.name": "random", "style.images": [str(style)], "optim.size": size,
                           "optim.iterations": its[0], "optim.iterations_later": its[1], "render.max_frames": frames})
    res = render_video(clip, work / f"length{frames}.mp4", render_spec(cfg), overwrite=True)
    s, n = res.stages, res.frames
    return {"frames": n, "decode": 1e3 * s.decode / n, "flow": 1e3 * s.flow / n, "stylize": 1e3 * s.stylize / n,
            "encode": 1e3 * s.encode / n, "total": res.seconds, "per": res.seconds / n,
            **peak_memory_mb("cpu")}


def lengths(ctx: Context) -> list[Row]:
    clip, style = ctx.media()
    short = ctx.pick(24, 2)
    # (a smoke run in this process: the tiles scenario runs one of its own)
    run = own_process if not ctx.smoke else (lambda fn, *a: fn(*a))
    rows = [run(_length_run, clip, style, n, ctx.pick(128, 64), ctx.pick((20, 5), (2, 1)), ctx.work)
            for n in (short, 4 * short)]
    a, b = rows
    b["vs"] = f"time {b['total'] / a['total']:.2f}x, peak RSS {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x"
    return rows


class Sampler(threading.Thread):
    """Every ``interval`` seconds, each other thread's innermost frame inside videostyle (or the
    innermost frame at all, when none is) is counted under the thread's kind."""

    PACKAGE = str(Path(__import__("videostyle").__file__).resolve().parent)

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.done = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self.done.is_set():
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self._count(re.sub(r"[_-]\d+(_\d+)?$", "", names.get(ident, "?")), frame)
            time.sleep(self.interval)

    def _count(self, kind: str, inner: Any) -> None:
        ours, f = None, inner
        while f is not None:
            if ours is None and f.f_code.co_filename.startswith(self.PACKAGE):
                ours = f
            f = f.f_back
        at = ours or inner
        line = f"{Path(at.f_code.co_filename).name}:{at.f_lineno} {at.f_code.co_name}"
        self.counts[kind][line + (f" -> {inner.f_code.co_name}" if ours is not None and inner is not ours else "")] += 1


def profile(ctx: Context) -> list[Row]:
    """The fast engine's render at 1920 px (the clip scaled up), its threads sampled."""
    from videostyle.engines import render_spec
    from videostyle.render.pipeline import render_video

    clip, style = ctx.media()
    size, frames = ctx.pick(1920, 64), ctx.pick(48, 2)
    src = upscaled(clip, size, frames, ctx.work) if size > 640 else clip
    cfg = config(ctx, style, fast__method="fast", optim__size=size, render__max_frames=frames,
                 render__device=ctx.device if ctx.device != "cpu" else "auto")
    sampler = Sampler()
    sampler.start()
    res = render_video(src, ctx.work / "profile.mkv", render_spec(cfg), overwrite=True)
    sampler.done.set()
    sampler.join()
    rows: list[Row] = [{"thread": "(all)", "line": f"{res.frames / res.seconds:.1f} frames/s end to end; ms/frame: "
                        + ", ".join(f"{k} {1e3 * v / res.frames:.1f}" for k, v in vars(res.stages).items()), "share": 1.0}]
    for kind, counter in sorted(sampler.counts.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counter.values())
        rows += [{"thread": kind, "line": line, "share": c / total} for line, c in counter.most_common(6)]
    return rows


def _stage_columns() -> tuple[Column, ...]:
    return (Column("decode", "decode ms/f", "{:.1f}"), Column("flow", "flow ms/f", "{:.1f}"))


SCENARIOS = [
    Scenario("render", "A render's stages and its iteration against the bare network, per variant",
             (Column("size", "size"), Column("variant", "variant"), *_stage_columns(),
              Column("stylize", "stylize s/f", "{:.2f}"), Column("encode", "encode ms/f", "{:.1f}"),
              Column("busy", "busy", "{:.0%}"), Column("its", "iterations/later frame"),
              Column("later", "s/later frame", "{:.2f}"), Column("ms", "ms/iter", "{:.1f}"),
              Column("floor", "bare network ms", "{:.1f}"), Column("ratio", "ratio", "{:.2f}x"),
              Column("error", "temporal error", "{:.5f}"), Column("peak_rss_mb", "peak RSS MB", "{:.0f}"),
              Column("peak_cuda_mb", "peak GPU MB", "{:.0f}")),
             renders,
             "The shared clip's first 12 frames, the default iterations (300/20), 256 px on a CPU and 512, 1080 and "
             "1920 px on a GPU (scaled up past the clip's size: speed only; --set variants=a,b for some); busy: the stylizer's share of the wall "
             "time; the bare network: torchvision's VGG-19 layers to relu5_1, forward and input gradient, at the "
             "render's precision."),
    Scenario("render-length", "Time and peak memory of a render and of one four times longer",
             (Column("frames", "frames"), *_stage_columns(), Column("stylize", "stylize ms/f", "{:.1f}"),
              Column("encode", "encode ms/f", "{:.1f}"), Column("total", "total s", "{:.1f}"),
              Column("per", "s/frame", "{:.3f}"), Column("peak_rss_mb", "peak RSS MB", "{:.0f}"),
              Column("vs", "long / short")),
             lengths, "Random weights at 128 px, 20/5 iterations, each length in a process of its own: flat memory "
                      "and linear time."),
    Scenario("render-profile", "Where a fast render's threads spend their time",
             (Column("thread", "thread"), Column("line", "line (innermost in the package)"),
              Column("share", "share", "{:.0%}")),
             profile, "The fast engine at 1920 px (the clip scaled up), 48 frames; every thread sampled every 5 ms "
                      "(waits included: a thread blocked on a queue shows the line that waits)."),
]
