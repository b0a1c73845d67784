import numpy as np
import pytest
import torch

from videostyle.engines import new_stylizer
from videostyle.gatys.losses import gram_matrix
from videostyle.gatys.stylizer import TemporalTerm, to_tensor
from videostyle.io.images import preserve_colors
from videostyle.report import STIterate

from .conftest import pattern, stripes, tiny_config, tiny_extractor


def make(cfg=None, styles=None):
    st = new_stylizer(cfg or tiny_config(), extractor=tiny_extractor())
    st.set_styles(styles or [stripes(64, 64)])
    return st


def test_losses_fall_over_iterations():
    for opt in ("lbfgs", "adam"):
        st = make(tiny_config(**{"optim.optimizer": opt, "optim.lr": 0.05, "style.style_weight": 10.0}))
        seen: list[STIterate] = []
        res = st.stylize(pattern(48, 64), iterations=15, callback=seen.append)
        assert len(seen) == res.iterations == 15
        assert seen[-1].loss < 0.5 * seen[0].loss, opt
        assert res.image.shape == (48, 64, 3) and 0.0 <= res.image.min() and res.image.max() <= 1.0


def test_style_only_moves_gram_toward_style():
    cfg = tiny_config(**{"style.content_weight": 0.0, "style.tv_weight": 0.0})
    st = make(cfg)
    content = pattern(64, 64)
    layers = ["relu1_1", "relu2_1", "relu3_1"]

    def gram_distance(img):
        with torch.no_grad():
            f = st.extractor(to_tensor(img), layers)
            s = st.extractor(to_tensor(stripes(64, 64)), layers)
        return sum(float((gram_matrix(f[k]) - gram_matrix(s[k])).pow(2).sum()) for k in layers)

    res = st.stylize(content, iterations=40)
    assert gram_distance(res.image) < 0.5 * gram_distance(content)


def test_same_seed_same_image_on_cpu():
    cfg = tiny_config(**{"optim.init": "noise", "optim.seed": 7})
    a = make(cfg).stylize(pattern(40, 40), iterations=5).image
    b = make(cfg).stylize(pattern(40, 40), iterations=5).image
    c = make(tiny_config(**{"optim.init": "noise", "optim.seed": 8})).stylize(pattern(40, 40), iterations=5).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_colour_preservation_keeps_content_chroma():
    content = (pattern(48, 48) * 0.5 + 64).astype(np.uint8)  # unsaturated, so little clips
    st = make(tiny_config(**{"style.preserve_colors": True}))
    out = st.stylize(content, iterations=10).image
    ycc = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    chroma_out = out @ ycc.T
    chroma_in = (content / 255.0).astype(np.float32) @ ycc.T
    # where nothing clipped, the chroma is the content's
    inside = (out > 0.01).all(-1) & (out < 0.99).all(-1)
    assert inside.mean() > 0.5
    assert np.abs(chroma_out - chroma_in)[inside].max() < 2e-3
    plain = make().stylize(content, iterations=10).image @ ycc.T
    assert np.abs(plain - chroma_in).mean() > np.abs(chroma_out - chroma_in).mean()


def test_preserve_colors_identity_on_same_image():
    img = pattern(16, 16) / 255.0
    assert np.allclose(preserve_colors(img.astype(np.float32), pattern(16, 16)), img, atol=1e-5)


def test_blend_of_two_styles_is_weighted_average_of_grams():
    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    a, b = stripes(64, 64), pattern(64, 64)
    st.set_styles([a], [])
    ga = st.style_targets((64, 64))
    st.set_styles([b], [])
    gb = st.style_targets((64, 64))
    st.set_styles([a, b], [3.0, 1.0])
    gab = st.style_targets((64, 64))
    for k in ga:
        assert torch.allclose(gab[k], 0.75 * ga[k] + 0.25 * gb[k], atol=1e-6)


def test_pyramid_runs_levels_coarse_to_fine():
    st = make(tiny_config(**{"optim.pyramid_levels": 2}))
    sizes = []
    res = st.stylize(pattern(64, 96), iterations=3, callback=lambda it: sizes.append(it.size))
    assert sizes[0] == (32, 48) and sizes[-1] == (64, 96)
    assert res.iterations == 6


def test_early_stop_on_target_loss_and_tolerance():
    st = make()
    res = st.stylize(pattern(48, 48), iterations=50, stop_loss=float("inf"))
    assert res.iterations == 1
    st2 = make(tiny_config(**{"optim.tolerance": 0.5, "optim.tolerance_window": 2}))
    assert st2.stylize(pattern(48, 48), iterations=50).iterations < 50


def test_early_stop_leaves_the_temporal_term_out():
    """The stop threshold is the first frame's loss, which has no temporal term: a frame whose
    content, style and TV terms are already there stops, however large its temporal term."""
    st = make()
    content = pattern(48, 48)
    far = TemporalTerm(1.0 - content.astype(np.float32) / 255.0, np.ones((48, 48), np.float32), 100.0)
    start = st.stylize(content, content, iterations=0, temporal=[far])
    rest = start.loss - start.losses["temporal"]
    assert start.losses["temporal"] > 10 * rest  # the total is far above the threshold
    res = st.stylize(content, content, iterations=50, temporal=[far], stop_loss=rest * 1.001)
    assert res.iterations == 1


def test_temporal_term_pulls_toward_target():
    content = pattern(48, 48)
    target = np.full((48, 48, 3), 0.5, np.float32)
    mask = np.ones((48, 48), np.float32)
    free = make().stylize(content, iterations=10).image
    tied = make().stylize(content, iterations=10, temporal=[TemporalTerm(target, mask, 1e3)]).image
    assert np.abs(tied - 0.5).mean() < np.abs(free - 0.5).mean()


def test_bf16_autocast_runs_and_falls():
    st = make(tiny_config(**{"render.precision": "bf16"}))
    seen = []
    st.stylize(pattern(48, 48), iterations=8, callback=seen.append)
    assert seen[-1].loss < seen[0].loss


@pytest.mark.slow
def test_torch_compile_matches_eager():
    eager = make(tiny_config()).stylize(pattern(48, 48), iterations=3).image
    compiled = make(tiny_config(**{"render.compile": True})).stylize(pattern(48, 48), iterations=3).image
    assert np.abs(eager - compiled).max() < 1e-3


def test_reported_terms_are_the_loss_at_each_iterate():
    """Progress reports the weighted terms of the image before each update, summing to the total."""
    cfg = tiny_config(**{"optim.optimizer": "adam", "optim.lr": 0.05})
    st = make(cfg)
    content = pattern(48, 64)
    seen: list[STIterate] = []
    st.stylize(content, iterations=1, callback=seen.append)
    x = to_tensor(content)
    with torch.no_grad():
        cf = st._features(x, st.content_layers)
        terms = st.loss_terms(x, cf, st.style_targets((48, 64)), [])
    assert list(seen[0].losses) == list(terms)
    for k, v in terms.items():
        assert seen[0].losses[k] == pytest.approx(float(v), rel=1e-6)
    assert seen[0].loss == pytest.approx(sum(seen[0].losses.values()), rel=1e-6)


def test_cuda_graphs_need_cuda_and_adam():
    from videostyle.errors import ConfigError

    for extra in ({}, {"optim.optimizer": "adam"}):
        with pytest.raises(ConfigError, match="cuda_graphs needs device=cuda and optimizer=adam"):
            new_stylizer(tiny_config(**{"render.cuda_graphs": True, **extra}), extractor=tiny_extractor())


def test_a_start_at_zero_loss_is_not_divergence():
    """Content only, from the content: the loss is 0 and stays ~0; no restart, no notice."""
    st = make(tiny_config(**{"style.style_weight": 0.0, "style.tv_weight": 0.0}))
    notes: list[str] = []
    st.notice = notes.append
    res = st.stylize(pattern(48, 48), iterations=5)
    assert res.iterations == 5 and not notes
    assert np.isfinite(res.image).all()


def test_a_start_already_at_the_stop_loss_is_kept_unchanged():
    """A static shot's later frame starts as stylized as the first: it must not move (a step a
    frame drifts the colours over a long shot)."""
    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    st.set_styles([stripes(64, 64)])
    content = pattern(48, 64)
    first = st.stylize(content, iterations=6)
    start = (first.image * 255).round().astype(np.uint8)
    again = st.stylize(content, start, iterations=5, pyramid=False, stop_loss=first.loss * 10)
    assert np.array_equal((again.image * 255).round().astype(np.uint8), start)
    moved = st.stylize(content, start, iterations=5, pyramid=False)
    assert not np.array_equal((moved.image * 255).round().astype(np.uint8), start)
