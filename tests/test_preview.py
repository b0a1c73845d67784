"""``videostyle preview``: a labelled contact sheet of one frame, or a strip, per combination."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from videostyle import config as C
from videostyle.cli import main
from videostyle.errors import ConfigError
from videostyle.io.images import write_image
from videostyle.preview import LABEL, STRIP_TILE, TILE, parse_vary, variations

from .clips import make_clip
from .conftest import pattern, stripes

TINY = ["--model", "random", "--iterations", "3", "--iterations-later", "1", "--device", "cpu", "--precision", "fp32",
        "-q"]


def test_vary_makes_every_combination_with_its_label():
    combos = variations(C.Config(), parse_vary(["style-weight=0.3,3", "consistency=0,1"]))
    assert [v.label for v, _ in combos] == ["style-weight=0.3 consistency=0", "style-weight=0.3 consistency=1",
                                            "style-weight=3 consistency=0", "style-weight=3 consistency=1"]
    assert [(c.style.style_weight, c.temporal.consistency) for _, c in combos] == [(0.3, 0), (0.3, 1), (3, 0), (3, 1)]


def test_vary_refuses_an_unknown_setting_and_a_bad_value():
    with pytest.raises(ConfigError, match="did you mean --style-weight|did you mean.*style_weight"):
        parse_vary(["style-wieght=1,2"])
    with pytest.raises(ConfigError, match="SETTING=V1,V2"):
        parse_vary(["style-weight"])
    with pytest.raises(ConfigError):
        variations(C.Config(), parse_vary(["consistency=2"]))  # outside 0..1


def test_an_image_preview_is_one_row_per_combination(tmp_path, capsys):
    write_image(tmp_path / "photo.png", pattern(96, 128))
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["preview", str(tmp_path / "photo.png"), "--style", str(tmp_path / "s.png"),
                 "--vary", "style-weight=0.3,3", "--size", "64", *TINY]) == 0
    sheet = cv2.imread(str(tmp_path / "photo_preview.png"))
    assert sheet.shape == (2 * (48 + LABEL), 64, 3)  # two rows of 64x48 tiles under their labels
    a, b = sheet[LABEL:LABEL + 48], sheet[2 * LABEL + 48:]
    assert np.abs(a.astype(int) - b).mean() > 1  # the weights show


def test_a_video_strip_shows_the_frames_from_the_time_given(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=24, audio=())
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "sheet.png"
    assert main(["preview", str(clip), "--style", str(tmp_path / "s.png"), "--at", "f:6", "--frames", "3",
                 "--vary", "consistency=0,1", "-o", str(out), *TINY]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (LABEL + 2 * (48 + LABEL), 3 * 64, 3)  # headings, then 2 rows of 3 frames
    assert 64 <= STRIP_TILE and 64 <= TILE
    assert main(["preview", str(clip), "--style", str(tmp_path / "s.png"), "-o", str(out), *TINY]) == 1  # exists
    err = capsys.readouterr().err.strip().splitlines()
    assert "exists; pass --overwrite" in err[-1]
    assert main(["preview", str(clip), "--style", str(tmp_path / "s.png"), "--at", "9", "-o",
                 str(tmp_path / "late.png"), *TINY]) == 2
    assert "past the end" in capsys.readouterr().err
