"""``videostyle keyframes``: the frames of a clip worth painting over (``temporal.paint.propose``
on the span's scan), written at the source's size as ``NNNN.png`` by frame number."""

from __future__ import annotations

from pathlib import Path

from videostyle.errors import InputError, OutputError, setting
from videostyle.io import durable
from videostyle.io.images import write_image
from videostyle.io.media import Span, probe
from videostyle.render.scan import ScanSpec, scan
from videostyle.temporal.paint import propose


def propose_frames(inp: Path, folder: Path, threshold: float, every: int, overwrite: bool,
                   spec: ScanSpec) -> list[tuple[int, Path]]:
    """The proposed frames' (index, file) once written into ``folder`` (created), from a scan of
    the whole clip as ``spec`` (a render's) says."""
    info = probe(inp)
    found = scan(inp, spec, Span(), info)
    if found is None or not found.frames:
        raise InputError(f"input {inp} has no video frames")
    chosen = propose(found.unreliable, found.cuts, threshold, every)
    digits = max(4, len(str(found.frames - 1)))
    paths = {i: folder / f"{i:0{digits}d}.png" for i in chosen}
    taken = [p for p in paths.values() if p.exists()]
    if taken and not overwrite:
        raise OutputError(f"{taken[0]} exists ({len(taken)} of the frames); pass {setting('overwrite')} to replace "
                          f"them, or choose another {setting('output')}")
    folder.mkdir(parents=True, exist_ok=True)
    for fr in Span().frames(inp, info=info):
        if fr.index in paths:
            tmp = paths[fr.index].with_name(f".{paths[fr.index].name}.partial.png")
            write_image(tmp, fr.image)
            durable.replace(tmp, paths[fr.index])
    return sorted(paths.items())
