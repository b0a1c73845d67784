"""videostyle.gatys.lbfgs against torch.optim.LBFGS: the same iterates, without the device reads."""

from __future__ import annotations

import pytest
import torch

from videostyle.gatys.lbfgs import LBFGS


def _problem(seed: int = 0) -> tuple[torch.Tensor, callable]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(40, 30, generator=g)
    b = torch.randn(40, generator=g)
    x0 = torch.randn(2, 3, 5, generator=g)

    def f(x: torch.Tensor) -> torch.Tensor:
        # least squares plus a quartic term: curvature that changes along the path
        v = x.reshape(-1)
        return ((a @ v - b) ** 2).sum() + 0.1 * (v ** 4).sum()

    return x0, f


def _optimiser(x0, f, opt_cls=LBFGS, **kw):
    """(x, the optimiser on it, the closure of f at x)."""
    x = x0.clone().requires_grad_(True)
    opt = opt_cls([x], **kw)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = f(x)
        loss.backward()
        return loss

    return x, opt, closure


def _run(opt_cls, x0, f, steps, **kw):
    x, opt, closure = _optimiser(x0, f, opt_cls, **kw)
    losses = []
    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
    return x.detach(), losses


@pytest.mark.parametrize("history", [3, 50])
def test_same_iterates_as_torch_lbfgs(history):
    x0, f = _problem()
    ref, ref_losses = _run(torch.optim.LBFGS, x0, f, 25, lr=1.0, max_iter=1, history_size=history,
                           tolerance_grad=-1, tolerance_change=-1)
    ours, losses = _run(LBFGS, x0, f, 25, lr=1.0, history_size=history)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert losses[-1] < 0.05 * losses[0]


def test_reads_the_device_once_an_iteration():
    x0, f = _problem(1)
    reads = {"n": 0}
    real = torch.Tensor.__float__

    def counting(self):
        reads["n"] += 1
        return real(self)

    _, opt, closure = _optimiser(x0, f, history_size=50)
    for _ in range(3):
        opt.step(closure)
    torch.Tensor.__float__ = counting
    try:
        with torch.autograd.profiler.profile() as prof:
            for _ in range(10):
                opt.step(closure)
    finally:
        torch.Tensor.__float__ = real
    local = sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")
    assert reads["n"] == 10 and local <= 10


def test_bf16_history_still_converges():
    x0, f = _problem(2)
    ref, ref_losses = _run(LBFGS, x0, f, 30, history_size=5)
    _, losses = _run(LBFGS, x0, f, 30, history_size=5, history_dtype=torch.bfloat16)
    assert losses[-1] < 0.05 * losses[0]
    assert losses[-1] < 1.5 * ref_losses[-1] + 1e-3


def test_the_first_step_moves_the_largest_element_by_first_step():
    x0, f = _problem(3)
    x, opt, closure = _optimiser(x0, f, first_step=0.05)
    opt.step(closure)
    assert float((x.detach() - x0).abs().max()) == pytest.approx(0.05, rel=1e-5)


def test_the_safeguard_takes_back_every_step_that_raises_the_loss():
    """Torch's iterates rise on this problem (the quartic term bends the path away from the
    curvature the history holds); with the step back the loss never rises, and it ends as low."""
    x0, f = _problem(0)
    _, plain = _run(LBFGS, x0, f, 25, history_size=50)
    assert any(b > a * 1.001 for a, b in zip(plain, plain[1:]))
    _, safe = _run(LBFGS, x0, f, 25, history_size=50, first_step=0.05, backtrack=8)
    assert all(b <= a * 1.001 for a, b in zip(safe, safe[1:]))
    assert safe[-1] <= plain[-1] * 1.01


def test_the_safeguard_keeps_one_read_an_iteration_when_no_step_is_taken_back():
    x0, f = _problem(1)  # (no rise on this one)
    _, opt, closure = _optimiser(x0, f, history_size=50, first_step=0.05, backtrack=8)

    for _ in range(3):
        opt.step(closure)
    reads = {"float": 0, "tolist": 0}
    real_float, real_tolist = torch.Tensor.__float__, torch.Tensor.tolist

    def counting(kind, real):
        def read(self, *a):
            reads[kind] += 1
            return real(self, *a)
        return read

    torch.Tensor.__float__, torch.Tensor.tolist = counting("float", real_float), counting("tolist", real_tolist)
    try:
        for _ in range(10):
            opt.step(closure)
    finally:
        torch.Tensor.__float__, torch.Tensor.tolist = real_float, real_tolist
    assert opt.backtracks == 0
    assert reads == {"float": 0, "tolist": 10}  # the curvature test, the loss and the slope in one read


def test_a_gatys_render_starts_without_importing_torchs_compiler(tmp_path):
    """A default render's process never imports ``torch._dynamo``: ``torch.optim.Optimizer``'s
    first call does (a second or more of every render's start), and the default optimiser needs
    none of it. (``zero_grad`` as the stylizer calls it, between steps, is checked alongside.)"""
    import subprocess
    import sys

    from videostyle.io.images import write_image

    from .conftest import stripes

    write_image(tmp_path / "c.png", stripes(48, 64))
    write_image(tmp_path / "s.png", stripes(32, 32))
    code = ("import sys\nfrom videostyle.cli import main\n"
            f"rc = main(['render', 'c.png', '--style', 's.png', '-o', 'o.png', '--model', 'random', '--size', '48',"
            f" '--iterations', '3', '-q'])\n"
            "print(rc, 'torch._dynamo' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.stdout.split() == ["0", "False"], res.stderr
    assert (tmp_path / "o.png").exists()


def test_zero_grad_clears_or_zeroes_the_gradient():
    x = torch.ones(4, requires_grad=True)
    opt = LBFGS([x])
    (x * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert x.grad is not None and not x.grad.any()
    (x * 2).sum().backward()
    opt.zero_grad()
    assert x.grad is None
    with pytest.raises(ValueError, match="exactly one tensor"):
        LBFGS([x, torch.ones(2, requires_grad=True)])
