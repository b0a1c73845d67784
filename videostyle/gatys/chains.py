"""K chains optimised as one batch: several frames, each from its own chain (a segment of a
clip), through VGG-19 together, each against its own targets and with its own optimiser state.

``stylize_together`` runs one optimisation for each of K requests (a ``Stylizer.stylize`` call
each: content, start, iterations, temporal terms, stop loss) as a (K, 3, H, W) batch: each
level's network pass is one call for all K images, the loss is ``chain_loss.ChainLoss`` (each
image's terms against its own Gram targets, style weight, temporal terms and regions) and the
optimiser ``chain_lbfgs.ChainLBFGS`` (or Adam, which is elementwise). Each image stops on its own
(its budget, its stop loss, the tolerance): a stopped image waits in the batch, masked out, until
the last one ends. An image whose optimisation diverges is run again alone, with the single
stylizer's line search. Each image's result is what ``Stylizer.stylize`` gives for it alone,
within float order (tests/test_chains.py).

``Lockstep`` is how chains that run on their own threads (``render.chains``) meet: each chain's
stylizer (``Member``) hands its request in and waits; once every chain still running has one
waiting, the last to arrive runs them together and hands each its result.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from videostyle.engine import TemporalTerm
from videostyle.errors import RenderInterrupted
from videostyle.gatys.chain_lbfgs import ChainLBFGS
from videostyle.gatys.chain_loss import ChainLoss, ChainTargets
from videostyle.gatys.specs import OptimSpec
from videostyle.gatys.runners import BACKTRACK, EXPLODE, EagerRunner
from videostyle.gatys.stylizer import Callback, Start, StylizeResult, Stylizer
from videostyle.gatys.tensors import resize, scaled_terms, to_tensor
from videostyle.report import STIterate


@dataclass(frozen=True)
class Request:
    """One ``Stylizer.stylize`` call of one chain, with the chain's stylizer (its styles,
    strength and regions)."""

    stylizer: Stylizer
    content: np.ndarray
    init: str | np.ndarray | None = None
    iterations: int | None = None
    temporal: Sequence[TemporalTerm] = ()
    pyramid: bool = True
    coarse: int = 0
    stop_loss: float | None = None
    seed: int | None = None
    callback: Callback | None = None

    def alone(self) -> StylizeResult:
        """The request run on its own, by the single stylizer."""
        return Stylizer.stylize(self.stylizer, self.content, self.init, iterations=self.iterations,
                                temporal=self.temporal, pyramid=self.pyramid, coarse=self.coarse,
                                stop_loss=self.stop_loss, seed=self.seed, callback=self.callback)


Outcome = StylizeResult | BaseException


Stop = Callable[[], bool]


def stylize_together(requests: Sequence[Request], stop: Stop = lambda: False, limit: int = 0) -> list[Outcome]:
    """Each request's result (or its error), the requests that can share a batch run as one:
    those with the same levels (sizes), loss terms and optimiser, at most ``limit`` at once (0:
    any number) and as many as fit the memory budget whole. ``stop()`` true ends the iterations
    with ``RenderInterrupted``."""
    out: list[Outcome | None] = [None] * len(requests)
    starts = []
    for i, r in enumerate(requests):
        try:
            st = r.stylizer
            starts.append((i, st._begin(r.content, r.init, r.iterations, r.temporal, r.pyramid, r.coarse, r.seed)))
        except Exception as exc:  # noqa: BLE001 - that chain's own error (a bad init, a tiny frame)
            out[i] = exc
    groups: dict[tuple[object, ...], list[tuple[int, Start]]] = {}
    for i, start in starts:
        groups.setdefault(_key(requests[i], start), []).append((i, start))
    for members in groups.values():
        size = _fitting(requests[members[0][0]].stylizer, members[0][1], min(limit or len(members), len(members)))
        for j in range(0, len(members), size):
            part = members[j:j + size]
            for (i, _), res in zip(part, _batch([requests[i] for i, _ in part], [s for _, s in part], stop)):
                out[i] = res
    return [o if o is not None else RuntimeError("no result") for o in out]


def _key(r: Request, start: Start) -> tuple[object, ...]:
    st = r.stylizer
    loss = dataclasses.replace(st.loss.spec, style_weight=0.0)  # (each image has its own)
    return (tuple(start.sizes), loss, st.optim.optimizer, st.optim.lr, len(st._regions), st.device)


def _fitting(st: Stylizer, start: Start, most: int) -> int:
    """The largest batch of at most ``most`` images of ``start``'s levels that fits whole (1: none)."""
    k = most
    while k > 1 and not all(st.fits_batch(hw, k) for hw in start.sizes):
        k //= 2
    return max(k, 1)


def _batch(reqs: list[Request], starts: list[Start], stop: Stop) -> list[Outcome]:
    """Requests that share a batch: as one (one alone: by the single stylizer)."""
    if len(reqs) == 1:
        return [_alone(r) for r in reqs]
    try:
        xs, runs = _levels(reqs, starts, stop)
    except torch.OutOfMemoryError:
        return [_alone(r) for r in reqs]
    out: list[Outcome] = []
    for k, r in enumerate(reqs):
        done, loss, losses, diverged = runs[k]
        if diverged or not bool(torch.isfinite(xs[k]).all()):
            out.append(_alone(r))  # (from its start, with the single stylizer's line search)
        else:
            out.append(StylizeResult(r.stylizer._end(xs[k:k + 1], r.content), done, loss, losses))
    return out


def _alone(r: Request) -> Outcome:
    try:
        return r.alone()
    except Exception as exc:  # noqa: BLE001 - handed to that chain's thread
        return exc


Run = tuple[int, float, dict[str, float], bool]  # iterations, loss, terms, diverged


def _levels(reqs: list[Request], starts: list[Start], stop: Stop) -> tuple[Tensor, list[Run]]:
    """The levels of one batch (each request's start and iterations): the images and each one's run."""
    st0 = reqs[0].stylizer
    sizes = starts[0].sizes
    x = torch.cat([s.x for s in starts])
    done = [0] * len(reqs)
    runs: list[Run] = []
    for level, hw in enumerate(sizes):
        last = level == len(sizes) - 1
        x = resize(x, hw).to(st0.device)
        content = resize(torch.cat([s.content for s in starts]), hw).to(st0.device)
        steps = np.array([s.steps[level] for s in starts])
        stops = [r.stop_loss if last and r.stop_loss is not None else math.nan for r in reqs]
        x, runs = _optimise(reqs, x, content, steps, np.array(stops, np.float64), level, len(sizes), stop)
        done = [d + run[0] for d, run in zip(done, runs)]
    return x, [(d, *run[1:]) for d, run in zip(done, runs)]  # type: ignore[misc]


def _targets(reqs: list[Request], hw: tuple[int, int], content: Tensor) -> tuple[ChainTargets, list[bool]]:
    """The K images' stacked targets at ``hw``, and whether each has temporal terms."""
    st0 = reqs[0].stylizer
    dev = st0.device
    with torch.no_grad():
        cf = {k: v.detach() for k, v in st0._features(content, st0.content_layers).items()}
    grams_k = [r.stylizer.style_targets(hw) for r in reqs]
    grams = {n: torch.cat([g[n] for g in grams_k]) for n in st0.style_layers}
    regions_k = [r.stylizer._region_terms(hw, g) for r, g in zip(reqs, grams_k)]
    regions = [(torch.cat([rk[j][0] for rk in regions_k]),
                {n: torch.cat([rk[j][1][n] for rk in regions_k]) for n in st0.style_layers})
               for j in range(len(regions_k[0]))]
    terms = [[t for t in scaled_terms(r.temporal, hw) if t.weight > 0] for r in reqs]
    temporal = []
    for j in range(max(map(len, terms), default=0)):
        tgt, mask, w = [], [], []
        for tk in terms:
            have = j < len(tk)
            tgt.append(to_tensor(tk[j].target) if have else torch.zeros(1, 3, *hw))
            mask.append(torch.from_numpy(np.ascontiguousarray(tk[j].mask, np.float32))[None, None] if have
                        else torch.zeros(1, 1, *hw))
            w.append(tk[j].weight if have else 0.0)
        temporal.append((torch.cat(tgt).to(dev), torch.cat(mask).to(dev), torch.tensor(w, device=dev)))
    sw = torch.tensor([r.stylizer.loss.spec.style_weight for r in reqs], device=dev)
    return ChainTargets(cf, grams, sw, temporal, regions), [bool(t) for t in terms]


def _optimise(reqs: list[Request], x0: Tensor, content: Tensor, steps: np.ndarray, stops: np.ndarray,
              level: int, levels: int, stop: Stop) -> tuple[Tensor, list[Run]]:
    """One level of the batch: each image's iterations, stop loss (NaN: none) and tolerance,
    each stopping on its own, masked out while the others go on."""
    st0 = reqs[0].stylizer
    o = st0.optim
    hw = (int(x0.shape[2]), int(x0.shape[3]))
    k = len(reqs)
    targets, has_temporal = _targets(reqs, hw, content)
    loss_fn = ChainLoss(st0.loss.spec)
    x = x0.detach().clone().contiguous().requires_grad_(True)
    keep = bool(np.isfinite(stops).any())
    out: list[tuple[Tensor, Tensor | None]] = []
    names: list[str] = []

    def closure() -> Tensor:
        x.grad = None
        image = x.detach().clone() if keep else None
        terms = loss_fn(x, st0._features(x, st0.loss.spec.layers), targets)
        names[:] = list(terms)
        parts = list(terms.values())
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        total.sum().backward()
        out.append((torch.stack([*(p.detach() for p in parts), total.detach()]), image))
        return total.detach()

    step = _stepper(o.optimizer, o.lr, x, closure, out)
    active = steps > 0
    first = np.full(k, math.nan)
    loss = np.full(k, math.nan)
    last: list[dict[str, float]] = [{} for _ in range(k)]
    done = np.zeros(k, np.int64)
    diverged = np.zeros(k, bool)
    history: list[np.ndarray] = []
    for i in range(1, max(int(steps.max()), 1) + 1):
        if stop():
            raise RenderInterrupted("interrupted")
        went = active.copy()
        values, kept = step(went)
        table = np.asarray(values.tolist(), np.float64)  # (terms + 1, K): the one read
        now = table[-1]
        history.append(now)
        if i == 1:
            first = now.copy()
            loss = now.copy()
            last = [_named(names, table[:-1, j], has_temporal[j]) for j in range(k)]
        for j in np.flatnonzero(went):
            loss[j] = now[j]
            last[j] = _named(names, table[:-1, j], has_temporal[j])
            done[j] = i
            cb = reqs[j].callback
            if cb is not None:
                cb(STIterate(i, int(steps[j]), level, levels, float(now[j]), last[j], hw))
        if not went.any():
            break
        active = _still(went, i, steps, now, first, history, table, names, stops, o, x, kept, diverged)
    with torch.no_grad():
        x.clamp_(0, 1)
    return x.detach(), [(int(done[j]), float(loss[j]), last[j], bool(diverged[j])) for j in range(k)]


def _named(names: list[str], values: np.ndarray, temporal: bool) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, values) if temporal or n != "temporal"}


def _still(went: np.ndarray, i: int, steps: np.ndarray, now: np.ndarray, first: np.ndarray,
           history: list[np.ndarray], table: np.ndarray, names: list[str], stops: np.ndarray, o: OptimSpec,
           x: Tensor, kept: Tensor | None, diverged: np.ndarray) -> np.ndarray:
    """Which of the images that took step ``i`` go on (``runners.iterate``'s rules, for each
    image at once); marks those that diverged and puts back the kept image of those that
    reached their stop loss."""
    grown = now - first
    with np.errstate(invalid="ignore"):
        blown = went & (~np.isfinite(now) | ((now > EXPLODE * first) & (grown > 1e-6)))
        end = went & ~blown & (i == steps)
        if end.any():
            worse = (grown > 1e-3 * first) & (grown > 1e-6) if o.optimizer == "lbfgs" else np.zeros_like(end)
            finite = np.asarray(torch.isfinite(x.detach()).reshape(x.shape[0], -1).all(1).tolist())
            blown |= end & (i > 2) & (worse | ~finite)
        diverged |= blown
        going = went & ~blown & ~end
        styled = sum((table[j] for j, n in enumerate(names) if n != "temporal"), np.zeros_like(now))
        stop = going & np.isfinite(stops) & (styled <= stops)
        if stop.any():
            assert kept is not None
            with torch.no_grad():
                m = torch.from_numpy(stop).to(x.device).view(-1, 1, 1, 1)
                x.copy_(torch.where(m, kept, x))
        going &= ~stop
        if o.tolerance > 0 and len(history) > o.tolerance_window:
            window = np.stack(history[-o.tolerance_window - 1:])
            rel = np.abs(window[:-1] - window[1:]) / np.maximum(np.abs(window[:-1]), 1e-12)
            going &= ~(rel.max(0) < o.tolerance)
    return going


Step = Callable[[np.ndarray], tuple[Tensor, "Tensor | None"]]


def _stepper(optimizer: str, lr: float, x: Tensor, closure: Callable[[], Tensor],
             out: list[tuple[Tensor, Tensor | None]]) -> Step:
    """A step for the active images: the values (terms + total, K) of the point it kept, and its image."""
    if optimizer == "lbfgs":
        opt = ChainLBFGS(x, lr=1.0, history_size=EagerRunner.history, backtrack=BACKTRACK)

        def step(active: np.ndarray) -> tuple[Tensor, Tensor | None]:
            out.clear()
            opt.step(closure, active)  # type: ignore[arg-type]
            return out[-1]  # (its last evaluation: the point a step back kept)

        return step
    adam = torch.optim.Adam([x], lr=lr)

    def adam_step(active: np.ndarray) -> tuple[Tensor, Tensor | None]:
        out.clear()
        before = x.detach().clone()
        adam.step(closure)  # type: ignore[arg-type]
        with torch.no_grad():
            x.clamp_(0, 1)
            m = torch.from_numpy(active).to(x.device).view(-1, 1, 1, 1)
            x.copy_(torch.where(m, x, before))
        return out[0]

    return adam_step


# ---------------------------------------------------------------- chains on their own threads


class Member(Stylizer):
    """One chain's stylizer (``Lockstep.member``): its own styles, strength and regions on the
    shared network; each ``stylize`` waits for the other chains' and runs with them."""

    _lockstep: Lockstep

    def stylize(self, content: np.ndarray, init: str | np.ndarray | None = None, *, iterations: int | None = None,
                temporal: Sequence[TemporalTerm] = (), pyramid: bool = True, coarse: int = 0,
                stop_loss: float | None = None, seed: int | None = None,
                callback: Callback | None = None) -> StylizeResult:
        return self._lockstep.submit(self, Request(self, content, init, iterations, temporal, pyramid, coarse,
                                                   stop_loss, seed, callback))

    def leave(self) -> None:
        """This chain is done: the others no longer wait for it."""
        self._lockstep.leave(self)


class Lockstep:
    """Where K chains' stylizers meet: a request waits until every chain still running has one
    waiting, then the last to arrive runs them all (``stylize_together``) and hands each its
    result (or its own error). ``cancel`` ends every wait with ``RenderInterrupted``."""

    def __init__(self, base: Stylizer, limit: int = 0) -> None:
        """``limit``: the most frames in one batch (0: every chain's); more chains than that take
        turns, each batch of them a step of all."""
        self._base, self._limit = base, limit
        self._cond = threading.Condition()
        self._live = 0
        self._pending: dict[int, Request] = {}
        self._results: dict[int, Outcome] = {}
        self._cancelled: str | None = None
        self.batches = 0  # batches run
        self.sizes: list[int] = []  # the requests each batch ran
        self.iterations = 0  # the iterations of every frame the batches ran (one per frame and step)

    def member(self) -> Member:
        m = self._base.sibling(Member)
        m._lockstep = self
        with self._cond:
            self._live += 1
        return m

    def submit(self, m: Member, req: Request) -> StylizeResult:
        key = id(m)
        with self._cond:
            self._check()
            self._pending[key] = req
            self._maybe_run()
            while key not in self._results:
                self._check()
                self._cond.wait()
            res = self._results.pop(key)
        if isinstance(res, BaseException):
            raise res
        return res

    def leave(self, m: Member) -> None:
        with self._cond:
            self._live -= 1
            self._maybe_run()

    def cancel(self, why: str) -> None:
        with self._cond:
            self._cancelled = why
            self._cond.notify_all()

    def _check(self) -> None:
        if self._cancelled is not None:
            raise RenderInterrupted(self._cancelled)

    def _maybe_run(self) -> None:
        """Run the waiting requests once every live chain has one (the lock held; released while
        they run: every other chain is waiting on it)."""
        if not self._pending or len(self._pending) < self._live:
            return
        batch, self._pending = self._pending, {}
        self._cond.release()
        try:
            try:
                got: list[Outcome] = stylize_together(list(batch.values()), lambda: self._cancelled is not None,
                                                      self._limit)
            except BaseException as exc:  # noqa: BLE001 - every chain of the batch gets it
                got = [exc] * len(batch)
        finally:
            self._cond.acquire()
        self.batches += 1
        self.sizes.append(len(batch))
        self.iterations += sum(r.iterations for r in got if isinstance(r, StylizeResult))
        self._results.update(zip(batch, got))
        self._cond.notify_all()
