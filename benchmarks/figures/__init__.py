"""The pictures and tables ``docs/`` shows, each made again by one command:
``python -m benchmarks figure NAME [its options]`` (``python -m benchmarks figures`` lists them).
They write into ``docs/figures/`` and render the shared media beside the checkout."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.machine import ROOT
from benchmarks.media import CLIP, SHARED, STYLE

MEDIA = SHARED
OUT = ROOT / "docs" / "figures"

# name: (module, what it makes)
FIGURES: dict[str, tuple[str, str]] = {
    "alpha": ("alpha", "alpha.jpg: a keyed frame through the network, filled against premultiplied"),
    "art-direction": ("art_direction", "keyframes_strip.jpg and regions_frame.jpg: style keyframes and regions"),
    "formats": ("formats", "a table: what each kind of source comes out as, read by ffprobe"),
    "stroke-size": ("stroke_size", "stroke_size.jpg: the same image at two sizes, flat and coarse-to-fine"),
    "tune-weights": ("tune_weights", "tune_weights.jpg and a table: the style weight's effect on real photos"),
    "receptive-field": ("receptive_field", "a table: how far each VGG-19 loss layer looks, measured"),
    "fast-pictures": ("fast_pictures", "before_after.jpg and clip_strip.jpg: the fast engine's pictures"),
    "temporal-strip": ("temporal_strip", "temporal_strip.jpg: six consecutive frames with temporal terms"),
    "tile-seam": ("tile_seam", "tile_seam.png: where four tiles meet, with the untiled render beside it"),
    "paint-strip": ("paint_strip", "paint_strip.jpg: a painting carried by --paint and by EbSynth"),
}


def media_parser(doc: str | None, *, frames: int, size: int) -> argparse.ArgumentParser:
    """A parser with --clip, --style, --frames and --size (defaults: the shared bunny clip, Starry Night)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--style", type=Path, default=STYLE)
    ap.add_argument("--frames", type=int, default=frames)
    ap.add_argument("--size", type=int, default=size)
    return ap


def resolve_model(name: str) -> str:
    """``auto``: vgg19 when its weights are on this machine (no download), else random."""
    if name != "auto":
        return name
    from videostyle.errors import WeightsError
    from videostyle.gatys.features import build_extractor

    try:
        build_extractor(("relu1_1",), download=False)
        return "vgg19"
    except WeightsError:
        return "random"
