"""Host-side work on the stylizer's path: what a fast GPU would wait for. On a GPU a later frame
at 512 px is 20 iterations of a few milliseconds; any host work on the stylizer's thread counts
against its busy fraction. Measured on this machine's CPU: the warm-start init and the work
folder's save per frame, the flow's throughput per worker count, and per iteration the aten ops
dispatched (each a kernel launch on CUDA) and the device-to-host reads (each a wait)."""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks.harness import Column, Context, Row, Scenario, inner, whole

SIZES = ((288, 512), (1080, 1920))


def _picture(ctx: Context, h: int, w: int) -> np.ndarray:
    import cv2

    from videostyle.io.images import read_image

    return cv2.resize(read_image(ctx.media()[1]), (w, h))


def per_frame(ctx: Context) -> list[Row]:
    from videostyle.io.workdir import WorkDir
    from videostyle.render.chain import save_frame
    from videostyle.temporal.flow import blend, warp

    rng, rows = np.random.default_rng(0), []
    for h, w in ctx.pick(SIZES, ((36, 64),)):
        src = _picture(ctx, h, w)
        prev, flow = np.roll(src, 3, axis=1), np.full((h, w, 2), 1.5, np.float32)
        mask = (rng.random((h, w)) > 0.1).astype(np.float32)

        def init_numpy() -> np.ndarray:
            warped, m = warp(prev, flow), mask[..., None]
            return (warped.astype(np.float32) * m + src.astype(np.float32) * (1 - m)).round().astype(np.uint8)

        a = inner(init_numpy, ctx.seconds(1.0)).median
        b = inner(lambda: blend(warp(prev, flow), src, mask), ctx.seconds(1.0)).median
        rows.append({"size": f"{w}x{h}", "step": "warm-start init (warp + blend): numpy / cv2.blendLinear",
                     "before": a * 1e3, "now": b * 1e3, "ratio": a / b})
        store = WorkDir.at(ctx.work / f"w{w}")
        store.frames.mkdir(parents=True, exist_ok=True)
        n = [0]

        def inline() -> None:
            n[0] += 1
            save_frame(store, n[0], src, False, None)

        a = inner(inline, ctx.seconds(1.0)).median
        b = _handed(lambda i: save_frame(store, i, src, False, None), n, ctx.pick(7, 2))
        rows.append({"size": f"{w}x{h}", "step": "work-folder PNG save: inline / on the encoding stage",
                     "before": a * 1e3, "now": b * 1e3, "ratio": a / b})
    return rows


def _handed(save: Any, n: list[int], repeats: int) -> float:
    """Seconds the stylizer's thread spends handing a frame to the stage that saves it (the
    render's encoding stage), a frame's worth of stylizing (0.1 s) apart."""
    q: queue.Queue[Any] = queue.Queue(maxsize=2)

    def stage() -> None:
        while (item := q.get()) is not None:
            save(item)

    saver = threading.Thread(target=stage)
    saver.start()

    def handed() -> None:
        n[0] += 1
        q.put(n[0])
        time.sleep(0.1)

    t = whole(handed, repeats).median - 0.1
    q.put(None)
    saver.join()
    return max(t, 1e-6)


def flow_workers(ctx: Context) -> list[Row]:
    from videostyle.temporal.flow import FlowParams, pair

    rows = []
    for h, w in ctx.pick(((288, 512), (720, 1280)), ((36, 64),)):
        frames = [np.roll(_picture(ctx, h, w), 2 * i, axis=1) for i in range(9)]
        base = None
        for workers in (1, 2, 4):
            with ThreadPoolExecutor(workers) as ex:
                t = whole(lambda: list(ex.map(lambda i: pair(frames[i + 1], frames[i], FlowParams()), range(8))),
                          ctx.pick(3, 1)).median
            base = base or 8 / t
            rows.append({"size": f"{w}x{h}", "workers": workers, "rate": 8 / t, "vs": 8 / t / base})
    return rows


def per_iteration(ctx: Context) -> list[Row]:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from videostyle.config import Config, apply
    from videostyle.engines import new_stylizer

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: collections.Counter[str] = collections.Counter()

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            self.ops[str(func)] += 1
            return func(*args, **(kwargs or {}))

    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    reads, real_tolist, rows = [0], torch.Tensor.tolist, []

    def counting_tolist(self: torch.Tensor) -> Any:
        reads[0] += 1
        return real_tolist(self)

    for optimizer in ("lbfgs", "adam"):
        st = new_stylizer(apply(Config(), {"model.name": "random", "optim.optimizer": optimizer,
                                           "render.precision": "fp32", "render.device": "cpu"}))
        st.set_styles([img])
        st.stylize(img, "content", iterations=2)
        counts, runs = [], ctx.pick((10, 30), (2, 4))
        for its in runs:  # (the difference leaves out the per-frame setup)
            reads[0] = 0
            torch.Tensor.tolist = counting_tolist  # type: ignore[method-assign]
            try:
                with Count() as c:
                    st.stylize(img, "content", iterations=its)
            finally:
                torch.Tensor.tolist = real_tolist  # type: ignore[method-assign]
            counts.append((sum(c.ops.values()), c.ops["aten._local_scalar_dense.default"] + reads[0]))
        rows.append({"optimizer": optimizer, "ops": (counts[1][0] - counts[0][0]) / (runs[1] - runs[0]),
                     "reads": (counts[1][1] - counts[0][1]) / (runs[1] - runs[0])})
    return rows


SCENARIOS = [
    Scenario("host-frame", "Host work per frame on the stylizer's thread, before and now",
             (Column("size", "size"), Column("step", "step on the stylizer's thread"),
              Column("before", "before ms", "{:.1f}"), Column("now", "now ms", "{:.2f}"), Column("ratio", "ratio", "{:.1f}x")),
             per_frame, "A picture made from the style image; torch.utils.benchmark medians."),
    Scenario("host-flow", "Flow throughput per worker count",
             (Column("size", "size"), Column("workers", "flow workers"),
              Column("rate", "pairs/s (forward + backward + mask)", "{:.1f}"), Column("vs", "vs 1 worker", "{:.2f}x")),
             flow_workers, "8 pairs of shifted pictures, medians of 3 runs."),
    Scenario("host-ops", "Aten ops and host reads per iteration",
             (Column("optimizer", "optimizer"), Column("ops", "aten ops / iteration", "{:.0f}"),
              Column("reads", "host reads / iteration", "{:.1f}")),
             per_iteration, "Eager, as the stylizer runs them; the difference of a 30- and a 10-iteration run, over 20. "
                            "Adam reads its step counter once an iteration (a CPU tensor: no wait for the device)."),
]
