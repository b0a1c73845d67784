"""Tune the style weight on the real network: a grid of style weights on both photos and all four
paintings of ../shared/media.

For each (photo, painting, style weight) it prints the final content and style losses (each term
unweighted: relative squared errors, see losses.relative_mse), the edge correlation with the
photo (Pearson correlation of Sobel gradient magnitudes: how recognisable the content stays) and
s/iteration, then medians per style weight over all pairs. A contact sheet (rows: pairs,
columns: photo, then one per weight) goes to docs/figures/tune_weights.jpg.

    python -m benchmarks figure tune-weights [--size 192] [--iterations 100] [--weights 0.3,1,3,10]
    python -m benchmarks figure tune-weights --weights 1 --tv-weights 0,1,10,100 --only astronaut,chelsea,starry_night
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import cv2
import numpy as np

from videostyle.engines import new_stylizer, configure
from videostyle.config import Config, apply
from videostyle.io.images import read_image, to_uint8
from videostyle.report import STIterate

from benchmarks.figures import MEDIA, OUT
from benchmarks.harness import whole


def edges(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 1.0)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).ravel()


def edge_correlation(result: np.ndarray, content: np.ndarray) -> float:
    """Pearson correlation of the Sobel gradient magnitudes of two RGB uint8 images."""
    return float(np.corrcoef(edges(result), edges(content))[0, 1])


def fit(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    f = side / max(h, w)
    return cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else img


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--weights", default="0.3,1,3,10", help="style weights (content weight 1)")
    ap.add_argument("--tv-weights", default="", help="TV weights to cross with the style weights (default: the config's)")
    ap.add_argument("--only", default="", help="comma-separated stems of photos/paintings to keep (default: all)")
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--sheet", type=Path, default=OUT / "tune_weights.jpg")
    args = ap.parse_args(argv)
    base: dict[str, object] = {"optim.size": args.size, "optim.iterations": args.iterations}
    tvs = [float(t) for t in args.tv_weights.split(",")] if args.tv_weights else [Config().style.tv_weight]
    weights = [(float(w), tv) for w in args.weights.split(",") for tv in tvs]
    only = set(filter(None, args.only.split(",")))
    photos = [p for p in sorted((args.media / "content").glob("*.png")) if not only or p.stem in only]
    paintings = [p for p in sorted((args.media / "style").glob("*.jpg")) if not only or p.stem in only]
    stylizer = new_stylizer(apply(Config(), base))
    print(f"# model vgg19 (embedded), {args.size} px, {args.iterations} L-BFGS iterations, content weight 1, "
          f"precision {stylizer.precision}")
    print("| photo | painting | style weight | tv weight | content loss | style loss | edge corr. | s/iter |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows: list[np.ndarray] = []
    stats: dict[tuple[float, float], list[tuple[float, float, float, float]]] = {w: [] for w in weights}
    for photo in photos:
        content = fit(read_image(photo), args.size)
        for painting in paintings:
            stylizer.set_styles([read_image(painting)])
            row = [content]
            for w, tv in weights:
                configure(stylizer, apply(Config(), {**base, "style.style_weight": w, "style.tv_weight": tv}))
                seen: list[STIterate] = []
                got: list[object] = []
                secs = whole(lambda: got.append(stylizer.stylize(content, callback=seen.append)), 1).median
                res = got[0]
                per_iter = secs / max(1, res.iterations)
                out = to_uint8(res.image)
                c = res.losses["content"] / stylizer.loss.spec.content_weight
                s = res.losses["style"] / w
                e = edge_correlation(out, content)
                stats[(w, tv)].append((c, s, e, per_iter))
                row.append(out)
                print(f"| {photo.stem} | {painting.stem} | {w:g} | {tv:g} | {c:.3f} | {s:.3f} | {e:.2f} | "
                      f"{per_iter:.3f} |", flush=True)
            rows.append(np.concatenate(row, axis=1))
    print()
    print("| style weight | tv weight | median content loss | median style loss | median edge corr. | min edge corr. "
          "| s/iter |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (w, tv), vals in stats.items():
        c, s, e, t = zip(*vals)
        print(f"| {w:g} | {tv:g} | {statistics.median(c):.3f} | {statistics.median(s):.3f} | {statistics.median(e):.2f} | "
              f"{min(e):.2f} | {statistics.median(t):.3f} |")
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows])
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"\ncontact sheet: {args.sheet} (rows: photo x painting; columns: photo, then (style, tv) weights {weights})")

