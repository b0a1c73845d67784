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

from typing import Callable

import torch
from torch import Tensor


class LBFGS(torch.optim.Optimizer):
    """``step(closure)``: evaluate the closure once (loss and gradient at the current point), fold
    the last step's curvature pair into the history, and move along the two-loop direction with
    step ``lr`` (on the first step ``min(1, 1/|g|_1) * lr``, as torch does)."""

    def __init__(self, params: list[Tensor], lr: float = 1.0, history_size: int = 50,
                 history_dtype: torch.dtype | None = None) -> None:
        super().__init__(params, {"lr": lr})
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("LBFGS optimises exactly one tensor")
        self.history_size = history_size
        self.history_dtype = history_dtype
        self._s: list[Tensor] = []  # steps x_{k+1} - x_k
        self._y: list[Tensor] = []  # gradient changes g_{k+1} - g_k
        self._ro: list[Tensor] = []  # 1 / (y·s), 0-d
        self._h_diag: Tensor | float = 1.0
        self._d: Tensor | None = None  # last direction
        self._t: Tensor | float = 1.0  # last step length
        self._prev_grad: Tensor | None = None

    @property
    def _x(self) -> Tensor:
        return self.param_groups[0]["params"][0]

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        x = self._x
        g = x.grad.reshape(-1).float() if x.grad is not None else torch.zeros(x.numel(), device=x.device)
        lr = self.param_groups[0]["lr"]
        if self._d is None:
            d = g.neg()
            # torch: t = min(1, 1/|g|_1) * lr, a tensor when 1/|g|_1 < 1
            t: Tensor | float = torch.clamp(g.abs().sum().reciprocal(), max=1.0) * lr
        else:
            assert self._prev_grad is not None
            y = g - self._prev_grad
            s = self._d * self._t
            ys = y.dot(s)
            if float(ys) > 1e-10:  # the one read of the iteration
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
            t = lr
        if self._prev_grad is None:
            self._prev_grad = g.clone()
        else:
            self._prev_grad.copy_(g)
        # torch stops without moving when the direction is not one of descent (gtd > -tolerance,
        # tolerance -1 as the stylizer sets it); here the step is zeroed instead of read.
        gtd = g.dot(d)
        t = torch.where(gtd > 1.0, torch.zeros((), device=g.device), torch.as_tensor(t, device=g.device))
        self._d, self._t = d, t
        if x.dtype == d.dtype and x.is_contiguous():
            x.view(-1).addcmul_(d, t)  # no image-sized temporary
        else:
            x.add_((d * t).view_as(x).to(x.dtype))
        return loss

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
