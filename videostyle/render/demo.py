"""What ``videostyle demo`` computes: the sample clip in a sample painting with the fast engine,
and an estimate of the optimisation (Gatys) render of the same clip on this machine, from a few
measured iterations of its first frame."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from videostyle import config as C
from videostyle.engines import build_engine, first_init, load_styles, prepare_content, render_plan
from videostyle.estimate import WARMUP_ITERATIONS, Estimate, Estimating
from videostyle.io.media import probe, read_frames
from videostyle.render.pipeline import render_video
from videostyle.render.settle import settle_frames
from videostyle.report import RenderResult, Reporter

GATYS_SIZE = 256  # the demo's suggested first optimisation render


def fast_render(clip: Path, style: Path, out: Path, base: C.Config, reporter: Reporter) -> RenderResult:
    cfg = C.apply(base, {"fast.method": "fast", "style.images": [str(style)]}, "videostyle demo")
    return render_video(clip, out, cfg, reporter, overwrite=True)


def gatys_config(style: Path, base: C.Config) -> C.Config:
    return C.apply(base, {"fast.method": "gatys", "style.images": [str(style)], "optim.size": GATYS_SIZE},
                   "videostyle demo")


def gatys_estimate(clip: Path, cfg: C.Config) -> Estimate | None:
    """The estimate the render would give, from a few iterations of its first frame."""
    info = probe(clip)
    frame = next(iter(read_frames(clip, max_frames=1, info=info)))
    content = prepare_content(frame.image, cfg.optim.size, "demo frame", cfg.optim.upscale)
    short = replace(cfg, optim=replace(cfg.optim, iterations=WARMUP_ITERATIONS + 2))
    engine = build_engine(short, load_styles(short), lambda m: None)
    got: list[Estimate] = []

    class Catch(Reporter):
        def estimate(self, e: Estimate) -> None:  # type: ignore[override]
            got.append(e)

    est = Estimating(Catch())
    settle = settle_frames(cfg, engine.optimises, info.fps, info.frames)
    est.begin(info.frames, str(clip))
    full = render_plan(cfg, engine, info.frames, content.shape[:2], settle)
    est.plan(replace(full, first_iterations=cfg.optim.iterations))
    try:
        engine.fresh(content, first_init(short), cfg.optim.seed, est.iterate)
    finally:
        engine.close()
    return got[0] if got else None
