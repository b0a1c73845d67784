"""Tiled evaluation of the objective equals the untiled one where the margin covers the
receptive field (tiny VGG, shallow layers, so the margin can)."""

from __future__ import annotations

import pytest
import torch

from videostyle.engines import new_stylizer
from videostyle.gatys.losses import LossSpec, PerceptualLoss, gram_matrix
from videostyle.gatys.tiles import TiledObjective, grid, tiled_features, tiled_grams

from .conftest import tiny_extractor

# relu3_1's receptive field is 24 px (its radius 12 plus pooling alignment fits in 16).
SPEC = LossSpec(("relu3_1",), ("relu1_1", "relu2_1", "relu3_1"), (1.0, 1.0, 1.0), content_weight=1.0,
                style_weight=1.0, tv_weight=10.0)


def _setup(h: int = 80, w: int = 104):
    torch.manual_seed(0)
    net = tiny_extractor()
    x, content, style = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        grams = {n: gram_matrix(f) for n, f in net(style, SPEC.style_layers).items()}
    return net, x, content, grams


def _untiled(net, x, content, grams, temporal=()):
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        target = net(content, SPEC.content_layers)
    terms = PerceptualLoss(SPEC)(xg, net(xg, SPEC.layers), target, grams, temporal)
    (grad,) = torch.autograd.grad(sum(terms.values()), xg)
    return {k: v.detach() for k, v in terms.items()}, grad


def test_grid_cores_partition_the_image_and_shift():
    for offset in ((0, 0), (16, 32)):
        tiles = grid(80, 104, 32, 16, offset)
        cover = torch.zeros(80, 104)
        for t in tiles:
            y0, y1, x0, x1 = t.core
            cover[y0:y1, x0:x1] += 1
            by0, by1, bx0, bx1 = t.box
            assert by0 <= y0 and by1 >= y1 and bx0 <= x0 and bx1 >= x1
        assert torch.equal(cover, torch.ones(80, 104))
    assert grid(80, 104, 32, 16, (16, 0))[0].core == (0, 16, 0, 32)
    with pytest.raises(ValueError):
        grid(80, 104, 30, 16)


def test_gram_summed_over_tiles_is_the_whole_image_gram():
    net, x, _, _ = _setup()
    whole = {n: gram_matrix(f) for n, f in net(x, SPEC.style_layers).items()}
    for offset in ((0, 0), (16, 48)):
        tiled = tiled_grams(net, x, SPEC.style_layers, grid(80, 104, 32, 16, offset))
        for n in SPEC.style_layers:
            assert torch.allclose(tiled[n], whole[n], rtol=1e-4, atol=1e-7), n


def test_feature_maps_assembled_from_tile_cores_are_the_whole_image_maps():
    net, x, _, _ = _setup()
    whole = net(x, SPEC.style_layers)
    tiled = tiled_features(net, x, SPEC.style_layers, grid(80, 104, 32, 16, (16, 32)))
    for n in SPEC.style_layers:
        assert tiled[n].shape == whole[n].shape
        assert torch.allclose(tiled[n], whole[n], rtol=1e-4, atol=1e-5), n


def test_tiled_loss_and_gradient_equal_the_untiled_where_the_margin_covers_the_field():
    net, x, content, grams = _setup()
    temporal = [(torch.rand(1, 3, 80, 104), (torch.rand(1, 1, 80, 104) > 0.5).float(), 2.0)]
    terms, grad = _untiled(net, x, content, grams, temporal)
    obj = TiledObjective(net, SPEC, content, grams, temporal, core=32, margin=16)
    for offset in ((0, 0), (16, 16)):
        tterms, tgrad = obj(x, offset)
        assert tterms.keys() == terms.keys()
        for k in terms:
            assert torch.allclose(tterms[k], terms[k], rtol=1e-4), k
        assert torch.allclose(tgrad, grad, rtol=1e-3, atol=1e-6 * float(grad.abs().max()))


def test_without_a_margin_the_tile_edges_show_in_the_gradient():
    """The test above can fail: with no context, features at tile edges see zero padding."""
    net, x, content, grams = _setup()
    _, grad = _untiled(net, x, content, grams)
    _, tgrad = TiledObjective(net, SPEC, content, grams, core=32, margin=0)(x)
    assert not torch.allclose(tgrad, grad, rtol=1e-3, atol=1e-6 * float(grad.abs().max()))


# float32's unit roundoff: tiled and untiled evaluations sum the same terms in other orders.
EPS32 = 2.0**-24


@pytest.mark.parametrize("history", ["float32", "bfloat16"])
def test_tiled_stylize_follows_the_untiled_one(history, monkeypatch):
    """Through the Stylizer: L-BFGS on tiles (grid shifted every step) takes the untiled steps.

    The first step differs by float order alone (its gradient's sums are reordered): a few
    hundred roundoffs at most. L-BFGS without a line search then amplifies any difference a few
    times per iteration, whatever its source, so after 5 iterations the tiled image is compared
    with the spread of untiled runs whose start differs by 4 roundoffs: float order can do that
    much. With the history in bf16 (the default for tiles), each pair is rounded to 8 bits, so
    only the first step is exact and the rest stays near."""
    import numpy as np

    from videostyle.gatys import runners

    monkeypatch.setattr(runners.TiledRunner, "history_dtype", None if history == "float32" else torch.bfloat16)

    from .conftest import pattern, stripes, tiny_config

    shallow = {"style.content_layers": ["relu3_1"], "style.style_layers": ["relu1_1", "relu2_1", "relu3_1"]}
    content = pattern(80, 104)

    def run(tile, iterations, init=None):  # tiles of 64 px: cores of 32, 16 px of context on each side
        cfg = tiny_config(**shallow, **{"optim.tile": tile, "optim.tile_margin": 16, "render.precision": "fp32"})
        st = new_stylizer(cfg, extractor=tiny_extractor())
        st.set_styles([stripes(64, 64)])
        return st.stylize(content, init, iterations=iterations)

    one = np.abs(run("off", 1).image - run(64, 1).image).max()
    assert one <= 256 * EPS32
    a, b = run("off", 5), run(64, 5)
    assert a.iterations == b.iterations == 5
    assert abs(b.loss - a.loss) <= 1e-3 * a.loss
    rng = np.random.default_rng(0)
    c = content.astype(np.float32) / 255.0
    spread = max(np.abs(a.image - run("off", 5, c * (1 + 4 * EPS32 * rng.standard_normal(c.shape))
                                                 .astype(np.float32)).image).mean() for _ in range(3))
    assert np.abs(a.image - b.image).mean() <= (4 * spread if history == "float32" else 5e-3)


def test_tile_settings_are_checked():
    from videostyle.config import Config, apply
    from videostyle.errors import ConfigError

    with pytest.raises(ConfigError, match="multiple of 16"):
        apply(Config(), {"optim.tile": 500})
    with pytest.raises(ConfigError, match="multiple of 16"):
        apply(Config(), {"optim.tile_margin": 20})


def _auto_stylizer(monkeypatch, free: float):
    import videostyle.gatys.stylizer as S

    from .conftest import stripes, tiny_config

    monkeypatch.setattr(S, "budget", lambda device, gb: int(free))
    st = new_stylizer(tiny_config(**{"style.content_layers": ["relu3_1"],
                                               "style.style_layers": ["relu1_1", "relu2_1", "relu3_1"],
                                               "optim.tile_margin": 16}), extractor=tiny_extractor())
    st.set_styles([stripes(64, 64)])
    notes = []
    st.notice = notes.append
    return st, notes


def test_auto_tiles_only_a_frame_that_does_not_fit_and_in_the_largest_tile_that_does(monkeypatch):
    from videostyle.gatys.memory import image_bytes
    from videostyle.gatys.runners import TiledRunner as _TiledRunner

    from .conftest import pattern

    st, notes = _auto_stylizer(monkeypatch, 1e12)
    assert st.tile_for((160, 208)) == 0 and not notes  # fits whole
    st, notes = _auto_stylizer(monkeypatch, 0)
    cost = st._pass_cost = __import__("videostyle.gatys.memory", fromlist=["PassCost"]).pass_cost(
        st._features, st.loss.spec.layers, st.device)
    pixels = 160 * 208
    state = image_bytes(pixels, 2 * _TiledRunner.history + 8) + 32 * pixels
    free = state + cost(96 * 96) + 1  # room for a 96 px tile's pass and no more
    st, notes = _auto_stylizer(monkeypatch, free)
    st._pass_cost = cost
    assert st.tile_for((160, 208)) == 96
    assert "tiles of 96 px" in notes[0]
    res = st.stylize(pattern(160, 208), iterations=2)  # the tiled path runs on it
    assert res.image.shape == (160, 208, 3) and res.iterations == 2


def test_auto_with_no_room_even_for_a_tile_says_what_to_do(monkeypatch):
    from videostyle.errors import ConfigError

    st, _ = _auto_stylizer(monkeypatch, 1000)
    with pytest.raises(ConfigError, match="raise memory, free memory, or lower size"):
        st.tile_for((160, 208))


def test_pass_cost_predicts_what_a_pass_saves_at_another_size():
    from videostyle.gatys.memory import BACKWARD_PEAK, pass_cost

    net = tiny_extractor()
    cost = pass_cost(net, SPEC.layers, torch.device("cpu"))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = torch.rand(1, 3, 320, 320, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        feats = net(x, SPEC.layers)
    held = sum(saved.values()) + sum(f.numel() * f.element_size() for f in feats.values())
    assert cost.per_pixel > 0
    assert abs(cost(320 * 320) - BACKWARD_PEAK * held) <= 0.05 * BACKWARD_PEAK * held


def test_pixel_terms_in_bands_equal_tv_and_temporal_losses_and_their_gradient():
    from videostyle.gatys.losses import temporal_loss, tv_loss
    from videostyle.gatys.tiles import pixel_terms

    torch.manual_seed(1)
    x = torch.rand(1, 3, 37, 29)
    temporal = [(torch.rand(1, 3, 37, 29), (torch.rand(1, 1, 37, 29) > 0.3).float(), 3.0)]
    xg = x.clone().requires_grad_(True)
    tv, temp = 10.0 * tv_loss(xg), 3.0 * temporal_loss(xg, temporal[0][0], temporal[0][1])
    (want,) = torch.autograd.grad(tv + temp, xg)
    grad = torch.zeros_like(x)
    got = pixel_terms(x, 10.0, temporal, grad, rows=5)  # 8 bands, the last one short
    assert torch.allclose(got["tv"], tv.detach(), rtol=1e-5) and torch.allclose(got["temporal"], temp.detach(), rtol=1e-5)
    assert torch.allclose(grad, want, rtol=1e-4, atol=1e-7)


def test_layer_gradients_in_small_bands_give_the_same_tiled_gradient():
    net, x, content, grams = _setup()
    whole = TiledObjective(net, SPEC, content, grams, core=32, margin=16)
    banded = TiledObjective(net, SPEC, content, grams, core=32, margin=16)
    banded.band = 7  # a row or less per band
    (ta, ga), (tb, gb) = whole(x), banded(x)
    assert all(torch.allclose(ta[k], tb[k], rtol=1e-5) for k in ta)
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-6 * float(ga.abs().max()))


def test_measuring_a_pass_keeps_none_of_its_tensors():
    """The measurement's forward passes are freed once measured: a render that keeps them
    leaks them (every render in a batch or the studio, until memory runs out)."""
    import gc
    import weakref

    from videostyle.gatys.memory import pass_cost

    net = tiny_extractor()
    refs: list[weakref.ref] = []

    def features(x, layers):
        out = net(x, layers)
        refs.extend(weakref.ref(v) for v in out.values())
        return out

    pass_cost(features, SPEC.layers, torch.device("cpu"))
    gc.collect()
    assert refs and all(r() is None for r in refs)
