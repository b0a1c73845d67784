"""CUDA-only checks (skipped without a GPU): the graphed Adam iteration against the eager one,
and a video render on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videostyle.stylize import Stylizer, TemporalTerm

from .conftest import pattern, stripes, tiny_config, tiny_extractor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _pair(**extra: object) -> tuple[Stylizer, Stylizer]:
    out = []
    for graphs in (False, True):
        cfg = tiny_config(**{"render.device": "cuda", "optim.optimizer": "adam", "optim.lr": 0.05,
                             "render.cuda_graphs": graphs, **extra})
        st = Stylizer.from_config(cfg, extractor=tiny_extractor())
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
        np.testing.assert_allclose(b, a, rtol=2e-3)
        assert np.abs(ra.image - rb.image).max() < 2e-3
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
    from videostyle.pipeline import render_video

    from .clips import make_clip, video_pts

    clip = make_clip(tmp_path / "in.mp4", frames=6)
    style = tmp_path / "style.png"
    import cv2

    cv2.imwrite(str(style), stripes(64, 64))
    for graphs in (False, True):
        cfg = tiny_config(**{"render.device": "cuda", "style.images": [str(style)], "optim.optimizer": "adam",
                             "render.cuda_graphs": graphs})
        out = tmp_path / f"out{graphs}.mp4"
        res = render_video(clip, out, cfg, stylizer=Stylizer.from_config(cfg, extractor=tiny_extractor()))
        assert res.frames == 6 and len(video_pts(out)) == 6
