"""The sample media and example configs that ship inside the package (``samples/SOURCES.md`` has
each file's source and licence), for a first render with nothing to bring: ``videostyle demo``
renders from them, ``videostyle examples DIR`` copies them out with configs that point at the
copies, and ``--config preview`` names a shipped preset from anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"
CONFIGS = PACKAGE / "configs"
CLIP = SAMPLES / "bunny.mp4"
PAINTINGS = ("cafe_terrace.jpg", "night_cafe.jpg", "church_auvers.jpg")


def preset(name: str) -> Path | None:
    """A shipped config named without its folder and suffix (``preview``), or None."""
    if "/" in name or "\\" in name:
        return None
    p = CONFIGS / (name if name.endswith(".yaml") else f"{name}.yaml")
    return p if p.is_file() else None


def copy_examples(folder: Path, overwrite: bool = False) -> list[Path]:
    """The samples into ``folder/samples`` and the configs into ``folder/configs``, their paths
    rewritten to the copies (the repository's point into the package); returns what was written.
    Existing files are kept unless ``overwrite``."""
    written = []
    for src in sorted(SAMPLES.iterdir()):
        if src.suffix in (CLIP.suffix, ".jpg", ".md"):
            written += _copy(src, folder / "samples" / src.name, overwrite)
    for src in sorted(CONFIGS.rglob("*")):
        if src.is_file() and src.suffix in (".yaml", ".png"):
            dst = folder / "configs" / src.relative_to(CONFIGS)
            if src.suffix == ".yaml":
                text = src.read_text().replace("videostyle/samples/", "samples/")
                written += _write(dst, text, overwrite)
            else:
                written += _copy(src, dst, overwrite)
    return written


def _copy(src: Path, dst: Path, overwrite: bool) -> list[Path]:
    if dst.exists() and not overwrite:
        return []
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return [dst]


def _write(dst: Path, text: str, overwrite: bool) -> list[Path]:
    if dst.exists() and not overwrite:
        return []
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return [dst]
