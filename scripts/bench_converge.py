#!/usr/bin/env python
"""The default optimiser on a corpus of real contents and styles: does it reach its iterations
without diverging or restarting, and how fast does it get there?

Each case (content x style x size) runs with the optimiser as it is (``now``: torch's first
step, a rising step taken back), with L-BFGS as torch takes its steps (``torch``: first step
``1/|g|_1``, no step back), and with a first step that moves the largest pixel by 2/255 and the
step back, one after the other.
Per case: iterations reached, restarts, steps taken back, the final loss, seconds, and the
iterations ``now`` takes to reach the loss ``torch`` ended at, with its network evaluations (an
iteration is one, a step taken back one more) as a ratio to torch's: the time to a given loss,
free of what else the machine is doing (seconds are printed too).

    python scripts/bench_converge.py --sizes 256 --iterations 60
    python scripts/bench_converge.py --sizes 512 --contents bunny --styles starry_night --precision bf16
    python scripts/bench_converge.py --sizes 1024 --upscale --iterations 12 --variants torch now --contents bunny
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np

import videostyle.gatys.runners as runners
from videostyle import config as C
from videostyle.engines import build_stylizer
from videostyle.factory import prepare_content
from videostyle.gatys.lbfgs import LBFGS
from videostyle.io.images import read_image

MEDIA = Path(__file__).resolve().parents[1].parent / "shared/media"
CONTENTS = {"astronaut": "content/astronaut.png", "chelsea": "content/chelsea.png",
            "bunny": "video/bunny_640x360_24fps_aac.mp4", "bikes": "video/bikes_640x272_noaudio.mp4"}
STYLES = ("starry_night", "the_scream", "great_wave", "shipwreck")
VARIANTS = {"torch": (None, 0), "now": (runners.FIRST_STEP, runners.BACKTRACK),
            "first step 2/255": (2.0 / 255, runners.BACKTRACK)}


def content(name: str) -> np.ndarray:
    path = MEDIA / CONTENTS[name]
    if path.suffix != ".mp4":
        return read_image(path, "content")
    with av.open(str(path)) as c:  # frame 0 of the clip
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


class Counting:
    """Counts the steps L-BFGS takes back, over every optimiser made while it is on."""

    def __init__(self) -> None:
        self.made: list[LBFGS] = []
        self.real = LBFGS.__init__

        def init(opt: LBFGS, *a: object, **k: object) -> None:
            self.real(opt, *a, **k)  # type: ignore[arg-type]
            self.made.append(opt)

        LBFGS.__init__ = init  # type: ignore[method-assign]

    @property
    def backtracks(self) -> int:
        return sum(o.backtracks for o in self.made)


def run(st, img: np.ndarray, variant: str, counting: Counting) -> dict[str, object]:
    runners.FIRST_STEP, runners.BACKTRACK = VARIANTS[variant]
    counting.made.clear()
    notes: list[str] = []
    st.notice, st._noticed = notes.append, set()
    log: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()
    res = st.stylize(img, callback=lambda it: log.append((it.i, it.loss, time.perf_counter() - t0)))
    # A restart says so in a notice; the iteration count also starts again at each pyramid level
    # (a fresh image larger than --stroke-side runs coarse levels first), which is no restart.
    restarts = sum("diverged" in n for n in notes)
    starts = [k for k, (i, _, _) in enumerate(log) if i == 1]
    last = log[starts[-1]:] if starts else log  # the full-size level's iterations: the losses compared
    return {"its": res.iterations, "restarts": restarts, "back": counting.backtracks, "loss": res.loss,
            "s": time.perf_counter() - t0, "log": last, "levels": max(1, len(starts) - restarts)}


def reach(log: list[tuple[int, float, float]], loss: float) -> tuple[int, float] | None:
    """The first iteration (and its seconds) at or below ``loss``."""
    return next(((i, s) for i, v, s in log if v <= loss), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--contents", nargs="+", default=list(CONTENTS))
    ap.add_argument("--styles", nargs="+", default=list(STYLES))
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--upscale", action="store_true", help="enlarge a content smaller than the size (the shared "
                    "contents are at most 640 px wide: 1024 px needs it)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    help="the optimisers to compare (torch is always run: it is the reference)")
    args = ap.parse_args()
    variants = ["torch", *[v for v in args.variants if v != "torch"]]
    cfg = C.apply(C.Config(), {"style.images": [str(MEDIA / "style" / f"{args.styles[0]}.jpg")],
                               "optim.iterations": args.iterations, "render.precision": args.precision}, "bench")
    counting = Counting()
    print(f"# {args.iterations} iterations, precision {args.precision}")
    print("| content | style | size | optimiser | levels | iterations | restarts | steps back | final loss | s | "
          "iterations to torch's final loss | evaluations to it, x torch's |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    st = None
    for size in args.sizes:
        for c in args.contents:
            img = prepare_content(content(c), size, "content", args.upscale)
            for s in args.styles:
                st = build_stylizer(cfg, [read_image(MEDIA / "style" / f"{s}.jpg", "style")], print, st)
                rows = {v: run(st, img, v, counting) for v in variants}
                target = rows["torch"]["loss"]
                for v, r in rows.items():
                    got = reach(r["log"], target)  # type: ignore[arg-type]
                    ref = reach(rows["torch"]["log"], target)  # type: ignore[arg-type]
                    to = f"{got[0]}" if got else "not reached"
                    # (every step taken back counted, also those after the loss was reached: an upper bound)
                    ratio = f"{(got[0] + r['back']) / ref[0]:.2f}" if got and ref else "-"
                    print(f"| {c} | {s} | {size} | {v} | {r['levels']} | {r['its']} | {r['restarts']} | {r['back']} | "
                          f"{r['loss']:.4f} | {r['s']:.1f} | {to} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
