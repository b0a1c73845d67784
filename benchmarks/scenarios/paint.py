"""Painted keyframes against EbSynth on the same work. A flat-colour painting of frame 0 (the
frame's colours quantized to a few flat areas with dark outlines, as a quick paint-over looks;
and of the frame 4 s on, for the two-painting case) is carried through the first seconds of the
clip by videostyle (``--paint``, Gatys, the defaults at the size), by EbSynth's command line run
per frame as its users run it (the painting as the style, the keyframe and the current frame as
the guide; with two paintings, a pass from each blended by position, as EbSynth's own blending
does), and, for scale, by a plain render with the painting(s) as ``--style`` images.

Per method: the distance to the painting carried to each frame (warped by the flow from the frame
to its keyframe, where that flow is reliable; at each second and the median), the style loss
against the painting's Gram matrices, the temporal error and seconds per frame. EbSynth is the
``ebsynth`` on the PATH or in ``$EBSYNTH`` (built with its ``build-linux-cpu_only.sh``); without
it, its rows are left out."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, whole
from benchmarks.scenarios.common import model

SECONDS = 5


def flat_painting(frame: np.ndarray, colours: int = 6) -> np.ndarray:
    """``frame`` as flat areas of ``colours`` colours with dark outlines."""
    import cv2

    smooth = cv2.bilateralFilter(frame, 9, 60, 9)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centres = cv2.kmeans(smooth.reshape(-1, 3).astype(np.float32), colours, None, crit, 3,
                                    cv2.KMEANS_PP_CENTERS)
    flat = centres[labels.ravel()].reshape(frame.shape).astype(np.uint8)
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 60, 140)
    flat[edges > 0] = (flat[edges > 0] * 0.25).astype(np.uint8)
    return flat


def ebsynth_path() -> Path | None:
    found = os.environ.get("EBSYNTH") or shutil.which("ebsynth")
    return Path(found) if found and Path(found).exists() else None


def peer(exe: Path, frames: list[Path], paintings: dict[int, Path], tmp: Path) -> list[np.ndarray]:
    """EbSynth per frame from each painting, blended by position between two (as ours)."""
    from videostyle.io.images import read_image
    from videostyle.temporal import paint

    outs = []
    for i in range(len(frames)):
        acc = None
        for origin, w in paint.weights(i, sorted(paintings)):
            if i == origin:
                img = read_image(paintings[origin]).astype(np.float32)
            else:
                o = tmp / f"eb_{origin}_{i}.png"
                subprocess.run([str(exe), "-style", str(paintings[origin]), "-guide", str(frames[origin]), str(frames[i]),
                                "-output", str(o)], check=True, capture_output=True)
                img = read_image(o).astype(np.float32)
            acc = w * img if acc is None else acc + w * img
        outs.append(np.clip(np.round(acc), 0, 255).astype(np.uint8))  # type: ignore[arg-type]
    return outs


def ours(clip: Path, cfg: Any, out: Path) -> list[np.ndarray]:
    from videostyle.engines import render_spec
    from videostyle.render.paint import PaintRender
    from videostyle.report import Reporter

    pr = PaintRender(clip, out, render_spec(cfg), Reporter(), True, True)
    pr.cache_source()
    for p in pr.passes:
        pr.render_pass(p)
    frames = [pr.frame(i) for i in range(cfg.render.max_frames)]
    pr.work.remove()
    return frames


def plain(clip: Path, cfg: Any, out: Path) -> list[np.ndarray]:
    """A render with the painting(s) as plain ``--style`` images, no keyframes."""
    from videostyle.engines import render_spec
    from videostyle.io.images import read_image
    from videostyle.render.pipeline import render_video

    out.mkdir()
    render_video(clip, out / "%04d.png", render_spec(cfg))
    return [read_image(f) for f in sorted(out.glob("*.png"))]


def measures(outs: list[np.ndarray], sources: list[np.ndarray], paintings: dict[int, np.ndarray],
             grams: dict[int, Any]) -> list[tuple[float, float]]:
    """Per frame: the distance to its nearer painting carried to it (reliable pixels, /255) and
    the style loss against that painting."""
    from videostyle import config as C
    from videostyle.engines import render_flow_params
    from videostyle.temporal.flow import pair, warp

    params, rows = render_flow_params(C.Config()), []
    for i, (o, s) in enumerate(zip(outs, sources)):
        k = min(paintings, key=lambda p: abs(p - i))
        pk = pair(s, sources[k], params)
        m = pk.mask > 0.5
        dist = float(np.abs(o.astype(np.float32) - warp(paintings[k], pk.back))[m].mean() / 255) if m.any() else float("nan")
        rows.append((dist, grams[k].score(o, s)["style"]))
    return rows


def case(ctx: Context, clip: Path, sources: list[np.ndarray], files: list[Path], at: list[int], fps: float) -> list[Row]:
    """One case's rows: each method's painting carried over ``sources``."""
    from videostyle import config as C
    from videostyle.engines import build_stylizer, render_flow_params
    from videostyle.io.images import write_image
    from videostyle.metrics import temporal_error

    n, size, tmp = len(sources), ctx.pick(128, 64), ctx.work / f"case{len(at)}"
    tmp.mkdir()
    pics = {a: flat_painting(sources[a]) for a in at}
    pfiles = {a: tmp / f"painting_{a:04d}.png" for a in at}
    for a, img in pics.items():
        write_image(pfiles[a], img)
    base = {"optim.size": size, "render.max_frames": n, "model.name": model(ctx), "render.device": ctx.device,
            **ctx.pick({}, {"optim.iterations": 3, "optim.iterations_later": 2})}
    grams = {a: build_stylizer(C.apply(C.Config(), base), [img], lambda m: None) for a, img in pics.items()}
    done: dict[str, list[np.ndarray]] = {}
    methods = {"videostyle --paint": lambda: ours(clip, C.apply(C.Config(), {
                   **base, "style.paintings": [f"f:{i}={p}" for i, p in pfiles.items()]}), tmp / "ours.mkv"),
               "videostyle --style the painting(s), no --paint": lambda: plain(clip, C.apply(C.Config(), {
                   **base, "style.images": [str(p) for p in pfiles.values()]}), tmp / "plain")}
    exe = ebsynth_path()
    if exe is not None:
        methods["EbSynth per frame"] = lambda: peer(exe, files, pfiles, tmp)
    rows = []
    for method, fn in methods.items():
        secs = whole(lambda: done.__setitem__(method, fn()), 1).median / n
        per = measures(done[method], sources, pics, grams)
        later = [r for i, r in enumerate(per) if i not in pics]
        rows.append({"case": f"{len(at)} painting(s) (frames {', '.join(map(str, at))})", "method": method,
                     "dist": statistics.median(d for d, _ in later), "last": per[-1][0],
                     "style": statistics.median(s for _, s in later), "spf": secs,
                     "error": temporal_error(done[method], sources, params=render_flow_params(C.Config())).error[1],
                     **{f"d{t}": per[round(t * fps)][0] for t in range(1, SECONDS + 1) if round(t * fps) < n}})
    return rows


def measure(ctx: Context) -> list[Row]:
    from videostyle import config as C
    from videostyle.engines import span
    from videostyle.factory import prepare_content
    from videostyle.io.images import write_image
    from videostyle.io.media import probe

    clip = ctx.media()[0]
    info = probe(clip)
    fps = float(info.fps)
    n, size = ctx.pick(int(round(SECONDS * fps)), 3), ctx.pick(128, 64)
    cfg = C.apply(C.Config(), {"optim.size": size, "render.max_frames": n})
    sources = [prepare_content(fr.image, size, "clip") for fr in span(cfg).frames(clip, info=info)]
    files = [ctx.work / f"src_{i:04d}.png" for i in range(len(sources))]
    for f, s in zip(files, sources):
        write_image(f, s)
    rows: list[Row] = []
    for at in ([0], [0, int(4 * fps)]):
        if all(a < n for a in at):
            rows += case(ctx, clip, sources, files, at, fps)
    return rows


SCENARIOS = [
    Scenario("paint", "Painted keyframes against EbSynth: the painting carried through the clip",
             (Column("case", "case"), Column("method", "method"),
              Column("dist", "distance to the carried painting (median, /255)", "{:.3f}"),
              Column("last", "at the last frame", "{:.3f}"), Column("style", "style loss (median)", "{:.3g}"),
              Column("error", "temporal error", "{:.5f}"), Column("spf", "s/frame", "{:.2f}"),
              *(Column(f"d{t}", f"distance at {t} s", "{:.3f}") for t in range(1, SECONDS + 1))),
             measure, "The shared clip's first 5 s at 128 px; Gatys with the defaults."),
]
