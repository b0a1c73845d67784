import numpy as np
import pytest

from videostyle.temporal.flow import FlowParams, compute_flow, consistency_mask, pair, warp
from videostyle.metrics import temporal_error

from .conftest import pattern


def textured(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.random((h // 4, w // 4, 3))
    import cv2
    big = cv2.resize((noise * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(big, (5, 5), 1.0)


def shift(img, dx, dy):
    """Content moved right by dx and down by dy (edges replicated)."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[ys][:, xs]


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_known_shift_is_found_and_warped_back(method):
    a = textured()
    b = shift(a, 3, 2)  # b(x) = a(x - (3, 2))  =>  b(x + (3, 2)) = a(x)
    params = FlowParams(method=method)
    f = compute_flow(a, b, params)
    inner = (slice(16, -16), slice(16, -16))
    assert np.median(f[inner][..., 0]) == pytest.approx(3, abs=0.25)
    assert np.median(f[inner][..., 1]) == pytest.approx(2, abs=0.25)
    back = warp(b, f)
    err = np.abs(back[inner].astype(float) - a[inner].astype(float)).mean()
    assert err < 3.0  # of 255
    assert np.abs(b[inner].astype(float) - a[inner].astype(float)).mean() > 4 * err


def test_warp_with_exact_flow_is_exact_inside():
    a = pattern(40, 50).astype(np.float32)
    flow = np.zeros((40, 50, 2), np.float32)
    flow[..., 0] = 2.0
    out = warp(a, flow)
    assert np.allclose(out[:, :-2], a[:, 2:])


def moving_square():
    """Two frames of a textured background with a textured square that moves 12 px right."""
    bg = textured(96, 128, seed=1)
    square = textured(24, 24, seed=2)
    f0, f1 = bg.copy(), bg.copy()
    f0[36:60, 30:54] = square
    f1[36:60, 42:66] = square
    return f0, f1


def test_mask_marks_occlusion_not_static_background():
    f0, f1 = moving_square()
    p = pair(f1, f0)
    m = p.mask
    # background far from the square is reliable
    assert m[5:25, 5:120].mean() > 0.95
    assert m[70:90, 5:120].mean() > 0.95
    # the strip the square uncovered in f1 (visible now, hidden behind the square in f0... and vice versa)
    # is unreliable
    assert m[40:56, 32:40].mean() < 0.5


def test_photometric_check_marks_occlusion_with_one_flow():
    f0, f1 = moving_square()
    p = pair(f1, f0, FlowParams(scale=0.5, check="photometric"))
    m = p.mask
    assert m[5:25, 5:120].mean() > 0.95 and m[70:90, 5:120].mean() > 0.95
    assert m[40:56, 32:40].mean() < 0.5  # uncovered: the background there was behind the square
    # whatever it trusts warps back right (the flow misses this small square's 12 px move; the
    # check then distrusts it rather than smear it)
    err = np.abs(warp(f0, p.back).astype(float) - f1.astype(float)).mean(-1)
    assert err[m > 0].mean() < 3.0 and err[m == 0].mean() > 3 * err[m > 0].mean()
    # an unrelated frame (a scene cut) is nearly all unreliable
    assert pair(f1, textured(96, 128, seed=7), FlowParams(check="photometric")).reliable < 0.2


def test_photometric_check_warps_a_known_shift_back():
    a = textured()
    b = shift(a, 3, 2)
    p = pair(a, b, FlowParams(scale=0.5, check="photometric"))
    inner = (slice(16, -16), slice(16, -16))
    assert p.mask[inner].mean() > 0.95
    err = np.abs(warp(b, p.back)[inner].astype(float) - a[inner].astype(float)).mean()
    assert err < 3.0


def test_consistency_of_zero_flow_is_all_reliable():
    z = np.zeros((20, 30, 2), np.float32)
    m = consistency_mask(z, z)
    assert m[1:-1, 1:-1].all()


def test_temporal_error_static_is_zero_and_perturbed_is_not():
    base = textured(64, 96)
    frames = [base.copy() for _ in range(6)]
    still = temporal_error(frames, frames, gaps=(1, 2))
    assert still.error[1] < 1e-6 and still.error[2] < 1e-6
    rng = np.random.default_rng(0)
    noisy = [np.clip(f.astype(int) + rng.integers(-25, 26, f.shape), 0, 255).astype(np.uint8) for f in frames]
    flick = temporal_error(noisy, frames, gaps=(1, 2))
    assert flick.error[1] > 1e-3 and flick.error[2] > 1e-3


def test_temporal_error_follows_source_motion():
    src = [shift(textured(64, 96), 2 * i, 0) for i in range(5)]
    # a "stylization" that moves with the content has ~no error; one that stays put has a lot
    moving = [255 - s for s in src]
    static = [255 - src[0] for _ in src]
    assert temporal_error(moving, src).error[1] < 0.2 * temporal_error(static, src).error[1]


def test_blend_takes_a_where_reliable_b_elsewhere():
    from videostyle.temporal.flow import blend

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (37, 53, 3), np.uint8)
    b = rng.integers(0, 256, (37, 53, 3), np.uint8)
    m = rng.random((37, 53)).astype(np.float32)
    m[:5], m[5:10] = 0.0, 1.0
    out = blend(a, b, m)
    assert out.dtype == np.uint8 and out.shape == a.shape
    assert np.array_equal(out[:5], b[:5]) and np.array_equal(out[5:10], a[5:10])
    exact = a.astype(np.float32) * m[..., None] + b.astype(np.float32) * (1 - m[..., None])
    assert np.abs(out - exact).max() <= 0.5 + 1e-3
