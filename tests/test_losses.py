import torch

from videostyle.gatys.losses import content_loss, gram_matrix, relative_mse, style_loss, temporal_loss, tv_loss


def test_gram_matrix_matches_definition():
    f = torch.randn(2, 3, 4, 5)
    g = gram_matrix(f)
    flat = f.reshape(2, 3, 20)
    expected = torch.einsum("nci,ndi->ncd", flat, flat) / (3 * 4 * 5)
    assert torch.allclose(g, expected, atol=1e-6)
    assert torch.allclose(g, g.transpose(1, 2))


def test_relative_losses_do_not_depend_on_the_feature_scale():
    """Caffe's VGG-19 (0-255 input) gives features ~60x torchvision's: the terms must not care."""
    torch.manual_seed(0)
    f, t = torch.randn(1, 8, 6, 6), torch.randn(1, 8, 6, 6)
    assert torch.allclose(content_loss(60 * f, 60 * t), content_loss(f, t), rtol=1e-5)
    assert torch.allclose(style_loss(60 * f, gram_matrix(60 * t)), style_loss(f, gram_matrix(t)), rtol=1e-4)
    assert torch.allclose(relative_mse(2 * t, t), torch.tensor(1.0), rtol=1e-5)  # |2t - t|^2 / |t|^2
    assert torch.isfinite(relative_mse(f, torch.zeros_like(t)))  # an all-black target


def test_losses_are_zero_at_target_and_positive_elsewhere():
    t = torch.randn(1, 4, 5, 5)
    assert content_loss(t, t) == 0
    assert style_loss(t, gram_matrix(t)) == 0
    assert content_loss(t + 1, t) > 0
    assert tv_loss(torch.ones(1, 3, 8, 8)) == 0
    assert tv_loss(torch.rand(1, 3, 8, 8)) > 0


def test_temporal_loss_ignores_masked_pixels():
    img, tgt = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    tgt[..., :2] = 1.0  # differs on the left half
    left_masked = torch.ones(1, 1, 4, 4)
    left_masked[..., :2] = 0
    assert temporal_loss(img, tgt, left_masked) == 0
    assert temporal_loss(img, tgt, torch.ones(1, 1, 4, 4)) > 0


def test_perceptual_loss_is_the_weighted_sum_of_its_terms():
    from videostyle.gatys.losses import LossSpec, PerceptualLoss

    torch.manual_seed(0)
    spec = LossSpec(("b",), ("a", "b"), (0.5, 2.0), content_weight=3.0, style_weight=7.0, tv_weight=11.0)
    assert spec.layers == ("a", "b")
    feats = {"a": torch.randn(1, 4, 6, 6), "b": torch.randn(1, 8, 3, 3)}
    target = {"b": torch.randn(1, 8, 3, 3)}
    grams = {"a": gram_matrix(torch.randn(1, 4, 6, 6)), "b": gram_matrix(torch.randn(1, 8, 3, 3))}
    img, tgt, mask = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), (torch.rand(1, 1, 8, 8) > 0.5).float()
    terms = PerceptualLoss(spec)(img, feats, target, grams, [(tgt, mask, 5.0)])
    assert list(terms) == ["content", "style", "tv", "temporal"]
    assert torch.allclose(terms["content"], 3.0 * content_loss(feats["b"], target["b"]))
    assert torch.allclose(terms["style"], 7.0 * (0.5 * style_loss(feats["a"], grams["a"])
                                                 + 2.0 * style_loss(feats["b"], grams["b"])))
    assert torch.allclose(terms["tv"], 11.0 * tv_loss(img))
    assert torch.allclose(terms["temporal"], 5.0 * temporal_loss(img, tgt, mask))
    no_tv = PerceptualLoss(LossSpec(("b",), ("a", "b"), (1.0, 1.0), 1.0, 1.0, 0.0))(img, feats, target, grams)
    assert list(no_tv) == ["content", "style"]


def test_the_gram_matrix_and_its_gradient_match_the_definition_in_either_memory_layout():
    """The Gram's own backward (one product) and its channels_last view give the plain
    definition's value and input gradient, within what float order allows: each entry sums
    H*W products, whose rounding grows as about sqrt(H*W) units of float32's epsilon."""
    torch.manual_seed(0)
    n, c, h, w = 2, 16, 24, 40
    weights = torch.randn(n, c, c)
    tol = 8 * (h * w) ** 0.5 * torch.finfo(torch.float32).eps
    for layout in (torch.contiguous_format, torch.channels_last):
        f = torch.randn(n, c, h, w).contiguous(memory_format=layout).requires_grad_(True)
        g = gram_matrix(f)
        (g * weights).sum().backward()
        got = f.grad.clone()
        r = f.detach().clone().requires_grad_(True)
        flat = r.reshape(n, c, h * w)
        expected = torch.einsum("nci,ndi->ncd", flat, flat) / (c * h * w)
        (expected * weights).sum().backward()
        assert torch.allclose(g, expected, rtol=tol, atol=tol * expected.abs().max().item())
        assert torch.allclose(got, r.grad, rtol=tol, atol=tol * r.grad.abs().max().item())
