"""--consistency: one dial from boiling (each frame fresh) to most stable."""

from __future__ import annotations

import pytest

from videostyle import config as C
from videostyle.cli import main
from videostyle.images import write_image
from videostyle.metrics import temporal_error
from videostyle.video import dial

from .clips import make_clip
from .conftest import stripes


def test_dial_settings():
    at = {c: dial(C.apply(C.Config(), {"temporal.consistency": c})) for c in (0.0, 0.5, 1.0)}
    assert at[0.0] == (0.0, 0.0, 0.0)  # fresh frames, no temporal term, no flow blend
    assert at[0.5] == (1.0, 0.0, 0.45)  # the default warm start
    assert at[1.0] == (1.0, 60.0, 0.9)
    assert dial(C.Config()) == (1.0, 0.0, 0.6)  # unset: --temporal-weight and --fast-blend hold
    with pytest.raises(C.ConfigError, match="must be <= 1"):
        C.apply(C.Config(), {"temporal.consistency": 1.5})


def test_consistency_one_flickers_less_than_zero(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, size=(64, 48), shift_per_frame=2)
    style = tmp_path / "s.png"
    write_image(style, stripes(64, 64))
    errs = {}
    for c in ("0", "1"):
        out = tmp_path / f"c{c}.mp4"
        # From noise, so that a fresh start is visibly a different picture (the boil).
        assert main(["render", str(src), "--style", str(style), "-o", str(out), "--model", "random", "--size", "0",
                     "--init", "noise", "--iterations", "10", "--iterations-later", "4", "--consistency", c,
                     "--crf", "10", "-q"]) == 0
        errs[c] = temporal_error(out, src).error[1]
    assert errs["1"] < 0.5 * errs["0"], errs
