"""Frames in and out: the fast render from a video against the same frames as image sequences,
and the disk a render's work folder takes as it goes (frames kept as PNG until the end, or
encoded in chunks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, whole
from benchmarks.scenarios.common import config


def write_sequences(clip: Path, frames: int, root: Path) -> dict[str, str]:
    """The clip's first ``frames`` frames as 8-bit PNG, 16-bit PNG and OpenEXR sequences; returns
    kind -> input."""
    import av
    import cv2

    from videostyle.io.frames_out import encode

    kinds = {"video": str(clip)}
    for name, ext in (("png8", ".png"), ("png16", ".png"), ("exr", ".exr")):
        (root / name).mkdir()
        kinds[name] = str(root / name / f"%04d{ext}")
    with av.open(str(clip)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= frames:
                break
            img = fr.to_ndarray(format="rgb24")
            cv2.imwrite(str(root / "png16" / f"{i:04d}.png"), cv2.cvtColor(img.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
            for name, ext in (("png8", ".png"), ("exr", ".exr")):
                p = root / name / f"{i:04d}{ext}"
                p.write_bytes(encode(p, img))
    return kinds


def sequences(ctx: Context) -> list[Row]:
    """Each render a new process, as a user runs it: the default codec (``auto`` keeps a deep
    source's depth: HEVC Main 10) and again with ``--codec h264``, which leaves the input side's cost."""
    clip, style = ctx.media()
    frames, size = ctx.pick(120, 3), ctx.pick(640, 64)
    kinds = write_sequences(clip, frames, ctx.work)
    runs = {k: (inp, []) for k, inp in kinds.items()}
    runs.update({f"{k} (h264)": (kinds[k], ["--codec", "h264"]) for k in ("png16", "exr")})
    if ctx.smoke:
        runs = {k: runs[k] for k in ("exr (h264)",)}
    rows: list[Row] = []
    base = None
    for kind, (inp, extra) in runs.items():
        cmd = [sys.executable, "-m", "videostyle", "render", inp, "--style", str(style), "--method", "fast", "--size",
               str(size), "--max-frames", str(frames), "-o", str(ctx.work / "out.mp4"), "-y", "-q", *extra]
        t = whole(lambda: subprocess.run(cmd, check=True), ctx.pick(3, 1))
        base = base or t.median
        rows.append({"input": kind, "frames": frames, "s": t.median, "iqr": t.iqr, "fps": frames / t.median,
                     "vs": base / t.median})
    return rows


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def workdir(ctx: Context) -> list[Row]:
    """The fast engine's render (the folder holds the same frames whatever the engine), the work
    folder's size sampled after every frame: its peak is what a render needs free."""
    from videostyle.engines import render_spec
    from videostyle.io.media import read_frames
    from videostyle.render.pipeline import render_video
    from videostyle.report import FrameDone, Reporter

    class Sampler(Reporter):
        def __init__(self, work: Path) -> None:
            self.work, self.peak = work, 0

        def frame(self, done: FrameDone) -> None:
            self.peak = max(self.peak, folder_bytes(self.work))

    clip, style = ctx.media()
    size, rows = ctx.pick(512, 64), []
    for chunk in ctx.pick((10 ** 6, 120, 60, 20), (10 ** 6, 2)):
        out = ctx.work / f"out{chunk}.mp4"
        cfg = config(ctx, style, fast__method="fast", optim__size=size, render__max_frames=ctx.pick(0, 4),
                     render__chunk_frames=chunk, render__device="auto" if ctx.device == "cpu" else ctx.device)
        sampler = Sampler(out.with_name(f".{out.name}.videostyle-work"))
        t = whole(lambda: render_video(clip, out, render_spec(cfg), sampler, overwrite=True), 1).median
        frames = sum(1 for _ in read_frames(out))
        png, enc = sampler.peak / frames, out.stat().st_size / frames
        hour = 24 * 3600
        rows.append({"chunk": "whole clip (all PNGs)" if chunk == 10 ** 6 else chunk, "frames": frames,
                     "peak": sampler.peak / 2 ** 20, "per": png / 2 ** 20, "out": out.stat().st_size / 2 ** 20, "wall": t,
                     "hour": (png * hour if chunk == 10 ** 6 else enc * hour + png * min(chunk, frames)) / 2 ** 30})
    return rows


SCENARIOS = [
    Scenario("sequences", "The fast render from a video against the same frames as image sequences",
             (Column("input", "input"), Column("frames", "frames"), Column("s", "s (median)", "{:.1f}"),
              Column("iqr", "IQR s", "{:.2f}"), Column("fps", "fps end to end", "{:.2f}"),
              Column("vs", "x the video's", "{:.2f}")),
             sequences, "The shared clip's first 120 frames at 640 px, each render a new process, median of 3."),
    Scenario("workdir", "Disk a render's work folder takes: PNGs until the end, or encoded chunks",
             (Column("chunk", "chunk frames"), Column("frames", "frames"), Column("peak", "peak work folder MB", "{:.1f}"),
              Column("per", "MB per frame", "{:.3f}"), Column("out", "output MB", "{:.1f}"), Column("wall", "wall s", "{:.1f}"),
              Column("hour", "an hour at 24 fps, GB", "{:.2f}")),
             workdir, "The whole shared clip at 512 px with the fast engine; an hour: the PNGs of the whole hour, or "
                      "the encoded hour and one chunk of PNGs."),
]
