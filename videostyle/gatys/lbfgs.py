"""L-BFGS for one image-sized parameter, one function evaluation per ``step``, without waiting on
the device.

``torch.optim.LBFGS`` (``max_iter=1``, no line search) takes the same steps, but it reads the
device about ``2 x history + 6`` times an iteration: ``add_(..., alpha=tensor)`` in its two-loop
recursion turns every history coefficient into a Python float, and its tolerance checks read
the loss and gradient. On a GPU each read drains the queue, so the device idles while the host
launches the next kernel, and an L-BFGS iteration cost a multiple of an Adam one (docs/benchmarks.md,
design figures). Here the coefficients stay on the device (``addcmul_`` with 0-d tensors) and the one
read an iteration is the curvature test ``y·s > 1e-10`` that decides whether the pair is kept.

The iterates equal torch's (tests/test_lbfgs.py); the tolerance checks are left out (the
stylizer has its own stopping rules), and ``history_dtype`` may keep the pairs in bf16 to halve
their memory, which tiled frames use.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor


class LBFGS:
    """``step(closure)``: evaluate the closure (loss and gradient at the current point), fold the
    last step's curvature pair into the history, and move along the two-loop direction with step
    ``lr``. It has the optimiser interface the stylizer uses (``param_groups``, ``zero_grad``,
    ``step``) without ``torch.optim.Optimizer`` as its base: the base's first call imports
    ``torch._dynamo``, a second or more at the start of every render, for hooks and state
    handling that one tensor does not need.

    Departures from ``torch.optim.LBFGS`` (``max_iter=1``, no line search); with
    ``first_step=None, backtrack=0`` its iterates are torch's as long as no curvature pair is
    rejected:

    - **A step taken without a curvature pair** (the first pair rejected) is scaled as a first
      step is; torch takes it at ``lr`` in gradient units, unscaled by any curvature.
    - **The first step** (``first_step``, off by default) moves the largest element by that
      much; torch scales it by ``1/|g|_1``, which on an image is a move of about
      ``1/numel`` per element. On the stylizer's image (elements in [0, 1], the network fed
      0-255 pixels) that is a hundredth of a grey level: under bf16 autocast the network's input
      does not change, the first curvature pair is rounding noise, and the second step, scaled
      by it, could throw the image far outside the basin (docs/guide/weights.md, "Why a render
      diverged").
    - **A safeguard**: when the loss at the new point rose above the last one (by more than
      ``rise`` relative), the step is taken back towards the last point (the minimiser of the
      quadratic through the two losses and the last slope, between a tenth and a half of the
      step) and the closure evaluated again, up to ``backtrack`` times. A step that lowers the
      loss costs nothing more; the reported loss never rises by more than ``rise``.
    """

    def __init__(self, params: list[Tensor], lr: float = 1.0, history_size: int = 50,
                 history_dtype: torch.dtype | None = None, first_step: float | None = None,
                 backtrack: int = 0, rise: float = 1e-3) -> None:
        params = list(params)
        if len(params) != 1 or not isinstance(params[0], Tensor):
            raise ValueError("LBFGS optimises exactly one tensor")
        self.param_groups: list[dict[str, Any]] = [{"params": params, "lr": lr}]
        self.history_size = history_size
        self.history_dtype = history_dtype
        self.first_step, self.backtrack, self.rise = first_step, backtrack, rise
        self._s: list[Tensor] = []  # steps x_{k+1} - x_k
        self._y: list[Tensor] = []  # gradient changes g_{k+1} - g_k
        self._ro: list[Tensor] = []  # 1 / (y·s), 0-d
        self._h_diag: Tensor | float = 1.0
        self._d: Tensor | None = None  # last direction
        self._t: Tensor | float = 1.0  # last step length
        self._gtd: Tensor | None = None  # the last point's slope along the last direction
        self._prev_grad: Tensor | None = None
        self._prev_loss: float | None = None
        self.backtracks = 0  # evaluations spent taking steps back, since this optimiser began

    @property
    def _x(self) -> Tensor:
        return self.param_groups[0]["params"][0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        x = self._x
        if x.grad is None:
            return
        if set_to_none:
            x.grad = None
        else:
            x.grad.detach_()
            x.grad.zero_()

    def _grad(self) -> Tensor:
        x = self._x
        return x.grad.reshape(-1).float() if x.grad is not None else torch.zeros(x.numel(), device=x.device)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        x = self._x
        g = self._grad()
        lr = self.param_groups[0]["lr"]
        if self._d is None:
            d = g.neg()
            t: Tensor | float = self._first(g, lr)
            self._prev_loss = float(loss) if self.backtrack else None
        else:
            assert self._prev_grad is not None
            y = g - self._prev_grad
            s = self._d * self._t
            ys = y.dot(s)
            if self.backtrack:  # (the same one read, with the loss and the last slope)
                read = torch.stack([ys, loss.detach().float(), self._gtd, torch.as_tensor(self._t).float()]).tolist()
                ys_f, now = read[0], read[1]
                if not now <= self._prev_loss + self.rise * abs(self._prev_loss):  # (True for a NaN)
                    loss, g, now = self._take_back(closure, *read[1:])
                    y = g - self._prev_grad
                    s = self._d * self._t
                    ys_f = float(y.dot(s))
                    ys = torch.as_tensor(ys_f, device=g.device)
                self._prev_loss = now
            else:
                ys_f = float(ys)  # the one read of the iteration
            if ys_f > 1e-10:
                if len(self._s) == self.history_size:
                    self._s.pop(0)
                    self._y.pop(0)
                    self._ro.pop(0)
                dt = self.history_dtype
                self._h_diag = ys / y.dot(y)
                self._s.append(s if dt is None else s.to(dt))
                self._y.append(y if dt is None else y.to(dt))
                self._ro.append(ys.reciprocal())
            del s, y  # with a bf16 history, the fp32 pair would double its newest entry at the peak
            self._d = None
            d = self._direction(g)
            # No pair yet (the first one was rejected): -g is not scaled by any curvature, so it
            # is a first step again rather than a step of lr in gradient units.
            t = lr if self._s else self._first(g, lr)
        if self._prev_grad is None:
            self._prev_grad = g.clone()
        else:
            self._prev_grad.copy_(g)
        # torch stops without moving when the direction is not one of descent (gtd > -tolerance,
        # tolerance -1 as the stylizer sets it); here the step is zeroed instead of read.
        gtd = g.dot(d)
        t = torch.where(gtd > 1.0, torch.zeros((), device=g.device), torch.as_tensor(t, device=g.device))
        self._d, self._t, self._gtd = d, t, gtd
        _move(x, d, t)
        return loss

    def _first(self, g: Tensor, lr: float) -> Tensor:
        """The step length of a step along -g without curvature: torch's ``min(1, 1/|g|_1) * lr``,
        or (``first_step``) the one that moves the largest element by ``first_step``."""
        if self.first_step is None:
            return torch.clamp(g.abs().sum().reciprocal(), max=1.0) * lr
        return self.first_step / g.abs().max().clamp_min(1e-30) * lr

    def _take_back(self, closure: Callable[[], Tensor], now: float, gtd: float,
                   t: float) -> tuple[Tensor, Tensor, float]:
        """The last step (length ``t`` from a point at loss ``_prev_loss`` with slope ``gtd``)
        taken back while the loss it reached (``now``) rose: the loss and gradient at the point
        kept, and that loss read."""
        assert self._d is not None and self._prev_loss is not None
        prev, x = self._prev_loss, self._x
        for _ in range(self.backtrack):
            # The minimiser of the quadratic through f(0) = prev, f'(0) = gtd and f(t) = now, kept
            # within [t/10, t/2]; a non-finite loss halves the step.
            curv = now - prev - gtd * t
            shorter = -gtd * t * t / (2 * curv) if math.isfinite(now) and curv > 0 else 0.5 * t
            shorter = min(max(shorter, 0.1 * t), 0.5 * t)
            _move(x, self._d, shorter - t)
            t = shorter
            self.backtracks += 1
            with torch.enable_grad():
                loss = closure()
            now = float(loss)
            if now <= prev + self.rise * abs(prev):
                break
        self._t = torch.as_tensor(t, device=self._d.device)
        return loss, self._grad(), now

    def _direction(self, g: Tensor) -> Tensor:
        """The two-loop recursion: -H·g with the stored pairs."""
        q = g.neg()
        al: list[Tensor] = [torch.zeros(())] * len(self._s)
        for i in range(len(self._s) - 1, -1, -1):
            s, y = self._s[i], self._y[i]
            al[i] = _dot(s, q) * self._ro[i]
            _axpy(q, y, -al[i])
        r = q.mul_(self._h_diag)
        for i in range(len(self._s)):
            s, y = self._s[i], self._y[i]
            be = _dot(y, r) * self._ro[i]
            _axpy(r, s, al[i] - be)
        return r


# Mixed-dtype (bf16 history, fp32 vector) products go by chunks of this many elements, so that no
# fp32 copy of a whole history vector is made: at 2048 px each would take 50 MB.
CHUNK = 1 << 22


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """a·b in fp32."""
    if a.dtype == b.dtype:
        return a.dot(b)
    return sum((a[i:i + CHUNK].float().dot(b[i:i + CHUNK]) for i in range(0, a.numel(), CHUNK)),
               torch.zeros((), device=b.device))


def _axpy(out: Tensor, v: Tensor, alpha: Tensor) -> None:
    """out += alpha * v, in place (alpha a 0-d tensor)."""
    if v.dtype == out.dtype:
        out.addcmul_(v, alpha)
        return
    for i in range(0, v.numel(), CHUNK):
        out[i:i + CHUNK].addcmul_(v[i:i + CHUNK].float(), alpha)


def _move(x: Tensor, d: Tensor, t: Tensor | float) -> None:
    """x += t * d (d flat, t a 0-d tensor or a float)."""
    if x.dtype == d.dtype and x.is_contiguous():
        if isinstance(t, Tensor):
            x.view(-1).addcmul_(d, t)  # no image-sized temporary
        else:
            x.view(-1).add_(d, alpha=t)
    else:
        x.add_((d * t).view_as(x).to(x.dtype))
