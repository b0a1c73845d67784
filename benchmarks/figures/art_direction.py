"""The pictures of the README's art-direction section, from the shared media:

* docs/figures/keyframes_strip.jpg: the bunny clip rendered with two style keyframes (Starry Night at
  0.5 s, The Great Wave at 2.5 s, eased in over 1.5 s), frames at 0.5, 1.25, 1.75, 2.1 and 2.5 s
  with the style weights each was painted with;
* docs/figures/regions_frame.jpg: one frame with configs/regions-example.yaml's regions (the top band
  in The Great Wave, the ellipse kept, the rest in Starry Night): source | masks | result.

    python -m benchmarks figure art-direction [--size 256] [--model auto] [--method gatys]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.figures import CLIP, MEDIA, OUT, resolve_model

from videostyle.config import Config, apply, load
from videostyle.temporal.keyframes import schedule
from videostyle.render.pipeline import render_image, render_video
from videostyle.engines import render_spec
from videostyle.temporal.regions import Regions

from benchmarks.machine import ROOT


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def strip(args: argparse.Namespace, tmp: Path) -> None:
    a, b = MEDIA / "style/starry_night.jpg", MEDIA / "style/great_wave.jpg"
    images = [f"{a}@0.5", f"{b}@2.5"]
    cfg = apply(Config(), {"model.name": args.model, "style.images": images, "style.transitions": [0, 1.5],
                           "optim.size": args.size, "optim.iterations": 100, "optim.iterations_later": 12,
                           "render.duration": 2.6, "fast.method": args.method, "encode.crf": 12})
    out = tmp / "keyframes.mp4"
    render_video(CLIP, out, render_spec(cfg))
    times = (0.5, 1.25, 1.75, 2.1, 2.5)
    sc = schedule(images, (), (0, 1.5), (), 24.0)
    tiles = []
    with av.open(str(out)) as c:
        for f in c.decode(video=0):
            t = float(f.pts * f.time_base)
            if any(abs(t - x) < 0.5 / 24 for x in times):
                w = sc.weights(t)
                tiles.append(label(f.to_ndarray(format="rgb24"), f"{t:.2f}s  starry {w[0]:.2f} / wave {w[1]:.2f}"))
    sheet = np.concatenate(tiles, 1)
    dest = args.out / "keyframes_strip.jpg"
    cv2.imwrite(str(dest), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{dest}: {len(tiles)} frames")


def regions(args: argparse.Namespace, tmp: Path) -> None:
    with av.open(str(CLIP)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 48).to_ndarray(format="rgb24")
    src = tmp / "frame.png"
    cv2.imwrite(str(src), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    import os

    here = Path.cwd()
    os.chdir(ROOT)  # the example's paths are relative to the repository root
    try:
        cfg = apply(load("configs/regions-example.yaml"), {"model.name": args.model, "optim.size": args.size,
                                                           "fast.method": args.method})
        out = tmp / "regions.png"
        render_image(src, out, render_spec(cfg))
        fr = Regions(cfg.style.masks, cfg.style.mask_feather).frame(0, frame.shape[:2])
    finally:
        os.chdir(here)
    result = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    small = cv2.resize(frame, (result.shape[1], result.shape[0]), interpolation=cv2.INTER_AREA)
    h, w = result.shape[:2]
    colours = [(40, 120, 255), (255, 200, 40)]  # region styles, then the main style
    masks = np.zeros((frame.shape[0], frame.shape[1], 3), np.float32)
    for (m, slot), col in zip(fr.styled, colours):
        masks += m[..., None] * np.array(col, np.float32)
    if fr.keep is not None:
        masks += fr.keep[..., None] * 255 * 0.3
    masks = cv2.resize(np.clip(masks, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA)
    sheet = np.concatenate([label(small, "source"), label(masks, "wave | kept | starry"), label(result, "result")], 1)
    dest = args.out / "regions_frame.jpg"
    cv2.imwrite(str(dest), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(dest)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--method", default="gatys", choices=("gatys", "fast"))
    ap.add_argument("--only", choices=("strip", "regions"))
    ap.add_argument("--out", type=Path, default=OUT, help="the folder written")
    args = ap.parse_args(argv)
    args.model = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "regions":
            strip(args, Path(tmp))
        if args.only != "strip":
            regions(args, Path(tmp))

