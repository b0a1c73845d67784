"""Output sizes: --upscale, strokes formed at --stroke-side, and the half-size pass of later
frames (--coarse-later)."""

from __future__ import annotations

import numpy as np

from videostyle.engines import new_stylizer
from videostyle.gatys.stylizer import TemporalTerm
from videostyle.io.images import fit_size

from .conftest import pattern, stripes, tiny_config, tiny_extractor


def _stylizer(**overrides):
    st = new_stylizer(tiny_config(**overrides), extractor=tiny_extractor())
    st.set_styles([stripes(64, 64)])
    return st


def _sizes(st, content, **kw):
    seen = []
    res = st.stylize(content, callback=lambda it: seen.append((it.level, it.levels, it.size)), **kw)
    return res, sorted(set(seen))


def test_size_upscales_only_when_asked():
    assert fit_size(360, 640, 2048) == (360, 640)
    assert fit_size(360, 640, 2048, upscale=True) == (1152, 2048)
    assert fit_size(720, 1280, 640, upscale=True) == (360, 640)  # (down is always allowed)


def test_a_larger_image_forms_its_strokes_at_stroke_side_then_refines():
    st = _stylizer(**{"style.stroke_side": 64, "optim.iterations": 2})
    res, seen = _sizes(st, pattern(160, 208))
    assert [s for _, _, s in seen] == [(40, 52), (80, 104), (160, 208)]  # 208 -> 104 -> 52 <= 64
    assert res.iterations == 6 and res.image.shape == (160, 208, 3)
    st = _stylizer(**{"style.stroke_side": 256, "optim.iterations": 2})
    assert [s for _, _, s in _sizes(st, pattern(160, 208))[1]] == [(160, 208)]  # no larger than it: flat
    # Warm-started frames (pyramid=False) never restart coarse.
    st = _stylizer(**{"style.stroke_side": 64, "optim.iterations": 2})
    assert [s for _, _, s in _sizes(st, pattern(160, 208), pyramid=False)[1]] == [(160, 208)]


def test_coarse_later_runs_half_size_first_with_scaled_temporal_targets():
    st = _stylizer(**{"style.stroke_side": 0})
    content = pattern(64, 96)
    prev = pattern(64, 96, shift=2).astype(np.float32) / 255.0
    mask = np.zeros((64, 96), np.float32)
    mask[:, 48:] = 1.0
    term = TemporalTerm(prev, mask, 50.0)
    res, seen = _sizes(st, content, init=prev, iterations=3, coarse=2, temporal=[term], pyramid=False)
    assert [(lv, s) for lv, _, s in seen] == [(0, (32, 48)), (1, (64, 96))]
    assert res.iterations == 5
    assert "temporal" in res.losses
    # The half-size pass follows the scaled-down temporal target: a strong weight holds the
    # masked half near it and leaves the other half free.
    out = res.image
    held = np.abs(out[:, 52:] - prev[:, 52:]).mean()
    free = np.abs(out[:, :44] - prev[:, :44]).mean()
    assert held < free
