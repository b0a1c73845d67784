"""Stroke size across output sizes: the same image rendered at --base px and at --large px, the
large one flat (--stroke-side 0) and coarse-to-fine from --base (--stroke-side base).

Prints, for each large render scaled down to the base size: its style loss there (against the
style at that size: do its strokes read as the style's at the base scale?) and its mean
difference from the base render (does it look like a larger base render?). Writes a picture:
base render | large flat | large from stroke side, all shown at the same size.

    python -m benchmarks figure stroke-size [--image ...] [--style ...] [--base 512] [--large 1024]
        [--iterations 40] [--out docs/figures/stroke_size.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from videostyle.engines import new_stylizer, configure
from videostyle.config import Config, apply
from videostyle.io.images import read_image, resize_image, to_uint8

from benchmarks.figures import MEDIA, OUT, STYLE, resolve_model
from benchmarks.harness import whole


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--style", type=Path, default=STYLE)
    ap.add_argument("--base", type=int, default=512)
    ap.add_argument("--large", type=int, default=1024)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--out", type=Path, default=OUT / "stroke_size.jpg")
    args = ap.parse_args(argv)
    model = resolve_model(args.model)
    src = read_image(args.image)
    h, w = src.shape[:2]

    def at(side: int) -> np.ndarray:
        f = side / max(h, w)
        return resize_image(src, (round(h * f), round(w * f))) if f <= 1 else cv2.resize(
            src, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)

    def render(side: int, stroke: int) -> tuple[np.ndarray, float]:
        cfg = apply(Config(), {"model.name": model, "optim.size": 0, "optim.iterations": args.iterations,
                               "style.stroke_side": stroke, "optim.tile": "off"})
        configure(st, cfg)
        got: list[np.ndarray] = []
        secs = whole(lambda: got.append(to_uint8(st.stylize(at(side)).image)), 1).median
        return got[0], secs

    st = new_stylizer(apply(Config(), {"model.name": model}))
    st.set_styles([read_image(args.style)])
    base_content = at(args.base)
    base, t_base = render(args.base, 0)
    print(f"# {args.image.name}, {args.style.name}, model {model}, {args.iterations} iterations per level")
    print("| render | seconds | style loss at base size | content loss at base size | diff. from base render |")
    print("| --- | --- | --- | --- | --- |")
    score = st.score(base, base_content)
    print(f"| {args.base} px | {t_base:.0f} | {score['style']:.4f} | {score['content']:.4f} | - |", flush=True)
    shown = [base]
    for name, stroke in (("flat", 0), (f"from {args.base} px", args.base)):
        out, secs = render(args.large, stroke)
        small = resize_image(out, base.shape[:2])
        score = st.score(small, base_content)
        diff = float(np.abs(small.astype(np.float32) - base.astype(np.float32)).mean() / 255)
        print(f"| {args.large} px, {name} | {secs:.0f} | {score['style']:.4f} | {score['content']:.4f} | {diff:.4f} |",
              flush=True)
        shown.append(small)
    if args.out:
        gap = np.full((base.shape[0], 8, 3), 255, np.uint8)
        sheet = np.concatenate([shown[0], gap, shown[1], gap, shown[2]], 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"\npicture: {args.out} ({args.base} px | {args.large} px flat | {args.large} px from {args.base} px, "
              f"all scaled to {args.base} px)")

