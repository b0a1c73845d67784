import json

import numpy as np

from videostyle.cli import main
from videostyle.images import write_image
from videostyle.pipeline import FrameDone, Reporter, render_video
from videostyle.stylize import Stylizer

from .clips import make_clip
from .conftest import stripes, tiny_config, tiny_extractor


class Collect(Reporter):
    def __init__(self):
        self.frames: list[FrameDone] = []
        self.notices: list[str] = []

    def frame(self, done):
        self.frames.append(done)

    def notice(self, message):
        self.notices.append(message)


def _render(tmp_path, src, name, **over):
    style = tmp_path / "style.png"
    write_image(style, stripes(48, 48))
    cfg = tiny_config(**{"style.images": [str(style)], "optim.size": 0, "encode.preset": "ultrafast", **over})
    rep = Collect()
    out = tmp_path / name
    res = render_video(src, out, cfg, rep, stylizer=Stylizer(cfg, extractor=tiny_extractor()))
    return out, rep, res


def test_scene_cut_is_detected_and_restarted(tmp_path):
    src = make_clip(tmp_path / "cut.mp4", frames=8, audio=(), cut_at=5)
    _, rep, res = _render(tmp_path, src, "o.mp4", **{"optim.iterations": 4, "optim.iterations_later": 1})
    restarted = [f.index for f in rep.frames if f.restarted]
    assert restarted == [5]
    assert res.iterations[5] == 4 and res.iterations[4] == 1


def test_scene_cut_starts_from_its_own_content_not_the_init_image(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "cut.mp4", frames=7, audio=(), cut_at=4)
    black = tmp_path / "init.png"
    write_image(black, np.zeros((48, 64, 3), np.uint8))
    inits: dict[int, object] = {}
    real = Stylizer.stylize

    def spy(self, content, init=None, **kw):
        inits[kw.get("seed", 0)] = init
        return real(self, content, init, **kw)

    monkeypatch.setattr(Stylizer, "stylize", spy)
    _render(tmp_path, src, "o.mp4", **{"optim.iterations": 2, "optim.iterations_later": 1, "optim.init": "image",
                                       "optim.init_image": str(black)})
    assert isinstance(inits[0], np.ndarray) and inits[0].max() == 0  # frame 0: the init image
    assert inits[4] == "content"  # the cut: its own content


def test_long_term_temporal_terms_run(tmp_path):
    src = make_clip(tmp_path / "m.mp4", frames=5, audio=())
    _, rep, res = _render(tmp_path, src, "o.mp4", **{"temporal.weight": 1.0, "temporal.frames": [1, 2, 4]})
    assert res.frames == 5 and not any(f.restarted for f in rep.frames)


def test_warm_start_flickers_less_than_independent_frames(tmp_path, capsys):
    src = make_clip(tmp_path / "m.mp4", frames=8, audio=(), shift_per_frame=1)
    over = {"optim.iterations": 6, "optim.init": "noise"}
    indep, _, _ = _render(tmp_path, src, "indep.mkv", **over, **{"temporal.init_later": "content",
                                                                   "optim.iterations_later": 6})
    warm, _, _ = _render(tmp_path, src, "warm.mkv", **over, **{"temporal.init_later": "prev-warped",
                                                                 "optim.iterations_later": 2, "temporal.weight": 5.0})
    errs = {}
    for name, path in (("indep", indep), ("warm", warm)):
        assert main(["eval", str(path), "--source", str(src), "--json", "--gaps", "1,2"]) == 0
        errs[name] = json.loads(capsys.readouterr().out)["temporal_error"]
    assert errs["warm"]["1"] < errs["indep"]["1"]
    assert set(errs["warm"]) == {"1", "2"}


def test_eval_text_output_and_missing_file(tmp_path, capsys):
    src = make_clip(tmp_path / "m.mp4", frames=4, audio=())
    assert main(["eval", str(src), "--source", str(src)]) == 0
    out = capsys.readouterr().out
    assert "temporal error" in out and "long-term error (gap 4)" in out
    assert main(["eval", str(tmp_path / "none.mp4"), "--source", str(src)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_prev_warped_init_fills_unreliable_pixels_from_content(tmp_path):
    # a clip whose second frame is an unrelated picture everywhere but a static band: the init of
    # frame 1 takes the content where the flow is unreliable
    from videostyle.config import apply
    from videostyle.pipeline import VideoStylizer

    cfg = tiny_config(**{"optim.iterations_later": 0, "temporal.scene_cut": 0.0})
    st = Stylizer(cfg, extractor=tiny_extractor())
    st.set_styles([stripes(48, 48)])
    vs = VideoStylizer(apply(cfg, {}), st)
    from .conftest import pattern

    a = pattern(48, 64)
    b = a.copy()
    b[:, 32:] = np.random.default_rng(0).integers(0, 255, (48, 32, 3))
    vs.push(a, np.full((48, 64, 3), 200, np.uint8))
    res = vs.frame(1, b)
    # zero iterations: the output is the init. Left half reliable (static) -> previous output (200)
    assert abs(float(res.image[8:40, 4:20].mean()) - 200) < 3
    right = res.image[8:40, 40:60].astype(float)
    assert np.abs(right - b[8:40, 40:60]).mean() < np.abs(right - 200).mean()
