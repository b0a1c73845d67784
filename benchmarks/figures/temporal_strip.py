"""docs/figures/temporal_strip.jpg: six consecutive frames of the clip (source above) rendered
with warped warm starts and the temporal loss at the config's weight (below), to be checked by
eye for ghosting and smearing.

    python -m benchmarks figure temporal-strip [--clip ...] [--style ...] [--size 256] [--start 24]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.figures import OUT, media_parser, resolve_model


def frames_at(path: Path, start: int, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    from videostyle.io.media import read_frames

    got = []
    for i, f in enumerate(read_frames(path)):
        if i >= start:
            got.append(cv2.resize(f.image, size, interpolation=cv2.INTER_AREA))
        if len(got) == n:
            break
    return got


def main(argv: list[str] | None = None) -> None:
    from videostyle.config import Config, apply
    from videostyle.engines import render_spec
    from videostyle.io.images import write_image
    from videostyle.io.media import probe
    from videostyle.render.pipeline import render_video

    ap = media_parser(__doc__, frames=30, size=256)
    ap.add_argument("--start", type=int, default=24)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--out", type=Path, default=OUT / "temporal_strip.jpg")
    args = ap.parse_args(argv)
    cfg = apply(Config(), {"model.name": resolve_model(args.model), "style.images": [str(args.style)],
                           "optim.size": args.size, "optim.iterations": 50, "optim.iterations_later": 10,
                           "render.max_frames": args.start + 6, "temporal.init_later": "prev-warped", "encode.crf": 12})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mkv"
        render_video(args.clip, out, render_spec(cfg))
        info = probe(out)
        wh = (info.width, info.height)
        src, sty = frames_at(args.clip, args.start, 6, wh), frames_at(out, args.start, 6, wh)
    write_image(args.out, np.concatenate([np.concatenate(src, 1), np.concatenate(sty, 1)], 0))
    print(f"wrote {args.out} (frames {args.start}-{args.start + 5})")
