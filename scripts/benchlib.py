"""Shared pieces of the benchmark scripts: default media and model choice."""

from __future__ import annotations

import argparse
from pathlib import Path

from videostyle.errors import WeightsError
from videostyle.gatys.features import build_extractor

MEDIA = Path(__file__).resolve().parents[1].parent / "shared/media"
CLIP = MEDIA / "video/bunny_640x360_24fps_aac.mp4"
STYLE = MEDIA / "style/starry_night.jpg"


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
    try:
        build_extractor(("relu1_1",), download=False)
        return "vgg19"
    except WeightsError:
        return "random"
