"""The default optimiser on a corpus of real contents and styles: does it reach its iterations
without diverging or restarting, and how fast does it get there?

Each case (content x style x size) runs with the optimiser as it is (``now``: torch's first
step, a rising step taken back), with L-BFGS as torch takes its steps (``torch``: first step
``1/|g|_1``, no step back), and with a first step that moves the largest pixel by 2/255 and the
step back. Per case: iterations reached, restarts, steps taken back, the final loss, seconds,
and the iterations ``now`` takes to reach the loss ``torch`` ended at, with its network
evaluations (an iteration is one, a step taken back one more) as a ratio to torch's: the time
to a given loss, free of what else the machine is doing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, whole
from benchmarks.media import SHARED

CONTENTS = {"astronaut": "content/astronaut.png", "chelsea": "content/chelsea.png",
            "bunny": "video/bunny_640x360_24fps_aac.mp4", "bikes": "video/bikes_640x272_noaudio.mp4"}
STYLES = ("starry_night", "the_scream", "great_wave", "shipwreck")


@contextlib.contextmanager
def variant(name: str, made: list[Any]) -> Iterator[None]:
    """The optimiser's first step and step back as ``name`` takes them (the module's settings,
    put back after), and every L-BFGS made meanwhile in ``made`` (for its steps taken back)."""
    import videostyle.gatys.runners as runners
    from videostyle.gatys.lbfgs import LBFGS

    steps = {"torch": (None, 0), "now": (runners.FIRST_STEP, runners.BACKTRACK),
             "first step 2/255": (2.0 / 255, runners.BACKTRACK)}[name]
    kept, real = (runners.FIRST_STEP, runners.BACKTRACK), LBFGS.__init__

    def init(opt: LBFGS, *a: Any, **k: Any) -> None:
        real(opt, *a, **k)
        made.append(opt)

    runners.FIRST_STEP, runners.BACKTRACK = steps
    LBFGS.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        runners.FIRST_STEP, runners.BACKTRACK = kept
        LBFGS.__init__ = real  # type: ignore[method-assign]


def content(ctx: Context, name: str) -> np.ndarray:
    import av

    from videostyle.io.images import read_image

    path = ctx.media()[0] if ctx.smoke else SHARED / CONTENTS[name]
    if path.suffix != ".mp4":
        return read_image(path, "content")
    with av.open(str(path)) as c:  # frame 0 of the clip
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def run(st: Any, img: np.ndarray, name: str) -> dict[str, Any]:
    made: list[Any] = []
    notes: list[str] = []
    st.notice, st._noticed = notes.append, set()
    log: list[tuple[int, float]] = []
    got: list[Any] = []
    with variant(name, made):
        secs = whole(lambda: got.append(st.stylize(img, callback=lambda it: log.append((it.i, it.loss)))), 1).median
    res = got[0]
    # A restart says so in a notice; the iteration count also starts again at each pyramid level
    # (a fresh image larger than --stroke-side runs coarse levels first), which is no restart.
    restarts = sum("diverged" in n for n in notes)
    starts = [k for k, (i, _) in enumerate(log) if i == 1]
    return {"its": res.iterations, "restarts": restarts, "back": sum(o.backtracks for o in made), "loss": res.loss,
            "s": secs, "log": log[starts[-1]:] if starts else log,
            "levels": max(1, len(starts) - restarts)}


def reach(log: list[tuple[int, float]], loss: float) -> int | None:
    """The first iteration at or below ``loss``."""
    return next((i for i, v in log if v <= loss), None)


def listed(ctx: Context, key: str, full: tuple[Any, ...], smoke: tuple[Any, ...], kind: type = str) -> tuple[Any, ...]:
    """``--set KEY=a,b``, else the full corpus (or the smoke run's one case)."""
    got = ctx.options.get(key)
    return tuple(kind(v) for v in got.split(",")) if got else ctx.pick(full, smoke)


def measure(ctx: Context) -> list[Row]:
    from videostyle import config as C
    from videostyle.engines import build_stylizer
    from videostyle.factory import prepare_content
    from videostyle.io.images import read_image

    styles = listed(ctx, "styles", STYLES, (None,))
    style_path = (lambda s: SHARED / "style" / f"{s}.jpg") if not ctx.smoke else (lambda s: ctx.media()[1])
    cfg = C.apply(C.Config(), {"style.images": [str(style_path(styles[0]))],
                               "optim.iterations": int(ctx.options.get("iterations", ctx.pick(40, 3))),
                               "render.precision": ctx.options.get("precision", "auto"),
                               "render.device": ctx.device, "model.name": ctx.pick("vgg19", "random")}, "bench")
    variants = listed(ctx, "variants", ("torch", "now", "first step 2/255"), ("torch", "now", "first step 2/255"))
    upscale = ctx.options.get("upscale", "") in ("1", "yes", "true")
    rows: list[Row] = []
    st = None
    for size in listed(ctx, "sizes", (256,), (64,), int):
        for c in listed(ctx, "contents", tuple(CONTENTS), ("clip",)):
            img = prepare_content(content(ctx, c), size, "content", upscale)
            for s in styles:
                st = build_stylizer(cfg, [read_image(style_path(s), "style")], lambda m: None, st)
                runs = {v: run(st, img, v) for v in variants}
                base = runs.get("torch") or runs[variants[0]]
                target, ref = base["loss"], reach(base["log"], base["loss"])
                for v, r in runs.items():
                    got = reach(r["log"], target)
                    rows.append({"content": c, "style": s or "smoke", "size": size, "precision": precision(st, img),
                                 "optimiser": v, "levels": r["levels"], "its": r["its"], "restarts": r["restarts"],
                                 "back": r["back"], "loss": r["loss"], "s": r["s"], "to": got if got else "not reached",
                                 # (every step taken back counted, also those after the loss was reached)
                                 "ratio": (got + r["back"]) / ref if got and ref else None})
    return rows


def precision(st: Any, img: np.ndarray) -> str:
    """The arithmetic the stylizer's network runs in at ``img``'s size (``auto`` resolved)."""
    from videostyle.device import resolve_precision

    dtype = resolve_precision(st.precision, st.device, img.shape[0] * img.shape[1])
    return {None: "fp32"}.get(dtype, str(dtype).replace("torch.", "").replace("bfloat16", "bf16"))


SCENARIOS = [
    Scenario("converge", "The default optimiser on real contents and styles",
             (Column("content", "content"), Column("style", "style"), Column("size", "size"),
              Column("precision", "precision"), Column("optimiser", "optimiser"), Column("levels", "levels"),
              Column("its", "iterations"),
              Column("restarts", "restarts"), Column("back", "steps back"), Column("loss", "final loss", "{:.4f}"),
              Column("s", "s", "{:.1f}"), Column("to", "iterations to torch's final loss"),
              Column("ratio", "evaluations to it, x torch's", "{:.2f}")),
             measure, "Frame 0 of both shared clips and both shared photos with each shared style at 256 px, 40 "
                      "iterations, the precision auto picks; --set sizes=256,512, iterations=N, contents=a,b, "
                      "styles=a,b, variants=torch,now, precision=fp32 or upscale=1 (each its own --set) narrow "
                      "it, the first variant the reference where torch is not run."),
]
