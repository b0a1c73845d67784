"""L-BFGS for K independent images stacked in one tensor (K chains in lockstep,
``gatys.chains``): each image keeps its own curvature pairs, diagonal scaling, step length and
safeguard, and the iteration runs as batched tensor operations with no Python loop over the
images.

Image ``k``'s iterates are those of :class:`videostyle.gatys.lbfgs.LBFGS` on image ``k`` alone
(tests/test_chains.py), within float order: the dot products are batched (K of them in one
call) and the step lengths are float32 tensors. Where that optimiser decides per image on the
host (a curvature pair kept or not, a step taken back), this one decides for all K images from
one read of a (K, 4) table an iteration.

- **Pairs kept per image.** Each history entry holds all K images' pairs; an image whose pair
  was rejected (or that was masked out) gets zeros there (``ro = 0``: the two-loop recursion
  skips it). An image past ``history_size`` pairs has its oldest one zeroed; an entry no image
  holds any more is dropped.
- **Masked images.** ``step(closure, active)``: an inactive image (a chain that stopped early)
  is evaluated with the others but does not move and keeps no pair.
- **The safeguard** (``backtrack``): the images whose loss rose are taken back together, and the
  closure is evaluated again for the whole batch; the others' values at their unchanged point
  are the ones they had.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


def bdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products of two (K, D) tensors: (K,)."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


class ChainLBFGS:
    """``step(closure, active)``: evaluate the closure (each image's loss, (K,), with the sum's
    gradient in ``x.grad``), fold the last step's curvature pairs into the history, and move each
    active image along its own two-loop direction."""

    def __init__(self, x: Tensor, lr: float = 1.0, history_size: int = 50, backtrack: int = 0,
                 rise: float = 1e-3) -> None:
        self.x, self.lr, self.history_size = x, lr, history_size
        self.backtrack, self.rise = backtrack, rise
        k = x.shape[0]
        self.k = k
        dev = x.device
        self._s: list[Tensor] = []  # (K, D) each
        self._y: list[Tensor] = []
        self._ro: list[Tensor] = []  # (K,): 1 / (y·s), or 0 where that image kept no pair
        self._real: list[np.ndarray] = []  # (K,) bool: which images' pairs an entry holds
        self._count = np.zeros(k, np.int64)  # pairs each image holds
        self._h_diag = torch.ones(k, device=dev)
        self._d: Tensor | None = None
        self._t = torch.ones(k, device=dev)
        self._gtd = torch.zeros(k, device=dev)
        self._prev_grad: Tensor | None = None
        self._prev_loss = np.zeros(k)
        self.backtracks = 0

    def _grad(self) -> Tensor:
        x = self.x
        if x.grad is None:
            return torch.zeros(self.k, x[0].numel(), device=x.device)
        return x.grad.reshape(self.k, -1).float()

    def _first(self, g: Tensor) -> Tensor:
        """torch's first step length, per image: ``min(1, 1/|g|_1) * lr``."""
        return torch.clamp(g.abs().sum(1).reciprocal(), max=1.0) * self.lr

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor], active: np.ndarray) -> Tensor:
        with torch.enable_grad():
            loss = closure()
        g = self._grad()
        if self._d is None:
            d = g.neg()
            t = self._first(g)
            if self.backtrack:
                self._prev_loss = np.asarray(loss.float().tolist(), np.float64)
        else:
            assert self._prev_grad is not None
            y = g - self._prev_grad
            s = self._d * self._t.unsqueeze(1)
            ys = bdot(y, s)
            if self.backtrack:
                read = np.asarray(torch.stack([ys, loss.detach().float(), self._gtd, self._t]).tolist(), np.float64)
                ys_f, now = read[0], read[1]
                prev = self._prev_loss
                rose = active & ~(now <= prev + self.rise * np.abs(prev))  # (True for a NaN)
                if rose.any():
                    loss, g, now = self._take_back(closure, rose, now, read[2], read[3])
                    y = g - self._prev_grad
                    s = self._d * self._t.unsqueeze(1)
                    ys = bdot(y, s)
                    ys_f = np.asarray(ys.tolist(), np.float64)
                self._prev_loss = now
            else:
                ys_f = np.asarray(ys.tolist(), np.float64)  # the one read of the iteration
            self._keep_pairs(active & (ys_f > 1e-10), s, y, ys)
            del s, y
            d = self._direction(g)
            # No pair yet: -g is not scaled by any curvature, so it is a first step again.
            has = torch.from_numpy(self._count > 0).to(g.device)
            t = torch.where(has, torch.full_like(self._t, self.lr), self._first(g))
        if self._prev_grad is None:
            self._prev_grad = g.clone()
        else:
            self._prev_grad.copy_(g)
        gtd = bdot(g, d)
        moving = torch.from_numpy(active).to(g.device) & ~(gtd > 1.0)  # (see lbfgs.LBFGS.step)
        t = torch.where(moving, t, torch.zeros_like(t))
        self._d, self._t, self._gtd = d, t, gtd
        self.x.view(self.k, -1).addcmul_(d, t.unsqueeze(1))
        return loss

    def _keep_pairs(self, keep: np.ndarray, s: Tensor, y: Tensor, ys: Tensor) -> None:
        """Fold the pairs of the images in ``keep`` into the history (the others get zeros)."""
        if not keep.any():
            return
        m = torch.from_numpy(keep).to(s.device)
        self._h_diag = torch.where(m, ys / bdot(y, y), self._h_diag)
        col = m.unsqueeze(1)
        self._s.append(torch.where(col, s, torch.zeros((), device=s.device)))
        self._y.append(torch.where(col, y, torch.zeros((), device=s.device)))
        self._ro.append(torch.where(m, ys.reciprocal(), torch.zeros((), device=s.device)))
        self._real.append(keep.copy())
        self._count += keep
        need = self._count > self.history_size  # their oldest pair goes
        for j, real in enumerate(self._real):
            if not need.any():
                break
            drop = need & real
            if drop.any():
                dm = torch.from_numpy(drop).to(s.device)
                self._s[j][dm] = 0
                self._y[j][dm] = 0
                self._ro[j].masked_fill_(dm, 0)
                real &= ~drop
                self._count -= drop
                need &= ~drop
        while self._real and not self._real[0].any():
            self._s.pop(0)
            self._y.pop(0)
            self._ro.pop(0)
            self._real.pop(0)

    def _take_back(self, closure: Callable[[], Tensor], rising: np.ndarray, now: np.ndarray, gtd: np.ndarray,
                   t: np.ndarray) -> tuple[Tensor, Tensor, np.ndarray]:
        """The last step taken back, for the images in ``rising``, while their loss rose (see
        ``lbfgs.LBFGS._take_back``): the losses and gradients at the points kept, and the losses read."""
        assert self._d is not None
        prev = self._prev_loss
        rising, now, t = rising.copy(), now.copy(), t.copy()
        loss = torch.as_tensor(now, dtype=torch.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(self.backtrack):
                curv = now - prev - gtd * t
                quad = np.where(np.isfinite(now) & (curv > 0), -gtd * t * t / (2 * curv), 0.5 * t)
                shorter = np.minimum(np.maximum(quad, 0.1 * t), 0.5 * t)
                delta = np.where(rising, shorter - t, 0.0)
                self.x.view(self.k, -1).addcmul_(self._d, torch.as_tensor(delta, dtype=self._d.dtype,
                                                                             device=self._d.device).unsqueeze(1))
                t = np.where(rising, shorter, t)
                self.backtracks += int(rising.sum())
                with torch.enable_grad():
                    loss = closure()
                read = np.asarray(loss.float().tolist(), np.float64)
                now = np.where(rising, read, now)
                rising &= ~(read <= prev + self.rise * np.abs(prev))
                if not rising.any():
                    break
        self._t = torch.as_tensor(t, dtype=self._d.dtype, device=self._d.device)
        return loss, self._grad(), now

    def _direction(self, g: Tensor) -> Tensor:
        """The two-loop recursion, per image: -H·g with each image's stored pairs."""
        q = g.neg()
        al: list[Tensor] = [torch.zeros(())] * len(self._s)
        for i in range(len(self._s) - 1, -1, -1):
            al[i] = bdot(self._s[i], q) * self._ro[i]
            q.addcmul_(self._y[i], al[i].neg().unsqueeze(1))
        r = q.mul_(self._h_diag.unsqueeze(1))
        for i in range(len(self._s)):
            be = bdot(self._y[i], r) * self._ro[i]
            r.addcmul_(self._s[i], (al[i] - be).unsqueeze(1))
        return r
