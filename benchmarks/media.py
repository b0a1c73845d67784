"""The media a scenario renders: the shared clip and painting (``../shared/media``, beside the
checkout), or for a smoke run a small clip and style synthesised in the run's folder."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.machine import ROOT

if TYPE_CHECKING:
    from benchmarks.harness import Context

SHARED = ROOT.parent / "shared" / "media"
CLIP = SHARED / "video" / "bunny_640x360_24fps_aac.mp4"
STYLE = SHARED / "style" / "starry_night.jpg"


def pattern(h: int, w: int, shift: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx = xx - shift
    img = np.stack([0.5 + 0.5 * np.sin(xx / 7.0), 0.5 + 0.5 * np.cos(yy / 9.0 + xx / 13.0),
                    0.5 + 0.5 * np.sin((xx + yy) / 11.0)], axis=-1)
    return (img * 255).astype(np.uint8)


def synthetic(folder: Path, frames: int = 8, size: tuple[int, int] = (96, 64)) -> tuple[Path, Path]:
    """A small moving pattern (H.264, AAC-free) and a striped style image."""
    import av

    from videostyle.io.images import write_image

    clip, style = folder / "clip.mp4", folder / "style.png"
    w, h = size
    with av.open(str(clip), "w") as out:
        v = out.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = Fraction(1, 12)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(pattern(h, w, 2 * i), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, ::6], img[::6, :] = (230, 40, 30), (20, 40, 220)
    write_image(style, img)
    return clip, style


def default_media(ctx: Context) -> tuple[Path, Path]:
    if ctx.smoke:
        return synthetic(ctx.work)
    if not CLIP.exists() or not STYLE.exists():
        raise SystemExit(f"benchmarks: the shared media is not at {SHARED}; give --clip and --style")
    return CLIP, STYLE
