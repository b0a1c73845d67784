"""``--chains``: K segments optimised as one batch against one chain, and what a batch of K
costs the network per image."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmarks.harness import Column, Context, Row, Scenario, whole


def _config(ctx: Context, clip: Path, style: Path) -> Any:
    from videostyle.config import Config, apply

    return apply(Config(), {"model.name": ctx.pick("vgg19", "random"), "style.images": [str(style)],
                            "optim.size": ctx.pick(128, 64), "optim.iterations": ctx.pick(300, 3),
                            "optim.iterations_later": ctx.pick(20, 2), "render.max_frames": ctx.pick(24, 4),
                            "render.overlap": ctx.pick(12, 1), "render.device": ctx.device, "encode.crf": 12})


def _errors(out: Path, clip: Path, frames: int, owned: list[tuple[int, int]]) -> str:
    """The mean temporal error (gap 1) over each chain's frames, each frame against the one before."""
    from videostyle.io.media import Span
    from videostyle.metrics import temporal_error

    per = temporal_error(out, clip, span=Span(max_frames=frames)).per_frame[1]  # per[t - 1]: frame t
    return " / ".join(f"{statistics.fmean(per[max(a, 1) - 1:b - 1] or [0.0]):.4f}" for a, b in owned)


def renders(ctx: Context) -> list[Row]:
    from videostyle.config import apply
    from videostyle.engines import new_stylizer, render_spec
    from videostyle.render.chains import Chains
    from videostyle.render.pipeline import render_video
    from videostyle.report import Reporter

    clip, style = ctx.media()
    cfg = _config(ctx, clip, style)
    frames = cfg.render.max_frames
    st = new_stylizer(cfg)
    # (untimed: the first render pays for the network's first passes and the style targets)
    render_video(clip, ctx.work / "warm.mp4", render_spec(apply(cfg, {"render.max_frames": 2})), stylizer=st)
    rows: list[Row] = []
    done: dict[str, Any] = {}

    def plain() -> None:
        done["res"] = render_video(clip, ctx.work / "one.mp4", render_spec(cfg), stylizer=st, overwrite=True)

    t = whole(plain, 1).median
    rows.append({"render": "one chain (a plain render)", "wall": t, "fps": frames / t, "vs": 1.0,
                 "its": sum(done["res"].iterations) / t, "error": _errors(ctx.work / "one.mp4", clip, frames,
                                                                          [(0, frames)])})
    base = t
    for k in ctx.pick((1, 2, 4), (1, 2)):
        out = ctx.work / f"k{k}.mp4"

        def chained() -> None:
            ch = Chains(clip, out, render_spec(cfg), k, Reporter(), restart=True, overwrite=True, stylizer=st)
            ch.run()
            ch.pr.mux()
            done["ch"] = ch

        t = whole(chained, 1).median
        ch = done["ch"]
        rows.append({"render": f"--chains {k}", "wall": t, "fps": frames / t, "vs": base / t,
                     "its": ch.lockstep.iterations / t,
                     "error": _errors(out, clip, frames, [(s.start, s.end) for s in ch.pr.segs])})
    return rows


def network(ctx: Context) -> list[Row]:
    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.gatys.throughput import per_image
    from videostyle.io.images import fit_size

    st = new_stylizer(apply(Config(), {"model.name": "random", "render.device": ctx.device}))
    rows: list[Row] = []
    for side in ctx.pick((256, 512), (64,)):
        hw = fit_size(360, 640, side)
        one = 0.0
        for k in (1, 2, 4):
            per = per_image(st, hw, k, ctx.seconds(2.0))  # (what --chains auto measures)
            one = one or per
            rows.append({"size": f"{hw[1]}x{hw[0]}", "k": k, "ms": per * 1e3, "vs": one / per})
    return rows


SCENARIOS = [
    Scenario("chains-render", "K chains in one batch against one chain: the first frames of the shared clip",
             (Column("render", "render"), Column("wall", "wall s", "{:.1f}"), Column("fps", "frames/s", "{:.3f}"),
              Column("vs", "vs one chain", "{:.2f}x"), Column("its", "frame-iterations/s", "{:.2f}"),
              Column("error", "temporal error per chain")),
             renders,
             "The first 24 frames at 128x72 (a 2-core CPU spends minutes on a first frame at 256), VGG-19, the "
             "default 300/20 iterations and overlap 12. Frame-iterations/s: every frame's "
             "iterations (seams and the settle pass included) a second. The temporal error is each chain's mean "
             "over the frames it owns (its first against the previous chain's last)."),
    Scenario("chains-network", "The network's forward and input gradient per image at batch K",
             (Column("size", "size"), Column("k", "batch K"), Column("ms", "ms per image (median)", "{:.1f}"),
              Column("vs", "vs batch 1", "{:.2f}x")),
             network, "VGG-19 to relu5_1 with the stylizer's layout and precision; torch.utils.benchmark medians."),
]
