"""The real embedded VGG-19 at tiny sizes: stylization that works, and divergence that is caught."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import videostyle.gatys.losses as losses_mod
import videostyle.gatys.runners as runners
from videostyle.engines import new_stylizer
from videostyle.config import Config, apply
from videostyle.gatys.features import build_extractor
from videostyle.io.images import read_image, write_image
from videostyle.gatys.losses import gram_matrix
from videostyle.errors import DivergedError, worded
from videostyle.report import STIterate

from .clips import make_clip
from .conftest import stripes

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


@pytest.fixture(scope="module")
def vgg():
    return build_extractor(LAYERS)


def scene(h: int = 96, w: int = 96) -> np.ndarray:
    """A synthetic photo: sky gradient, a house, a sun and a tree, with hard edges."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([90 + 60 * yy / h, 140 + 60 * yy / h, 230 - 40 * yy / h], -1)
    img[int(h * 0.65):] = (70, 140, 60)
    img = np.ascontiguousarray(img.astype(np.uint8))
    cv2.rectangle(img, (w // 5, h // 3), (w // 2, int(h * 0.75)), (200, 60, 50), -1)
    cv2.rectangle(img, (w // 4, h // 2), (w // 3, int(h * 0.75)), (60, 40, 30), -1)
    cv2.circle(img, (int(w * 0.78), h // 5), h // 9, (250, 220, 60), -1)
    cv2.rectangle(img, (int(w * 0.7), h // 2), (int(w * 0.74), int(h * 0.8)), (90, 60, 30), -1)
    cv2.circle(img, (int(w * 0.72), h // 2), h // 8, (30, 110, 40), -1)
    return img


def painting(size: int = 128, seed: int = 0) -> np.ndarray:
    """A synthetic 'painting': short curved strokes of a small palette."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), (20, 40, 90), np.uint8)
    palette = [(240, 200, 40), (30, 70, 160), (200, 220, 240), (20, 30, 60), (90, 150, 200)]
    for _ in range(400):
        x, y = rng.integers(0, size, 2)
        a = rng.uniform(0, np.pi)
        dx, dy = int(7 * np.cos(a)), int(7 * np.sin(a))
        cv2.line(img, (int(x), int(y)), (int(x + dx), int(y + dy)), palette[rng.integers(len(palette))], 2)
    return img


def edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    def edges(img: np.ndarray) -> np.ndarray:
        g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).ravel()

    return float(np.corrcoef(edges(a), edges(b))[0, 1])


def test_real_gatys_paints_and_keeps_the_content(vgg):
    """Default weights, real network: the style loss falls by an order of magnitude and the
    photo's edges stay (measured: edge correlation 0.42 at 60 iterations; noise gives ~0)."""
    cfg = apply(Config(), {"optim.iterations": 60, "render.device": "cpu"})
    st = new_stylizer(cfg, extractor=vgg)
    st.set_styles([painting()])
    content = scene()
    seen: list[STIterate] = []
    res = st.stylize(content, callback=seen.append)
    w = cfg.style.style_weight
    assert seen[-1].losses["style"] / w < 0.1 * seen[0].losses["style"] / w
    out = (res.image * 255).round().astype(np.uint8)
    assert edge_correlation(out, content) > 0.3
    assert np.abs(out.astype(float) - content).mean() > 10  # it painted, not a copy of the photo
    noise = np.random.default_rng(0).integers(0, 256, content.shape, dtype=np.uint8)
    assert abs(edge_correlation(noise, content)) < 0.2


def raw_scale_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The objective before losses were divided by their targets' magnitude: on the real network
    (BGR 0-255 input) its Gram term is ~1e13 and plain L-BFGS blows up on smooth frames."""
    monkeypatch.setattr(losses_mod, "content_loss", lambda f, t: F.mse_loss(f.float(), t.float()))
    monkeypatch.setattr(losses_mod, "style_loss",
                        lambda f, g: F.mse_loss(gram_matrix(f), g.float().expand(f.shape[0], -1, -1)))


def smooth_frame(h: int = 64, w: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx / w, yy / h, np.full_like(xx, 0.5)], -1)


def _raw_scale_stylizer(vgg, monkeypatch):
    raw_scale_losses(monkeypatch)
    cfg = apply(Config(), {"optim.iterations": 12, "render.device": "cpu", "render.precision": "fp32",
                           "style.style_weight": 1e5})
    st = new_stylizer(cfg, extractor=vgg)
    st.set_styles([stripes(96, 96)])
    notes: list[str] = []
    st.notice = notes.append
    return st, notes


def test_a_contrived_scale_converges_without_a_restart(vgg, monkeypatch):
    """The raw-scale objective (Gram term ~1e13), on which L-BFGS as torch steps (no safeguard)
    explodes at its fourth iteration: the default optimiser takes that step back and reaches
    every iteration without a restart, and the loss falls all the way."""
    st, notes = _raw_scale_stylizer(vgg, monkeypatch)
    seen: list[STIterate] = []
    res = st.stylize(smooth_frame(), callback=seen.append)
    assert notes == []
    assert [s.i for s in seen] == list(range(1, 13)) and res.iterations == 12
    losses = [s.loss for s in seen]
    assert all(b <= a * (1 + 1e-3) for a, b in zip(losses, losses[1:]))  # never rose (beyond the allowed rise)
    assert res.loss < 0.5 * losses[0]


def test_exploding_loss_is_caught_at_its_iteration_and_recovered(vgg, monkeypatch):
    """The restart stays as the last resort: with the safeguards off, the same case explodes,
    and the restart with a line search recovers it, saying why in one line."""
    monkeypatch.setattr(runners, "FIRST_STEP", None)
    monkeypatch.setattr(runners, "BACKTRACK", 0)
    st, notes = _raw_scale_stylizer(vgg, monkeypatch)
    seen: list[STIterate] = []
    content = smooth_frame()
    res = st.stylize(content, callback=seen.append)
    losses = [s.loss for s in seen]
    # plain L-BFGS exploded (>10x its first loss); the restart began at the very next report
    blowup = next(i for i, v in enumerate(losses) if v > 10 * losses[0])
    assert seen[blowup + 1].i == 1
    assert len(notes) == 1 and "restarted" in notes[0] and "\n" not in notes[0]
    assert "times the loss it started at" in notes[0] and "--style-weight" in worded(notes[0], flags=True)
    assert res.iterations == blowup + 1 + 12
    assert np.isfinite(res.image).all() and res.loss <= losses[0] * 1.001
    assert np.abs(res.image - content).mean() < 0.05  # the start, improved, not noise
    st.stylize(content)
    assert len(notes) == 1  # said once per stylizer


def test_the_restart_after_a_divergence_runs_in_fp32_where_the_render_runs_bf16(vgg, monkeypatch):
    """The last resort must recover. Under bf16 autocast the line search's first step (1/|g|_1,
    a hundredth of a grey level at 256 px) does not reach the network's 0-255 input, and a
    restart in bf16 can stall there: on the shared astronaut photo with The Shipwreck at 256 px
    every iteration of it had the loss it started at, and the image came out as the content
    (docs/benchmarks.md, converge-4). The restart's network runs in fp32, and its loss falls;
    the render's own precision comes back after it."""
    import videostyle.gatys.stylizer as stylizer_mod

    real = stylizer_mod.iterate
    runs: list[list[torch.dtype]] = []

    def first_diverges(st, runner, step, iterations, *a, **k):
        runs.append([])
        run = real(st, runner, step, iterations if runs[1:] else 2, *a, **k)
        return run if runs[1:] else dataclasses.replace(run, diverged=True)

    monkeypatch.setattr(stylizer_mod, "iterate", first_diverges)
    cfg = apply(Config(), {"optim.iterations": 8, "render.device": "cpu", "render.precision": "bf16"})
    st = new_stylizer(cfg, extractor=vgg)
    st.set_styles([stripes(96, 96)])
    net = st._net

    def watched(x, layers):
        out = net(x, layers)
        if runs:
            runs[-1].append(next(iter(out.values())).dtype)
        return out

    monkeypatch.setattr(st, "_net", watched)
    notes: list[str] = []
    st.notice = notes.append
    seen: list[STIterate] = []
    st.stylize(smooth_frame(), callback=seen.append)
    assert len(runs) == 2 and set(runs[0]) == {torch.bfloat16} and set(runs[1]) == {torch.float32}
    assert len(notes) == 1 and "restarted the image from its start in fp32" in notes[0]
    restart = [s.loss for s in seen[2:]]
    assert len(restart) == 8 and restart[-1] < restart[0]
    st.stylize(smooth_frame())
    assert set(runs[2]) == {torch.bfloat16}  # (the next image in the render's precision)


def test_unrecoverable_divergence_is_a_one_line_error(vgg):
    cfg = apply(Config(), {"optim.iterations": 10, "render.device": "cpu", "render.precision": "fp32",
                           "style.style_weight": 1e38})  # the loss overflows float32
    st = new_stylizer(cfg, extractor=vgg)
    st.set_styles([stripes(96, 96)])
    with pytest.raises(DivergedError, match="diverged") as exc:
        st.stylize(smooth_frame())
    assert "\n" not in str(exc.value) and "lower style_weight" in str(exc.value)
    assert "lower --style-weight" in exc.value.on_command_line()


def test_video_that_diverges_writes_no_output(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3, size=(64, 48), audio=())
    style = tmp_path / "s.png"
    write_image(style, stripes(64, 64))
    out = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "videostyle", "render", str(src), "--style", str(style), "-o", str(out),
                        "--iterations", "6", "--iterations-later", "2", "--style-weight", "1e38", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and len(lines) == 2
    assert "restarted" in lines[0]  # the recovery is said once ...
    assert "frame 0" in lines[1] and "diverged" in lines[1]  # ... and its failure is the error
    assert not out.exists()


def test_default_model_renders_offline(tmp_path):
    """`videostyle render photo --style painting` with no flags and no network: the embedded
    VGG-19 is used; torchvision's needs its download and says how."""
    content, style, out = tmp_path / "photo.png", tmp_path / "style.png", tmp_path / "o.png"
    write_image(content, scene(64, 80))
    write_image(style, painting(64))
    env = {"TORCH_HOME": str(tmp_path / "torchhome"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    r = subprocess.run([sys.executable, "-m", "videostyle", "render", str(content), "--style", str(style), "-o",
                        str(out), "--iterations", "3", "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_image(out).shape == (64, 80, 3)
    r = subprocess.run([sys.executable, "-m", "videostyle", "render", str(content), "--style", str(style), "-o",
                        str(tmp_path / "tv.png"), "--model", "vgg19-torchvision", "-q"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2
    assert "vgg19-dcbb9e9d.pth" in r.stderr and "curl" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "tv.png").exists()


def test_bf16_and_fp32_agree_on_the_real_network(vgg):
    """The automatic bf16 on CPUs that have it gives the same losses to a few percent."""
    x = torch.from_numpy(scene()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = vgg(x, ["relu4_2"])["relu4_2"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = vgg(x, ["relu4_2"])["relu4_2"].float()
    assert float((low - ref).pow(2).mean() / ref.pow(2).mean()) < 1e-3
