"""Tiled evaluation of the objective equals the untiled one where the margin covers the
receptive field (tiny VGG, shallow layers, so the margin can)."""

from __future__ import annotations

import pytest
import torch

from videostyle.losses import LossSpec, PerceptualLoss, gram_matrix
from videostyle.tiles import TiledObjective, grid, tiled_features, tiled_grams

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
    obj = TiledObjective(net, SPEC, content, grams, temporal, tile=32, margin=16)
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
    _, tgrad = TiledObjective(net, SPEC, content, grams, tile=32, margin=0)(x)
    assert not torch.allclose(tgrad, grad, rtol=1e-3, atol=1e-6 * float(grad.abs().max()))


def test_tiled_stylize_follows_the_untiled_one():
    """Through the Stylizer: L-BFGS on tiles (grid shifted every step) takes the untiled steps
    while its shorter history is not yet full (5 iterations < 10 pairs)."""
    import numpy as np

    from videostyle.stylize import Stylizer

    from .conftest import pattern, stripes, tiny_config

    shallow = {"style.content_layers": ["relu3_1"], "style.style_layers": ["relu1_1", "relu2_1", "relu3_1"]}
    content = pattern(80, 104)
    runs = {}
    for tile in (0, 32):
        cfg = tiny_config(**shallow, **{"optim.tile": tile, "optim.tile_margin": 16, "render.precision": "fp32"})
        st = Stylizer.from_config(cfg, extractor=tiny_extractor())
        st.set_styles([stripes(64, 64)])
        runs[tile] = st.stylize(content, iterations=5)
    a, b = runs[0], runs[32]
    assert a.iterations == b.iterations == 5
    assert abs(b.loss - a.loss) <= 1e-3 * a.loss
    assert np.abs(a.image - b.image).mean() < 5e-4  # (a few pixels differ by up to ~1%: float order)


def test_tile_settings_are_checked():
    from videostyle.config import Config, apply
    from videostyle.errors import ConfigError

    with pytest.raises(ConfigError, match="multiple of 16"):
        apply(Config(), {"optim.tile": 500})
    with pytest.raises(ConfigError, match="multiple of 16"):
        apply(Config(), {"optim.tile_margin": 20})
