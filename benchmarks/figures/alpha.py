"""docs/figures/alpha.jpg: how a keyed frame goes through the network. A photo is cut out with a soft
matte, its hidden pixels filled with noise as a keyer leaves them; the figure shows the frame
over a checkerboard, the colour as stored, the colour the network sees (hidden pixels filled
from the visible ones) and the result over the checkerboard, against the same frame fed
premultiplied (hidden pixels black), whose dark fringe is what the fill avoids.

    python -m benchmarks figure alpha [--content ...] [--style ...] [-o docs/figures/alpha.jpg]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.figures import MEDIA, OUT
from videostyle.cli import main as cli
from videostyle.io import colour
from videostyle.io.images import read_image


def checker(h: int, w: int, n: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where(((yy // n) + (xx // n)) % 2 == 0, 200, 140).astype(np.float32)[..., None].repeat(3, -1)


def over(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) * a[..., None] + checker(*a.shape) * (1 - a[..., None])).astype(np.uint8)


def stylize(img: np.ndarray, style: Path, work: Path, name: str, args: argparse.Namespace) -> np.ndarray:
    src, out = work / f"{name}.png", work / f"{name}_out.png"
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert cli(["render", str(src), "--style", str(style), "-o", str(out), "--size", str(args.size),
                "--method", args.method, "--iterations", str(args.iterations), "-q", "-y"]) == 0
    return read_image(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--content", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--style", type=Path, default=MEDIA / "style/starry_night.jpg")
    ap.add_argument("-o", "--output", type=Path, default=OUT / "alpha.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--method", default="gatys")
    ap.add_argument("--iterations", type=int, default=150)
    args = ap.parse_args(argv)
    photo = cv2.resize(read_image(args.content), (args.size, args.size), interpolation=cv2.INTER_AREA)
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.clip((0.42 * min(h, w) - np.hypot(yy - h / 2, xx - w / 2)) / 14.0, 0.0, 1.0)  # a soft matte
    stored = photo.copy()
    stored[a == 0] = np.random.default_rng(0).integers(0, 256, ((a == 0).sum(), 3))
    alpha16 = np.round(a * 65535).astype(np.uint16)
    filled = colour.fill_transparent(stored, alpha16)
    premult = np.round(stored * a[..., None]).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        ours = stylize(filled, args.style, Path(tmp), "filled", args)
        theirs = stylize(premult, args.style, Path(tmp), "premult", args)
    row1 = [over(stored, a), stored, filled, over(ours, a)]
    row2 = [over(stored, a), premult, premult, over(theirs, a)]
    labels = ["the frame (over a checkerboard)", "its colour as stored", "what the network sees", "the result"]
    pad = 24
    sheet = np.full((2 * (h + pad), 4 * w, 3), 255, np.uint8)
    for r, (row, tag) in enumerate(((row1, "videostyle: straight colour, hidden pixels filled"),
                                    (row2, "premultiplied instead: hidden pixels black")), start=0):
        y0 = r * (h + pad) + pad
        for c, img in enumerate(row):
            sheet[y0:y0 + h, c * w:(c + 1) * w] = img
            if r == 0:
                cv2.putText(sheet, labels[c], (c * w + 4, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1,
                            cv2.LINE_AA)
        cv2.putText(sheet, tag, (4, y0 + h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(str(args.output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {args.output}")


