"""Later frames, scheduled differently: coarse-to-fine against flat, each --consistency setting,
warm starts and temporal terms against independent frames, and the colour drift of a long chain.
Each row renders the same frames and reports its cost with its temporal error (``videostyle
eval``'s measure: each stylized frame against the one before, warped by the source's flow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario
from benchmarks.scenarios.common import config, later, median, model


def _render(ctx: Context, clip: Path, cfg: Any, name: str, stylizer: Any = None) -> tuple[Path, Any]:
    from videostyle.engines import configure, render_spec
    from videostyle.render.pipeline import render_video

    if stylizer is not None:
        configure(stylizer, cfg)
    out = ctx.work / f"{name}.mkv"
    return out, render_video(clip, out, render_spec(cfg), stylizer=stylizer, overwrite=True)


def coarse(ctx: Context) -> list[Row]:
    from videostyle.engines import flow_params, new_stylizer
    from videostyle.io.media import Span
    from videostyle.metrics import frame_losses, temporal_error

    clip, style = ctx.media()
    frames = ctx.pick(8, 2)
    base = dict(model__name=model(ctx), optim__size=ctx.pick(512, 64), optim__iterations=ctx.pick(40, 2),
                render__max_frames=frames, encode__crf=12, optim__stop_loss_ratio=0.0)
    span, stylizer, rows = Span(max_frames=frames), None, []
    for half, full in ctx.pick(((0, 5), (0, 10), (0, 20), (10, 5), (10, 10)), ((0, 2), (1, 1))):
        cfg = config(ctx, style, **base, optim__iterations_later=full, optim__coarse_later=half)
        stylizer = stylizer or new_stylizer(cfg)
        out, res = _render(ctx, clip, cfg, f"coarse{half}_{full}", stylizer)
        losses = frame_losses(out, clip, stylizer, span)
        rows.append({"schedule": f"coarse:{half}+{full}" if half else f"flat:{full}", "its": f"{half} + {full}",
                     "spf": median(later(res.frame_seconds)), "loss": losses["content"] + losses["style"],
                     "error": temporal_error(out, clip, gaps=(1,), params=flow_params(cfg), span=span).error[1]})
    return rows


def consistency(ctx: Context) -> list[Row]:
    from videostyle.engines import dial
    from videostyle.io.media import Span
    from videostyle.metrics import temporal_error

    clip, style = ctx.media()
    frames, rows = ctx.pick(24, 2), []
    for engine in ("gatys", "fast"):
        for c in ctx.pick((0.0, 0.25, 0.5, 0.75, 1.0), (1.0,)):
            cfg = config(ctx, style, model__name=model(ctx), optim__size=ctx.pick(160, 64),
                         optim__iterations=ctx.pick(60, 2), optim__iterations_later=ctx.pick(12, 1),
                         render__max_frames=frames, temporal__consistency=c, fast__method=engine, encode__crf=12)
            out, res = _render(ctx, clip, cfg, f"{engine}_{c}")
            warm, tw, fb = dial(cfg)
            rows.append({"engine": engine, "c": c, "warm": warm, "tw": tw, "fb": fb,
                         "its": f"{median(later(res.iterations)):g}" if engine != "fast" else "-",
                         "spf": median(later(res.frame_seconds)),
                         "error": temporal_error(out, clip, span=Span(max_frames=frames)).error[1]})
    return rows


def _temporal_rows(iterations: int, later_its: int, weight: float) -> list[tuple[str, dict[str, Any]]]:
    return [("independent", {"temporal.init_later": "content", "optim.iterations_later": iterations,
                             "temporal.scene_cut": 0.0, "optim.stop_loss_ratio": 0.0}),
            ("prev", {"temporal.init_later": "prev"}),
            ("prev-warped", {"temporal.init_later": "prev-warped"}),
            (f"prev-warped + temporal loss {weight:g}", {"temporal.init_later": "prev-warped", "temporal.weight": weight}),
            (f"prev-warped + temporal loss {weight:g}, frames 1,2,4",
             {"temporal.init_later": "prev-warped", "temporal.weight": weight, "temporal.frames": [1, 2, 4]}),
            (f"prev-warped + temporal loss {weight:g}, frames 1,2,4, no early stop",
             {"temporal.init_later": "prev-warped", "temporal.weight": weight, "temporal.frames": [1, 2, 4],
              "optim.stop_loss_ratio": 0.0})]


def temporal(ctx: Context) -> list[Row]:
    from videostyle.config import Config, apply
    from videostyle.engines import flow_params, new_stylizer
    from videostyle.io.media import Span
    from videostyle.metrics import frame_losses, temporal_error

    clip, style = ctx.media()
    frames, its = ctx.pick(48, 3), ctx.pick(50, 3)
    span, stylizer, rows, ref = Span(max_frames=frames), None, [], {}
    base = config(ctx, style, model__name=model(ctx), optim__size=ctx.pick(256, 64), optim__iterations=its,
                  optim__iterations_later=max(1, its // 5), render__max_frames=frames, encode__crf=12)
    for name, over in _temporal_rows(its, max(1, its // 5), Config().temporal.weight or 30.0):
        cfg = apply(base, over)
        stylizer = stylizer or new_stylizer(cfg)
        out, res = _render(ctx, clip, cfg, name.replace(" ", "_").replace(",", ""), stylizer)
        rep = temporal_error(out, clip, gaps=(1, 4), params=flow_params(cfg), span=span)
        losses = frame_losses(out, clip, stylizer, span)
        ref = ref or {"te": rep.error[1], "style": losses["style"], "content": losses["content"]}
        rows.append({"variant": name, "its": median(later(res.iterations)), "total": sum(res.iterations),
                     "spf": median(later(res.frame_seconds)), "error": rep.error[1], "vs": rep.error[1] / ref["te"],
                     "long": rep.error[4], "style": losses["style"] / ref["style"],
                     "content": losses["content"] / ref["content"]})
    return rows


def pingpong(src: Path, dest: Path, seconds: float, static: bool = False) -> tuple[int, float]:
    """The first ``seconds / 2`` of ``src`` played forward then backward (the last frame's content
    is the first frame's), or (``static``) its first frame held for ``seconds``. Returns the
    frames and the rate."""
    import av

    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        fps = vs.average_rate
        n = int(round(seconds * float(fps)))
        frames = []
        for f in c.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= (1 if static else (n + 1) // 2):
                break
    seq = [frames[0]] * n if static else (frames + frames[::-1])[:n]
    with av.open(str(dest), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = seq[0].shape[1], seq[0].shape[0], "yuv420p"
        s.options = {"crf": "12", "preset": "veryfast"}
        for img in seq:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return len(seq), float(fps)


def drift(ctx: Context) -> list[Row]:
    import av

    clip, style = ctx.media()
    rows = []
    rows_wanted = (("ping-pong, defaults", False, {}), ("ping-pong, --settle 0", False, {"temporal__settle": 0.0}),
                   ("one frame held, defaults", True, {}))
    for label, static, over in ctx.pick(rows_wanted, rows_wanted[::2]):
        looped = ctx.work / f"clip_{static}.mp4"
        n, fps = pingpong(clip, looped, ctx.pick(10.0, 0.5), static)
        cfg = config(ctx, style, model__name=model(ctx), optim__size=ctx.pick(128, 64),
                     optim__iterations=ctx.pick(100, 2), optim__iterations_later=ctx.pick(12, 1), encode__crf=10, **over)
        out, res = _render(ctx, looped, cfg, label.replace(" ", "_"))
        with av.open(str(out)) as o:
            means = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0) for f in o.decode(video=0)]
        # Frames i and n-1-i show the same content; from 1 s in, both are warm-started links of
        # the chain, up to the clip's length apart: their difference is the chain's own drift.
        k = max(1, round(fps))
        pairs = [float(np.abs(means[i] - means[-1 - i]).max()) for i in range(k, len(means) // 2 - k)]
        rows.append({"settings": label, "first": _rgb(means[0]), "last": _rgb(means[-1]),
                     "diff": float(np.abs(means[-1] - means[0]).max()),
                     "worst": max(float(np.abs(m - means[0]).max()) for m in means),
                     "chain": f"{pairs[0]:.2f} / {max(pairs):.2f}" if pairs and not static else "-",
                     "spf": res.seconds / max(n, 1)})
    return rows


def _rgb(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.1f}" for x in v) + ")"


SPF = Column("spf", "s/later frame (median)", "{:.2f}")
ERROR = Column("error", "temporal error", "{:.5f}")

SCENARIOS = [
    Scenario("coarse-later", "Later frames: flat against coarse-to-fine (half-size iterations first)",
             (Column("schedule", "later frames"), Column("its", "iterations (half + full)"), SPF,
              Column("loss", "content + style loss (mean per frame)", "{:.4f}"), ERROR),
             coarse, "8 frames at 512 px, frame 0 at 40 iterations, warped warm starts, no early stop; a coarse row "
                     "wins when it reaches a flat row's loss in less time."),
    Scenario("consistency", "What --consistency does, for each engine",
             (Column("engine", "engine"), Column("c", "consistency", "{:g}"), Column("warm", "warm start", "{:g}"),
              Column("tw", "temporal weight", "{:g}"), Column("fb", "fast blend", "{:g}"),
              Column("its", "later iterations (median)"), SPF, ERROR),
             consistency, "24 frames at 160 px, 60/12 iterations."),
    Scenario("temporal", "Temporal coherence against cost: independent frames, warm starts, temporal terms",
             (Column("variant", "variant"), Column("its", "later iterations", "{:g}"), Column("total", "total iterations"),
              SPF, ERROR, Column("vs", "vs independent", "{:.2f}x"), Column("long", "long-term (gap 4)", "{:.5f}"),
              Column("style", "style loss rel.", "{:.2f}"), Column("content", "content loss rel.", "{:.2f}")),
             temporal, "48 frames at 256 px, frame 0 at 50 iterations, later frames at 10 (independent: 50)."),
    Scenario("drift", "Colour drift along a long warm-started chain",
             (Column("settings", "settings"), Column("first", "first frame mean RGB"),
              Column("last", "last frame mean RGB"), Column("diff", "last - first (largest channel, /255)", "{:.2f}"),
              Column("worst", "largest drift of any frame (/255)", "{:.2f}"),
              Column("chain", "same content 1 s in and 1 s before the end / largest pair (/255)"),
              Column("spf", "s/frame", "{:.2f}")),
             drift, "The shared clip's first 5 s played forward then backward (10 s), or its first frame held 10 s, "
                    "at 128 px, 100/12 iterations. Target: at most 2/255."),
]
