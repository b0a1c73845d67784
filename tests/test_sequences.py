"""Image sequences in: printf patterns, globs and folders, in natural order; gaps refused or
held; 8- and 16-bit PNG and linear OpenEXR read as display-referred sRGB; a soundtrack added."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.errors import InputError
from videostyle.io.images import write_image
from videostyle.io.media import probe, read_frames
from videostyle.io.sequence import resolve

from .clips import make_clip, streams
from .conftest import pattern, stripes

TINY = ["--model", "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--device", "cpu",
        "--precision", "fp32", "--settle", "0", "-q"]


def _shot(folder: Path, numbers, name: str = "{:04d}.png", shape=(48, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        write_image(folder / name.format(n), pattern(*shape, shift=2 * n))
    return folder


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_printf_pattern_with_any_start_number_renders_every_frame(tmp_path):
    shot = _shot(tmp_path / "shot", range(1001, 1007))
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "out.mp4"
    assert main(["render", str(shot / "%04d.png"), "--style", str(tmp_path / "s.png"), "-o", str(out),
                 "--fps", "12", *TINY]) == 0
    assert _frames(out) == 6
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.average_rate == 12 and not c.streams.audio
        assert float(v.duration * v.time_base) == pytest.approx(0.5, abs=0.09)


def test_globs_and_folders_go_in_natural_order(tmp_path):
    shot = _shot(tmp_path / "shot", [1, 2, 3, 9, 10, 11], name="frame_{}.png")
    seq = resolve(str(shot / "frame_*.png"), "hold")
    names = [f.name if f is not None else None for f in seq.files]
    assert names[:3] == ["frame_1.png", "frame_2.png", "frame_3.png"]
    assert names[3:8] == [None] * 5 and names[8:] == ["frame_9.png", "frame_10.png", "frame_11.png"]
    assert [f.name for f in resolve(str(_shot(tmp_path / "f", [8, 9, 10, 11]))).files] == \
        ["0008.png", "0009.png", "0010.png", "0011.png"]  # a folder, numbers past a power of ten
    (tmp_path / "f" / "extra.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="several kinds"):
        resolve(str(tmp_path / "f"))


def test_a_gap_is_refused_with_the_missing_name_or_held(tmp_path, capsys):
    shot = _shot(tmp_path / "shot", [1, 2, 4, 5])
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "out.mp4"
    args = ["render", str(shot / "%04d.png"), "--style", str(tmp_path / "s.png"), "-o", str(out), *TINY]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0003.png is missing" in err[0] and "--fill-gaps hold" in err[0]
    assert not out.exists()
    info = probe(shot / "%04d.png", fill_gaps="hold")
    frames = list(read_frames(shot / "%04d.png", info=info))
    assert [f.pts for f in frames] == [0, 1, 2, 3, 4]  # the numbers' timing
    assert np.array_equal(frames[2].image, frames[1].image)  # the hole shows the frame before
    assert main([*args, "--fill-gaps", "hold"]) == 0 and _frames(out) == 5


def test_sixteen_bit_png_and_linear_exr_are_read_as_srgb(tmp_path):
    deep = tmp_path / "deep"
    deep.mkdir()
    for n in range(2):
        img = np.full((16, 24, 3), 0x8080 + n, np.uint16)
        cv2.imwrite(str(deep / f"{n:03d}.png"), img)
    frames = list(read_frames(deep / "%03d.png"))
    assert len(frames) == 2 and frames[0].image.dtype == np.uint8 and int(frames[0].image[0, 0, 0]) == 128
    lin = tmp_path / "lin"
    lin.mkdir()
    for n in range(2):  # as a compositor writes them: linear light, half or float
        with av.open(str(lin / f"{n:03d}.exr"), "w", format="image2") as out:
            s = out.add_stream("exr", rate=1)
            s.width, s.height, s.pix_fmt = 24, 16, "gbrpf32le"
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((16, 24, 3), 0.5, np.float32), format="gbrpf32le")):
                out.mux(p)
            for p in s.encode(None):
                out.mux(p)
    frames = list(read_frames(lin / "%03d.exr"))
    assert len(frames) == 2
    srgb = 1.055 * 0.5 ** (1 / 2.4) - 0.055  # IEC 61966-2-1
    assert abs(int(frames[0].image[0, 0, 0]) - round(255 * srgb)) <= 1


def test_a_sequence_takes_a_soundtrack_and_a_default_output_beside_its_folder(tmp_path):
    shot = _shot(tmp_path / "shot", range(6))
    write_image(tmp_path / "s.png", stripes(48, 48))
    sound = make_clip(tmp_path / "sound.mp4", frames=12)
    assert main(["render", str(shot), "--style", str(tmp_path / "s.png"), "--audio", str(sound), *TINY]) == 0
    out = tmp_path / "shot_s.mp4"
    assert out.exists() and _frames(out) == 6
    assert "audio" in [t for t, _ in streams(out)]
    assert main(["render", str(shot), "--style", str(tmp_path / "s.png"), "--audio", str(tmp_path / "no.wav"),
                 "-o", str(tmp_path / "o2.mp4"), *TINY]) == 1


def test_frames_of_another_size_are_refused_with_the_file(tmp_path):
    shot = _shot(tmp_path / "shot", [0, 1])
    write_image(shot / "0002.png", pattern(40, 64))
    with pytest.raises(InputError, match="0002.png is 64x40"):
        list(read_frames(shot / "%04d.png"))


def _numbers(folder: Path, suffix: str) -> list[int]:
    return sorted(int(p.stem) for p in folder.glob(f"*{suffix}") if p.stem.isdigit())


def test_a_sequence_renders_into_a_sequence_with_its_own_numbers(tmp_path):
    shot = _shot(tmp_path / "shot", range(1001, 1006))
    write_image(tmp_path / "s.png", stripes(48, 48))
    (tmp_path / "out").mkdir()
    pat = tmp_path / "out" / "%04d.png"
    args = ["render", str(shot / "%04d.png"), "--style", str(tmp_path / "s.png"), "-o", str(pat), *TINY]
    assert main(args) == 0
    assert _numbers(tmp_path / "out", ".png") == [1001, 1002, 1003, 1004, 1005]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files or work folder left
    img = cv2.imread(str(tmp_path / "out" / "1003.png"))
    assert img.shape == (48, 64, 3)
    assert main(args) == 1  # the frames exist: refused without --overwrite
    for f in (tmp_path / "out").iterdir():
        f.unlink()
    assert main([*args, "--start", f"{2 / 24}"]) == 0  # a cut keeps the source's numbers
    assert _numbers(tmp_path / "out", ".png") == [1003, 1004, 1005]


def test_a_video_renders_into_exr_frames_from_the_start_number(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=4)
    write_image(tmp_path / "s.png", stripes(48, 48))
    (tmp_path / "out").mkdir()
    assert main(["render", str(clip), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "out" / "f%03d.exr"),
                 "--start-number", "7", *TINY]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["f007.exr", "f008.exr", "f009.exr", "f010.exr"]
    back = list(read_frames(tmp_path / "out" / "f%03d.exr"))  # linear out, sRGB back in
    with av.open(str(tmp_path / "out" / "f007.exr")) as c:
        assert c.streams.video[0].codec_context.name == "exr"
    assert len(back) == 4 and back[0].image.shape == (48, 64, 3)


def test_a_sequence_output_refuses_what_it_cannot_do_in_one_line(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=4)
    write_image(tmp_path / "s.png", stripes(48, 48))
    base = ["render", str(clip), "--style", str(tmp_path / "s.png"), *TINY]
    for out, expect in ((tmp_path / "nofolder" / "%04d.png", "does not exist"),
                        (tmp_path / "%04d_%04d.png", "one frame-number field")):
        assert main([*base, "-o", str(out)]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0]
    assert main([*base, "-o", str(tmp_path / "%04d.png"), "--loop", "2"]) != 0
    assert "--loop renders into a video file" in capsys.readouterr().err


def test_an_interrupted_sequence_render_resumes_to_the_same_frames(tmp_path, monkeypatch):
    from videostyle.render import policy

    shot = _shot(tmp_path / "shot", range(8))
    write_image(tmp_path / "s.png", stripes(48, 48))
    outs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        outs.append(["render", str(shot / "%04d.png"), "--style", str(tmp_path / "s.png"),
                     "-o", str(tmp_path / name / "%04d.png"), "--chunk-frames", "3", *TINY])
    assert main(outs[0]) == 0
    real, calls = policy.VideoStylizer.frame, {"n": 0}

    def interrupted(self, index, *args, **kw):
        if index == 5 and not calls["n"]:
            calls["n"] = 1
            raise KeyboardInterrupt
        return real(self, index, *args, **kw)

    monkeypatch.setattr(policy.VideoStylizer, "frame", interrupted)
    assert main(outs[1]) == 130
    assert 3 <= len(list((tmp_path / "b").glob("*.png"))) < 8  # the first chunk's frames are out
    monkeypatch.undo()
    assert main(outs[1]) == 0
    for n in range(8):
        assert (tmp_path / "a" / f"{n:04d}.png").read_bytes() == (tmp_path / "b" / f"{n:04d}.png").read_bytes()


def test_a_video_whose_name_looks_like_a_pattern_is_that_video(tmp_path):
    from videostyle.io.sequence import is_sequence

    clip = make_clip(tmp_path / "take [final] %d.mp4", frames=3)
    assert not is_sequence(clip) and probe(clip).sequence is None
    assert len(list(read_frames(clip))) == 3
    assert is_sequence(tmp_path / "shot" / "%04d.png") and is_sequence(tmp_path)
