#!/usr/bin/env python
"""Host-side work on the stylizer's path: what a fast GPU would wait for.

On a GPU, a later video frame at 512 px is 20 iterations of about 4 ms; any host work on the
stylizer's thread (warm-start warping, saving the finished frame, kernel launches and
device-to-host reads inside each iteration) counts directly against the stylizer's busy
fraction. This measures that work on this machine's CPU:

1. per frame, at 512 px and 1080p: the warm-start init (warp + blend; numpy vs cv2.blendLinear)
   and the work-folder PNG save (inline vs handed to the encoding stage);
2. flow throughput with 1, 2 and 4 frames computed at once (``--flow-workers``);
3. per iteration: aten ops dispatched (each a kernel launch on CUDA) and device-to-host reads
   (each a full wait for the device), for L-BFGS and Adam, eager, as the stylizer runs them.

    python scripts/bench_host.py
"""

from __future__ import annotations

import collections
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import STYLE  # noqa: E402

from videostyle.engines import new_stylizer  # noqa: E402
from videostyle.config import Config, apply  # noqa: E402
from videostyle.temporal.flow import blend, warp  # noqa: E402
from videostyle.io.images import read_image  # noqa: E402
from videostyle.render.chain import save_frame  # noqa: E402
from videostyle.io.workdir import WorkDir  # noqa: E402


def median_ms(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


class Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def per_frame(tmp: Path, style_path: Path) -> None:
    import cv2

    style = read_image(style_path)
    print("| size | step on the stylizer's thread | before ms | now ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for h, w in ((288, 512), (1080, 1920)):
        src = cv2.resize(style, (w, h))
        prev = np.roll(src, 3, axis=1)
        flow = np.full((h, w, 2), 1.5, np.float32)
        mask = (rng.random((h, w)) > 0.1).astype(np.float32)

        def init_numpy() -> np.ndarray:
            warped, m = warp(prev, flow), mask[..., None]
            return (warped.astype(np.float32) * m + src.astype(np.float32) * (1 - m)).round().astype(np.uint8)

        a, b = median_ms(init_numpy), median_ms(lambda: blend(warp(prev, flow), src, mask))
        print(f"| {w}x{h} | warm-start init (warp + blend): numpy / cv2.blendLinear | {a:.1f} | {b:.1f} | {a / b:.1f}x |")
        store = WorkDir.at(tmp / f"w{w}")
        store.frames.mkdir(parents=True, exist_ok=True)
        n = [0]

        def inline() -> None:
            n[0] += 1
            save_frame(store, n[0], src, False, None)

        # The render hands finished frames to its encoding stage, which saves them.
        q: queue.Queue[Any] = queue.Queue(maxsize=2)

        def stage() -> None:
            while (item := q.get()) is not None:
                save_frame(store, item, src, False, None)

        saver = threading.Thread(target=stage)
        saver.start()

        def handed() -> None:
            n[0] += 1
            q.put(n[0])
            time.sleep(0.1)  # a frame's worth of stylizing, so the stage keeps up as in a render

        a = median_ms(inline)
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            handed()
            ts.append(time.perf_counter() - t - 0.1)
        q.put(None)
        saver.join()
        b = max(1e3 * statistics.median(ts), 1e-3)
        print(f"| {w}x{h} | work-folder PNG save: inline / on the encoding stage | {a:.1f} | {b:.2f} | {a / b:.0f}x |")


def flow_throughput(style_path: Path) -> None:
    import cv2
    from concurrent.futures import ThreadPoolExecutor

    from videostyle.temporal.flow import FlowParams, pair

    print()
    print("| size | flow workers | pairs/s (forward + backward + mask) | vs 1 worker |")
    print("| --- | --- | --- | --- |")
    style = read_image(style_path)
    for h, w in ((288, 512), (720, 1280)):
        frames = [np.roll(cv2.resize(style, (w, h)), 2 * i, axis=1) for i in range(9)]
        base = None
        for workers in (1, 2, 4):
            with ThreadPoolExecutor(workers) as ex:
                t = time.perf_counter()
                list(ex.map(lambda i: pair(frames[i + 1], frames[i], FlowParams()), range(8)))
                rate = 8 / (time.perf_counter() - t)
            base = base or rate
            print(f"| {w}x{h} | {workers} | {rate:.1f} | {rate / base:.2f}x |", flush=True)


def per_iteration() -> None:
    print()
    print("| optimizer | aten ops / iteration (kernel launches or views on CUDA) | host reads / iteration |")
    print("| --- | --- | --- |")
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    reads = [0]
    real_tolist = torch.Tensor.tolist

    def counting_tolist(self: torch.Tensor) -> Any:
        reads[0] += 1
        return real_tolist(self)

    for optimizer in ("lbfgs", "adam"):
        cfg = apply(Config(), {"model.name": "random", "optim.optimizer": optimizer, "render.precision": "fp32",
                               "render.device": "cpu"})
        st = new_stylizer(cfg)
        st.set_styles([img])
        st.stylize(img, "content", iterations=2)
        counts = []
        for its in (10, 30):  # the difference removes the per-frame setup
            reads[0] = 0
            torch.Tensor.tolist = counting_tolist  # type: ignore[method-assign]
            try:
                with Count() as c:
                    st.stylize(img, "content", iterations=its)
            finally:
                torch.Tensor.tolist = real_tolist  # type: ignore[method-assign]
            counts.append((sum(c.ops.values()), c.ops["aten._local_scalar_dense.default"] + reads[0]))
        ops = (counts[1][0] - counts[0][0]) / 20
        syncs = (counts[1][1] - counts[0][1]) / 20
        print(f"| {optimizer} | {ops:.0f} | {syncs:.1f} |")
    print("\n(Adam reads its step counter once an iteration: a CPU tensor, no wait for the device. "
          "With --cuda-graphs an Adam iteration is one graph replay and one read.)")


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", type=Path, default=STYLE, help="any picture: the frames are made from it")
    args = ap.parse_args()
    print(f"# host work, CPU {torch.get_num_threads()} threads, torch {torch.__version__}, median of 7")
    with tempfile.TemporaryDirectory() as tmp:
        per_frame(Path(tmp), args.style)
    flow_throughput(args.style)
    per_iteration()


if __name__ == "__main__":
    main()
