"""Tiled against untiled optimisation of one image: peak memory, seconds per iteration and the
final losses, per size; each run in a process of its own, so its peak (resident, or CUDA
allocated) is its own. The seam ratio is the output's mean gradient magnitude across the
unshifted grid's tile edges over that elsewhere (1.0: no seam; untiled rows measure the same
lines, as a control). The content is the clip's first frame scaled to each size (a render
never enlarges; this is a stand-in with the frame's structure at every size)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, peak_memory_mb, whole
from benchmarks.scenarios.common import model, own_process


def tile_run(a: dict[str, Any]) -> dict[str, Any]:
    """One optimisation (in a process of its own): its peak memory, s/iteration and losses; the
    image saved at ``a["save"]``."""
    import cv2
    import torch

    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.io.images import read_image, write_image
    from videostyle.io.media import read_frames

    if a.get("heap") == "glibc":  # glibc's own mmap threshold: the tiled path's map_large_blocks off
        import videostyle.gatys.runners as vr

        vr.map_large_blocks = lambda: None
    if a.get("history_dtype"):  # the tiled L-BFGS history in another dtype than the renderer's
        import videostyle.gatys.runners as vr

        vr.TiledRunner.history_dtype = getattr(torch, a["history_dtype"])
    frame = next(read_frames(a["clip"])).image
    h, w = frame.shape[:2]
    f = a["size"] / max(h, w)
    content = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    st = new_stylizer(apply(Config(), {"model.name": a["model"], "render.device": a["device"], "optim.size": 0,
                                       "optim.iterations": a["iterations"], "optim.tile": a["tile"] or "off",
                                       "optim.tile_margin": a["margin"], "style.stroke_side": 0}))
    st.set_styles([read_image(a["style"])])
    if st.device.type == "cuda":
        # (untimed: the style targets and cuDNN's algorithm search stay out of the figures)
        st.stylize(content, iterations=1)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    got: list[Any] = []
    secs = whole(lambda: got.append(st.stylize(content)), 1).median
    res = got[0]
    mem = peak_memory_mb(st.device.type)
    peak = mem.get("peak_cuda_mb", mem["peak_rss_mb"])
    write_image(Path(a["save"]), (res.image * 255).round().astype(np.uint8))
    return {"peak_mb": peak, "s_iter": secs / max(res.iterations, 1), "loss": res.loss, "losses": res.losses}


def seam_ratio(image: np.ndarray, core: int) -> float:
    """Mean gradient magnitude of the luminance on the pixel pairs that straddle a tile edge of
    the unshifted grid (every ``core`` px) over the mean on all other pairs."""
    import cv2

    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    ex, ey = np.zeros(gx.shape[1], bool), np.zeros(gy.shape[0], bool)
    ex[core - 1::core] = True  # (the pair (core - 1, core) straddles the edge at x = core)
    ey[core - 1::core] = True
    on = np.concatenate([gx[:, ex].ravel(), gy[ey, :].ravel()])
    off = np.concatenate([gx[:, ~ex].ravel(), gy[~ey, :].ravel()])
    return float(on.mean() / off.mean()) if on.size else float("nan")  # (no edge: one tile)


def plan(ctx: Context) -> dict[str, Any]:
    gpu = ctx.device.startswith("cuda")
    return {"sizes": ctx.pick((512, 2048, 3840) if gpu else (512, 1024, 2048), (128,)),
            "tile": ctx.pick(1024 if gpu else 512, 96), "margin": ctx.pick(80, 16),
            "untiled_max": ctx.pick(3840 if gpu else 1024, 0), "iterations": ctx.pick(10, 2)}


def runs(ctx: Context) -> tuple[list[Row], dict[int, dict[str, Any]]]:
    """The rows, and per size the images (``tiled``, ``untiled``) for a look at the seams."""
    from videostyle.io.images import read_image

    clip, style = ctx.media()
    p = plan(ctx)
    core = p["tile"] - 2 * p["margin"]
    rows: list[Row] = []
    images: dict[int, dict[str, Any]] = {}
    for size in p["sizes"]:
        base = None
        for tile in ([0] if size <= p["untiled_max"] else []) + ([p["tile"]] if size > p["tile"] else []):
            save = ctx.work / f"{size}_{tile}.png"
            r = own_process(tile_run, {"clip": str(clip), "style": str(style), "model": model(ctx), "device": ctx.device,
                                       "size": size, "iterations": p["iterations"], "tile": tile,
                                       "margin": p["margin"], "save": str(save),
                                       "heap": ctx.options.get("heap", ""),
                                       "history_dtype": ctx.options.get("history_dtype", "")})
            base = base if base is not None or tile else r["loss"]
            out = read_image(save)
            images.setdefault(size, {})["tiled" if tile else "untiled"] = out
            rows.append({"size": size, "run": "tiled" if tile else "untiled", "peak": r["peak_mb"], "s": r["s_iter"],
                         "loss": r["loss"], "content": r["losses"]["content"], "style": r["losses"]["style"],
                         "vs": r["loss"] / base if base and tile else None, "seam": seam_ratio(out, core)})
    return rows, images


SCENARIOS = [
    Scenario("tiles", "Tiled against untiled optimisation of one image: memory, speed, losses, seams",
             (Column("size", "size"), Column("run", "run"), Column("peak", "peak memory MB", "{:.0f}"),
              Column("s", "s/iteration", "{:.2f}"), Column("loss", "final loss", "{:.4g}"),
              Column("content", "content", "{:.4g}"), Column("style", "style", "{:.4g}"),
              Column("vs", "loss vs untiled", "{:.3f}x"), Column("seam", "seam ratio", "{:.3f}")),
             lambda ctx: runs(ctx)[0],
             "The shared clip's first frame scaled to each size, 10 L-BFGS iterations; tiles of 512 px (1024 on a GPU) "
             "with 80 px of context; untiled up to 1024 px on a CPU (3840 on a GPU). --set heap=glibc leaves large "
             "blocks to glibc's mmap threshold; --set history_dtype=float32|bfloat16 sets the tiled L-BFGS history's."),
]
