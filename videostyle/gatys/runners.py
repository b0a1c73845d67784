"""How an image is optimised, iteration by iteration: the runners (eager, by tiles, or
replayed from a CUDA graph) and the loop that stops a run early, at its stop loss or its
tolerance, or when it diverges. The Stylizer (``stylizer``) chooses a runner for each run."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from videostyle.engine import Callback
from videostyle.gatys.lbfgs import LBFGS
from videostyle.gatys.memory import map_large_blocks
from videostyle.gatys.tiles import ALIGN, TiledObjective
from videostyle.report import STIterate



class Stylizer(Protocol):
    """What the runners use of the stylizer that runs them (``stylizer.Stylizer``)."""

    device: torch.device
    optim: Any  # stylizer.OptimSpec
    loss: Any  # losses.PerceptualLoss
    _searched: set[tuple[int, int]]

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]: ...

    def loss_terms(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                   temporal: Sequence[tuple[Tensor, Tensor, float]]) -> dict[str, Tensor]: ...


# A loss this many times the iteration-1 loss means the optimiser has left the basin (L-BFGS
# without a line search can take a huge step when its curvature estimate is off).
EXPLODE = 10.0

# L-BFGS's safeguards (videostyle.gatys.lbfgs): a step whose loss rises is taken back up to
# BACKTRACK times. FIRST_STEP (a first step that moves the largest pixel by that much of the
# [0, 1] range; None: torch's 1/|g|_1) stays torch's: a first step of 2/255 reached lower losses
# on real frames (docs/benchmarks.md), but with the few iterations of a chain's fresh start it
# moved that frame away from its warm-started neighbours (a seam that flickered in
# tests/test_parallel.py), and it turns the gradient's float-order differences into visible
# steps. The step back alone recovers the step that a noise-scaled first pair throws out of the
# basin.
FIRST_STEP: float | None = None
BACKTRACK = 8


@dataclass(frozen=True)
class Run:
    """How one optimiser run ended."""

    done: int  # iterations run
    loss: float  # total loss at the last iteration
    losses: dict[str, float]  # weighted terms at the last iteration
    first: float  # total loss at iteration 1
    diverged: bool  # non-finite, exploded, or (L-BFGS) ended worse than it started


def iterate(st: Stylizer, runner: Runner, step: Callable[[], Tensor], iterations: int, stop_loss: float | None,
        level: int, levels: int, hw: tuple[int, int], callback: Callback | None) -> Run:
    """Run up to ``iterations`` steps; stop early at ``stop_loss`` or the tolerance, or at the
    iteration where the loss turns non-finite or explodes (then ``diverged``)."""
    o = st.optim
    last: dict[str, float] = {}
    history: list[float] = []
    loss = math.nan
    for i in range(1, iterations + 1):
        # The step's losses are those of the image it evaluated, before its update: with a stop
        # loss, that image is kept, so that a frame already as stylized as the first one (a
        # static shot) is not moved at all: moving it by one step a frame made a held frame drift
        # visibly over seconds (the drift benchmark).
        runner.keep = stop_loss is not None
        # One host read per iteration: the weighted terms and their total, stacked on the
        # device (reading each term apart would wait on the device once per term).
        values = step().tolist()
        if i == 1 and st.device.type == "cuda" and hw not in st._searched:
            # cuDNN's benchmark mode tries each convolution's algorithms on the first pass at
            # a new size, with workspaces as large as the free memory (tens of times what the
            # iterations themselves take; docs/benchmarks.md). Hand the cached workspace back, for other processes and the
            # tile planner's budget.
            st._searched.add(hw)
            torch.cuda.empty_cache()
        last = dict(zip(runner.names, values[:-1]))
        loss = values[-1]
        history.append(loss)
        if callback is not None:
            callback(STIterate(i, iterations, level, levels, loss, last, hw))
        grown = loss - history[0]  # (an absolute floor: a start at loss 0 is not "exploded" by 1e-9)
        if not math.isfinite(loss) or (loss > EXPLODE * history[0] and grown > 1e-6):
            return Run(i, loss, last, history[0], True)
        if i == iterations:
            # The last iteration: an image that ended worse than it started, or not finite,
            # is garbage even when no single step exploded.
            worse = o.optimizer == "lbfgs" and grown > 1e-3 * history[0] and grown > 1e-6  # Adam may climb first
            garbage = len(history) > 2 and (worse or not bool(torch.isfinite(runner.result()).all()))
            return Run(i, loss, last, history[0], garbage)
        # The stop compares the terms the first frame was scored on: a temporal term has no
        # counterpart there, so counting it would keep every frame that has one from stopping.
        if stop_loss is not None and sum(v for k, v in last.items() if k != "temporal") <= stop_loss:
            runner.restore(runner.kept)
            break
        if o.tolerance > 0 and len(history) > o.tolerance_window:
            window = history[-o.tolerance_window - 1:]
            rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(window, window[1:])]
            if max(rel) < o.tolerance:
                break
    return Run(len(history), loss, last, history[0] if history else math.nan, False)


@contextlib.contextmanager
def no_algorithm_search() -> Iterator[None]:
    """cuDNN's benchmark mode off, for tiles: the grid shifts each evaluation, so the border
    tiles change shape each time, and every new shape would start a search of all algorithms
    with workspaces as large as the free memory (seconds each, and the whole device's memory at
    its peak; docs/benchmarks.md)."""
    bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = bench


class Runner:
    """Runs optimiser iterations on an image; ``step()`` returns the weighted loss terms followed
    by their total, stacked on the device, evaluated at the image before the update."""

    names: list[str]  # the terms' names, in the order step() returns them

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        raise NotImplementedError

    def result(self) -> Tensor:
        raise NotImplementedError

    x: Tensor  # the image being optimised
    keep = False  # whether each step keeps a copy of the image it evaluated (``kept``)
    kept: Tensor

    def restore(self, image: Tensor) -> None:
        with torch.no_grad():
            self.x.copy_(image)


def stacked(runner: Runner, terms: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The total loss, and the terms followed by the total stacked for one host read (their
    names go to ``runner.names``)."""
    runner.names = list(terms)
    parts = list(terms.values())
    total = parts[0]
    for t in parts[1:]:
        total = total + t
    return total, torch.stack([*(t.detach() for t in parts), total.detach()])


class EagerRunner(Runner):
    # Curvature pairs L-BFGS keeps (each two image-sized vectors), and their dtype (None: fp32).
    history = 50
    history_dtype: torch.dtype | None = None

    def __init__(self, st: Stylizer, optimizer: str, lr: float, line_search: bool = False) -> None:
        self.st, self.optimizer, self.lr, self.line_search = st, optimizer, lr, line_search

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        x = self.x = x0.detach().clone().contiguous().requires_grad_(True)
        if self.optimizer == "lbfgs" and self.line_search:
            # One closure evaluation per step() (plus the line search's) so progress, early
            # stopping and the iteration count are exact; L-BFGS keeps its history across steps.
            opt: torch.optim.Optimizer | LBFGS = torch.optim.LBFGS(
                [x], lr=1.0, max_iter=1, history_size=self.history, tolerance_grad=-1, tolerance_change=-1,
                line_search_fn="strong_wolfe")
        elif self.optimizer == "lbfgs":
            # torch's steps without its ~2 x history device reads an iteration (videostyle.gatys.lbfgs).
            opt = LBFGS([x], lr=1.0, history_size=self.history, history_dtype=self.history_dtype,
                        first_step=FIRST_STEP, backtrack=BACKTRACK)
        else:
            opt = torch.optim.Adam([x], lr=self.lr)
        out: list[tuple[Tensor, Tensor | None]] = []  # each evaluation's values, and its image if kept
        evaluate = self.objective(x, content_feats, grams, temp)
        # The values of the point a step kept: its last evaluation where it may take a step back
        # (ours), its first where a line search evaluates points it then leaves.
        kept = -1 if isinstance(opt, LBFGS) else 0

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            image = x.detach().clone() if self.keep else None
            total, values = evaluate()
            out.append((values, image))
            return total

        def step() -> Tensor:
            out.clear()
            opt.step(closure)  # type: ignore[arg-type]
            if self.optimizer == "adam":
                with torch.no_grad():
                    x.clamp_(0, 1)
            values, image = out[kept]
            if image is not None:
                self.kept = image
            return values

        return step

    def objective(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                  temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], tuple[Tensor, Tensor]]:
        """A call that leaves the loss's gradient in ``x.grad`` and returns the total and the
        stacked terms and total."""

        def evaluate() -> tuple[Tensor, Tensor]:
            total, values = stacked(self, self.st.loss_terms(x, content_feats, grams, temp))
            total.backward()
            return total, values

        return evaluate

    def result(self) -> Tensor:
        with torch.no_grad():
            self.x.clamp_(0, 1)
        return self.x.detach()


class TiledRunner(EagerRunner):
    """Iterations on an image optimised by tiles (``optim.tile``): each evaluation takes the
    whole image's loss and gradient through a TiledObjective, with the tile grid shifted each
    time so that no tile edge stays in one place."""

    # At the frame sizes that need tiles, 50 pairs (the untiled history) would take more memory
    # than the tiles save (2 x 50 x 4 bytes per pixel and channel: 5 GB at 2048 px). On the real
    # network 5 pairs end within a fraction of a percent of 50 pairs' loss, closer than Adam
    # (docs/benchmarks.md, design figures).
    history = 5
    # The pairs in bf16: less peak memory for the same final loss to three figures
    # (the tiles benchmark with history_dtype set; docs/benchmarks.md).
    history_dtype = torch.bfloat16

    def __init__(self, st: Stylizer, optimizer: str, lr: float, content: Tensor, tile: int,
                 line_search: bool = False) -> None:
        super().__init__(st, optimizer, lr, line_search)
        self.content, self.core = content, tile - 2 * st.optim.tile_margin
        if content.device.type == "cpu":
            map_large_blocks()

    def objective(self, x: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                  temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], tuple[Tensor, Tensor]]:
        o = self.st.optim
        core = self.core
        obj = TiledObjective(self.st._features, self.st.loss.spec, self.content, grams, temp, core=core,
                             margin=o.tile_margin)
        calls = [0]

        def evaluate() -> tuple[Tensor, Tensor]:
            k = calls[0]
            calls[0] += 1
            with no_algorithm_search():
                terms, grad = obj(x, (k * 3 * ALIGN % core, k * 5 * ALIGN % core))
            x.grad = grad
            self.names = list(terms)
            total = sum(terms.values(), torch.zeros((), device=x.device))
            return total, torch.stack([*terms.values(), total])

        return evaluate


class GraphRunner(Runner):
    """Adam iterations replayed from a CUDA graph (``--cuda-graphs``).

    An iteration launches a few hundred small kernels (VGG forward and backward, Gram matrices,
    the Adam update); at video sizes on a fast GPU, launching them from Python takes about as
    long as running them. The graph is captured once per size and set of temporal weights, on
    static buffers: each frame copies its start image, content features and temporal targets
    into them and zeroes Adam's state in place, so the replayed kernels read the new frame.
    """

    def __init__(self, st: Stylizer, lr: float) -> None:
        self.st, self.lr = st, lr
        self.graph: torch.cuda.CUDAGraph | None = None
        self.grams: dict[str, Tensor] | None = None

    def _load(self, x0: Tensor, content_feats: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> None:
        with torch.no_grad():
            self.x.copy_(x0)
            for k, v in content_feats.items():
                self.content[k].copy_(v)
            for (tgt, m, _), (btgt, bm, _) in zip(temp, self.temp):
                btgt.copy_(tgt)
                bm.copy_(m)
            for state in self.opt.state.values():
                for v in state.values():
                    if isinstance(v, Tensor):
                        v.zero_()  # capturable Adam keeps its step count on the device too

    def start(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
              temp: Sequence[tuple[Tensor, Tensor, float]]) -> Callable[[], Tensor]:
        if self.graph is None:
            self._capture(x0, content_feats, grams, temp)
        self._load(x0, content_feats, temp)
        graph = self.graph
        assert graph is not None

        def step() -> Tensor:
            if self.keep:
                self.kept = self.x.detach().clone()
            graph.replay()
            return self.values

        return step

    def _capture(self, x0: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor],
                 temp: Sequence[tuple[Tensor, Tensor, float]]) -> None:
        self.grams = grams  # the graph reads these tensors: keep them alive with it
        self.x = x0.detach().clone().contiguous().requires_grad_(True)
        self.content = {k: v.detach().clone() for k, v in content_feats.items()}
        self.temp = [(t.detach().clone(), m.detach().clone(), wt) for t, m, wt in temp]
        self.opt = torch.optim.Adam([self.x], lr=self.lr, capturable=True)

        def body() -> Tensor:
            self.opt.zero_grad(set_to_none=False)
            total, values = stacked(self, self.st.loss_terms(self.x, self.content, grams, self.temp))
            total.backward()
            self.opt.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
            return values

        # Warm up on a side stream (cuDNN picks its algorithms, cuBLAS makes its handle and
        # workspace for that stream, Adam creates its state), as torch.cuda.graph requires, then
        # capture one iteration on the same stream.
        side = torch.cuda.Stream(self.x.device)
        side.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                body()
        torch.cuda.current_stream(self.x.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: decode, flow and encode go on in their threads while this one captures.
        with torch.cuda.graph(self.graph, stream=side, capture_error_mode="thread_local"):
            self.values = body()

    def result(self) -> Tensor:
        return self.x.detach().clone()
