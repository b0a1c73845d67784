"""docs/figures/paint_strip.jpg: the one-painting case of the paint benchmark as a picture: the
source frames a second apart, the painting of frame 0 and the frames carried from it by
``--paint``, and the same by EbSynth per frame (where ``ebsynth`` is on the PATH or in ``$EBSYNTH``).

    python -m benchmarks figure paint-strip [--clip ...] [--size 128] [--seconds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.figures import CLIP, OUT


def main(argv: list[str] | None = None) -> None:
    from benchmarks.scenarios import paint
    from videostyle import config as C
    from videostyle.engines import span
    from videostyle.factory import prepare_content
    from videostyle.io.media import probe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seconds", type=int, default=paint.SECONDS)
    ap.add_argument("--out", type=Path, default=OUT / "paint_strip.jpg")
    args = ap.parse_args(argv)
    fps = float(probe(args.clip).fps)
    n = int(round(args.seconds * fps))
    cfg = C.apply(C.Config(), {"optim.size": args.size, "render.max_frames": n})
    sources = [prepare_content(fr.image, args.size, "clip") for fr in span(cfg).frames(args.clip)]
    with tempfile.TemporaryDirectory() as tmp:
        _strip(args, Path(tmp), sources, fps, n, cfg)


def _strip(args: argparse.Namespace, work: Path, sources: list, fps: float, n: int, cfg: object) -> None:
    from benchmarks.scenarios import paint
    from videostyle import config as C
    from videostyle.io.images import write_image
    from videostyle.preview import contact_sheet

    files = [work / f"src_{i:04d}.png" for i in range(n)]
    for f, s in zip(files, sources):
        write_image(f, s)
    painting = paint.flat_painting(sources[0])
    write_image(work / "painting.png", painting)
    ours = paint.ours(args.clip, C.apply(cfg, {  # type: ignore[arg-type]
        "style.paintings": [f"f:0={work / 'painting.png'}"]}),
                      work / "ours.mkv")
    picks = [min(round(t * fps), n - 1) for t in range(args.seconds + 1)]
    rows = [("source", [sources[i] for i in picks]),
            ("the painting (frame 0), then videostyle --paint", [painting] + [ours[i] for i in picks[1:]])]
    exe = paint.ebsynth_path()
    if exe is not None:
        peer = paint.peer(exe, files, {0: work / "painting.png"}, work)
        rows.append(("the painting, then EbSynth per frame", [painting] + [peer[i] for i in picks[1:]]))
    write_image(args.out, contact_sheet(rows, max(args.size, 160), [f"{i / fps:.0f} s (frame {i})" for i in picks]))
    print(f"wrote {args.out}")
