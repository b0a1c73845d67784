"""--consistency: one dial from boiling (each frame fresh) to most stable."""

from __future__ import annotations

import pytest

from videostyle import config as C
from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.metrics import temporal_error
from videostyle.engines import dial

from .clips import make_clip
from .conftest import stripes


def test_dial_settings():
    at = {c: dial(C.apply(C.Config(), {"temporal.consistency": c})) for c in (0.0, 0.5, 1.0)}
    assert at[0.0] == (0.0, 0.0, 0.0)  # fresh frames, no temporal term, no flow blend
    assert at[0.5] == (1.0, 0.0, 0.45)  # the default warm start
    assert at[1.0] == (1.0, 60.0, 0.9)
    assert dial(C.Config()) == (1.0, 0.0, 0.65)  # unset: --temporal-weight and --fast-blend hold
    with pytest.raises(C.ConfigError, match="must be <= 1"):
        C.apply(C.Config(), {"temporal.consistency": 1.5})


def _style(folder):
    style = folder / "s.png"
    write_image(style, stripes(64, 64))
    return style


def _render(src, style, out, iterations: int, later: int, *extra: str) -> None:
    # From noise, so that a fresh start is visibly a different picture (the boil).
    assert main(["render", str(src), "--style", str(style), "-o", str(out), "--model", "random", "--size", "0",
                 "--init", "noise", "--iterations", str(iterations), "--iterations-later", str(later), *extra,
                 "-q"]) == 0


def test_consistency_one_flickers_less_than_zero(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, size=(64, 48), shift_per_frame=2)
    style = _style(tmp_path)
    errs = {}
    for c in ("0", "1"):
        out = tmp_path / f"c{c}.mp4"
        _render(src, style, out, 10, 4, "--consistency", c, "--crf", "10")
        errs[c] = temporal_error(out, src).error[1]
    assert errs["1"] < 0.5 * errs["0"], errs


def _looping_clip(path, frames: int = 8, shift: int = 2):
    """A texture moving ``shift`` px a frame that comes back to its start after ``frames`` frames,
    so that the last frame flows into the first like any other pair."""
    import av
    import cv2
    import numpy as np

    period = frames * shift
    rng = np.random.default_rng(3)
    tile = cv2.GaussianBlur((rng.random((48, period, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    base = np.tile(tile, (1, 64 // period + 1, 1))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv444p"
        s.options = {"crf": "0"}
        for i in range(frames):
            img = np.ascontiguousarray(np.roll(base, shift * i, axis=1)[:, :64])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _frames(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_loop_seam_is_like_any_other_frame_pair(tmp_path):
    import statistics

    src = _looping_clip(tmp_path / "loop.mp4")
    style = _style(tmp_path)
    seam = {}
    for loop in ("0", "4"):
        out = tmp_path / f"l{loop}.mkv"
        _render(src, style, out, 12, 6, "--loop", loop, "--crf", "0")
        frames, source = _frames(out), _frames(src)
        assert len(frames) == 8
        pairs = [temporal_error(frames[i:i + 2], source[i:i + 2]).error[1] for i in range(7)]
        seam[loop] = (temporal_error([frames[-1], frames[0]], [source[-1], source[0]]).error[1], statistics.median(pairs))
    err, median = seam["4"]
    assert err <= 1.5 * median, seam
    assert seam["0"][0] > 3 * seam["0"][1], seam  # without --loop the seam jumps


def test_disoccluded_pixels_start_from_the_content_in_the_paint_s_colours():
    """Where the flow is not reliable a later frame starts from its content, moved to the previous
    output's colour statistics: raw content, lighter than paint, made long shots drift."""
    import numpy as np

    from videostyle.render.policy import _in_colours_of

    rng = np.random.default_rng(0)
    content = (rng.random((32, 40, 3)) * 80 + 150).astype(np.uint8)  # light
    paint = (rng.random((32, 40, 3)) * 120 + 20).astype(np.uint8)  # darker, more contrast
    out = _in_colours_of(content, paint).reshape(-1, 3).astype(float)
    ref = paint.reshape(-1, 3).astype(float)
    np.testing.assert_allclose(out.mean(0), ref.mean(0), atol=1.0)
    np.testing.assert_allclose(out.std(0), ref.std(0), rtol=0.05)
    src = content.reshape(-1, 3).astype(float)  # the content's own pattern is kept
    assert all(np.corrcoef(out[:, c], src[:, c])[0, 1] > 0.99 for c in range(3))


def test_settle_renders_the_start_again_backwards(tmp_path, capsys):
    """temporal.settle (default 1 s, at most a quarter of the clip): the first frames are
    rendered again from the frame after them, backwards, and take the first frames' places;
    every later frame, the frame count, the timestamps and the audio stay as they were."""
    import numpy as np

    from .clips import audio_packets, video_pts

    src = make_clip(tmp_path / "in.mp4", frames=16, size=(64, 48), shift_per_frame=1, audio=("aac",))
    style = _style(tmp_path)
    outs = {}
    for settle in ("0", "1"):
        out = tmp_path / f"s{settle}.mkv"
        _render(src, style, out, 8, 3, "--settle", settle, "--crf", "0")
        outs[settle] = out
    err = capsys.readouterr().err
    assert "settling the start: frames 3-0 again, backwards from frame 4" in err  # 16 frames // 4
    a, b = _frames(outs["0"]), _frames(outs["1"])
    assert len(a) == len(b) == 16
    assert video_pts(outs["1"]) == video_pts(outs["0"])
    assert audio_packets(outs["1"]) == audio_packets(outs["0"]) == audio_packets(src)
    for i in range(4, 16):
        assert np.array_equal(a[i], b[i]), i
    for i in range(4):
        assert np.abs(a[i].astype(int) - b[i].astype(int)).mean() > 1.0, i
    # The settled frames are a chain: each one is close to the frame after it.
    steps = [np.abs(b[i].astype(int) - b[i + 1].astype(int)).mean() for i in range(4)]
    fresh = np.abs(a[0].astype(int) - a[1].astype(int)).mean()
    assert max(steps) < fresh, (steps, fresh)
