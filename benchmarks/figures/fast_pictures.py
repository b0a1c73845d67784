"""docs/figures/before_after.jpg (a photo, the style and the fast engine's result side by side),
docs/figures/gatys_before_after.jpg (the photo, the style, Gatys with the defaults and the fast
engine) and docs/figures/clip_strip.jpg (four frames of the clip a second apart, above their
fast-stylized frames).

    python -m benchmarks figure fast-pictures [--content ...] [--style ...] [--clip ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.figures import CLIP, MEDIA, OUT, STYLE


def main(argv: list[str] | None = None) -> None:
    import cv2

    from videostyle.fast.network import FastStylizer
    from videostyle.io.images import read_image, to_uint8, write_image
    from videostyle.io.media import read_frames

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--style", type=Path, default=STYLE)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--gatys-size", type=int, default=384, help="the Gatys render's size (its default iterations)")
    args = ap.parse_args(argv)
    content, style = read_image(args.content), read_image(args.style)
    fast = FastStylizer("auto")
    fast.set_styles([style])
    h = 256

    def fit(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (round(img.shape[1] * h / img.shape[0]), h), interpolation=cv2.INTER_AREA)

    def stylized(img: np.ndarray, width: int) -> np.ndarray:
        return to_uint8(fast.stylize(cv2.resize(img, (width, round(width * img.shape[0] / img.shape[1])))))

    gap = np.full((h, 8, 3), 255, np.uint8)
    args.out.mkdir(parents=True, exist_ok=True)
    write_image(args.out / "before_after.jpg",
                np.concatenate([fit(content), gap, fit(style), gap, fit(stylized(content, 512))], axis=1))
    frames = [fr.image for i, fr in zip(range(97), read_frames(args.clip)) if i % 24 == 0][:4]
    top = np.concatenate([fit(f) for f in frames], axis=1)
    bottom = np.concatenate([fit(stylized(f, 384)) for f in frames], axis=1)
    strip = np.concatenate([top, np.full((8, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    write_image(args.out / "clip_strip.jpg", cv2.resize(strip, (1024, round(strip.shape[0] * 1024 / strip.shape[1])),
                                                        interpolation=cv2.INTER_AREA))
    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.factory import prepare_content

    st = new_stylizer(apply(Config(), {"optim.size": args.gatys_size}))
    st.set_styles([style])
    gatys = to_uint8(st.stylize(prepare_content(content, args.gatys_size, "content")).image)
    write_image(args.out / "gatys_before_after.jpg", np.concatenate(
        [fit(content), gap, fit(style), gap, fit(gatys), gap, fit(stylized(content, 512))], axis=1))
    print(f"wrote before_after.jpg, clip_strip.jpg and gatys_before_after.jpg in {args.out}")
