"""Video renders, checked as an independent reader (PyAV) sees the output file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from videostyle.engines import new_stylizer
from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec

from .clips import audio_packets, make_clip, streams, video_pts
from .conftest import pattern, stripes, tiny_config, tiny_extractor


@pytest.fixture
def style(tmp_path) -> Path:
    p = tmp_path / "style.png"
    write_image(p, stripes(48, 48))
    return p


def render(src: Path, out: Path, style: Path, **over):
    over.setdefault("optim.size", 0)
    cfg = tiny_config(**{"style.images": [str(style)], "optim.iterations": 2, "optim.iterations_later": 1,
                         "encode.preset": "ultrafast", **over})
    return render_video(src, out, render_spec(cfg), stylizer=new_stylizer(cfg, extractor=tiny_extractor()))


def test_mp4_keeps_timestamps_frames_and_audio_bytes(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", frames=12)
    out = tmp_path / "out.mp4"
    res = render(src, out, style)
    assert res.frames == 12
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_pts(out) == pytest.approx(video_pts(src), abs=1e-6)
    assert audio_packets(out) == audio_packets(src)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (64, 48)
        assert v.codec_context.pix_fmt == "yuv420p"
        assert v.codec_context.color_primaries == 1 and v.codec_context.colorspace == 1
        dur_out = c.duration / 1e6
    with av.open(str(src)) as c:
        dur_src = c.duration / 1e6
    assert abs(dur_out - dur_src) <= 1 / 12 + 1e-3
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob("*videostyle-work"))


def test_vfr_and_start_offset_are_kept(tmp_path, style):
    src = make_clip(tmp_path / "vfr.mp4", frames=10, vfr=True, start_pts=300)
    out = tmp_path / "out.mp4"
    render(src, out, style)
    src_pts, out_pts = video_pts(src), video_pts(out)
    assert src_pts[0] > 0.2
    assert out_pts == pytest.approx(src_pts, abs=1e-6)
    gaps = np.diff(out_pts)
    assert gaps.max() > 2 * gaps.min()  # still variable frame rate


def test_rotation_is_applied_and_odd_size_made_even(tmp_path, style):
    src = make_clip(tmp_path / "rot.mp4", frames=4, size=(66, 50), rotation=90, audio=())
    out = tmp_path / "out.mp4"
    render(src, out, style)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (50, 66)
        frame = next(c.decode(v))
        assert not frame.rotation
    odd = make_clip(tmp_path / "odd.mp4", frames=3, size=(65, 49), audio=(), codec="mpeg4")
    out2 = tmp_path / "odd_out.mp4"
    render(odd, out2, style)
    with av.open(str(out2)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height) == (64, 48)
    out3 = tmp_path / "odd_pad.mp4"
    render(odd, out3, style, **{"encode.even": "pad"})
    with av.open(str(out3)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height) == (66, 50)


def test_no_audio_clip(tmp_path, style):
    src = make_clip(tmp_path / "silent.mp4", frames=5, audio=())
    out = tmp_path / "out.mp4"
    render(src, out, style)
    assert streams(out) == [("video", "h264")]
    assert len(video_pts(out)) == 5


def test_two_audio_tracks_into_mkv_keep_tags(tmp_path, style):
    src = make_clip(tmp_path / "two.mkv", frames=6, audio=("aac", "libopus"))
    out = tmp_path / "out.mkv"
    render(src, out, style)
    assert streams(out) == [("video", "h264"), ("audio", "aac"), ("audio", "opus")]
    assert audio_packets(out, 0) == audio_packets(src, 0)
    assert audio_packets(out, 1) == audio_packets(src, 1)
    with av.open(str(out)) as c:
        tags = [(dict(s.metadata).get("language"), dict(s.metadata).get("title")) for s in c.streams.audio]
    assert tags == [("eng", "track 0"), ("fra", "track 1")]


def test_pcm_audio_into_mp4_is_transcoded_to_aac(tmp_path, style):
    src = make_clip(tmp_path / "pcm.mov", frames=8, audio=("pcm_s16le",))
    out = tmp_path / "out.mp4"
    render(src, out, style)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        assert a.metadata.get("language") == "eng"
    assert abs(samples / 44100 - 8 / 12) < 0.05


def test_webm_vp9_with_opus(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.webm"
    render(src, out, style, **{"encode.codec": "vp9"})
    assert streams(out) == [("video", "vp9"), ("audio", "opus")]
    assert len(video_pts(out)) == 4


def test_segment_start_duration_and_max_frames(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", frames=24)
    out = tmp_path / "seg.mp4"
    res = render(src, out, style, **{"render.start": 0.5, "render.duration": 1.0})
    assert res.frames == 12
    pts = video_pts(out)
    assert pts[0] == pytest.approx(0.0, abs=1e-6) and len(pts) == 12
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        seconds = sum(f.samples for f in c.decode(a)) / 44100
    assert abs(seconds - 1.0) < 0.1
    out2 = tmp_path / "first.mp4"
    assert render(src, out2, style, **{"render.max_frames": 5}).frames == 5
    assert video_pts(out2) == pytest.approx(video_pts(src)[:5], abs=1e-6)


def test_failed_render_leaves_no_output(tmp_path, style, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    from videostyle.render import policy as video

    calls = {"n": 0}
    real = video.VideoStylizer.frame

    def boom(self, index, img, pairs=None, when=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(self, index, img, pairs, when)

    monkeypatch.setattr(video.VideoStylizer, "frame", boom)
    with pytest.raises(RuntimeError):
        render(src, out, style)
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial*"))


FAST = ["--model", "random", "--size", "48", "--iterations", "1", "--iterations-later", "1", "-q", "--preset",
        "ultrafast"]


def test_cli_video_end_to_end(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", frames=4)
    out = tmp_path / "clip_out.mp4"
    assert main(["render", str(src), "--style", str(style), "-o", str(out), *FAST]) == 0
    assert len(video_pts(out)) == 4


@pytest.mark.parametrize("case,needle", [
    ("missing", "does not exist"),
    ("text", "not a readable video"),
    ("audio_only", "has no video stream"),
    ("same", "is the input file"),
    ("nodir", "does not exist"),
    ("badext", "unknown video extension"),
    ("codec", "cannot go into .webm"),
])
def test_cli_video_errors(tmp_path, style, capsys, case, needle):
    src = make_clip(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "o.mp4"
    extra: list[str] = []
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("hello, not a video\n" * 50)
    elif case == "audio_only":
        src = tmp_path / "a.m4a"
        with av.open(str(src), "w", format="mp4") as c:
            a = c.add_stream("aac", rate=44100)
            fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            fr.sample_rate = 44100
            fr.pts = 0
            for p in a.encode(fr):
                c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    elif case == "same":
        out = src
    elif case == "nodir":
        out = tmp_path / "no" / "o.mp4"
    elif case == "badext":
        out = tmp_path / "o.avi"
    elif case == "codec":
        out = tmp_path / "o.webm"
        extra = ["--codec", "h264"]
    before = src.read_bytes() if src.exists() else None
    rc = main(["render", str(src), "--style", str(style), "-o", str(out), *FAST, *extra])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    if before is not None:
        assert src.read_bytes() == before
    if case != "same":
        assert not out.exists()


def test_truncated_clip_warns_or_fails_cleanly(tmp_path, style, capsys):
    src = make_clip(tmp_path / "clip.mkv", frames=24, audio=())
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "o.mp4"
    rc = main(["render", str(cut), "--style", str(style), "-o", str(out), *FAST])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 0:
        assert 0 < len(video_pts(out)) < 24
        assert "truncated" in err
    else:
        assert not out.exists()


@pytest.mark.parametrize("flow_workers", [1, 3])
def test_overlapped_threads_equal_inline_render(tmp_path, style, flow_workers):
    src = make_clip(tmp_path / "in.mp4", frames=7, audio=("aac",), cut_at=4)
    a, b = tmp_path / "thr.mkv", tmp_path / "inl.mkv"
    long_term = {"temporal.weight": 1.0, "temporal.frames": (1, 2)}
    ra = render(src, a, style, **{"render.stage_threads": True, "flow.workers": flow_workers, **long_term})
    rb = render(src, b, style, **{"render.stage_threads": False, **long_term})
    assert ra.iterations == rb.iterations
    assert ra.iterations[4] == ra.iterations[0]  # the scene cut restarted with full iterations
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        fa = [f.to_ndarray(format="rgb24") for f in ca.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in cb.decode(video=0)]
    assert len(fa) == 7 and all(np.array_equal(x, y) for x, y in zip(fa, fb))
    assert audio_packets(a) == audio_packets(b)


@pytest.mark.parametrize("temporal", [{}, {"temporal.weight": 30.0, "temporal.frames": [1, 2]}],
                         ids=["no-temporal", "temporal-loss"])
def test_static_shot_stops_early(tmp_path, style, temporal):
    """A static shot's later frames start at the first frame's result and stop at once, also with
    temporal terms (they are left out of the comparison with the first frame's loss)."""
    src = make_clip(tmp_path / "still.mp4", frames=5, audio=(), shift_per_frame=0)
    res = render(src, tmp_path / "o.mp4", style, **{"optim.iterations": 10, "optim.iterations_later": 10, **temporal})
    assert res.iterations[0] == 10
    assert max(res.iterations[1:]) < 10


def test_encoder_thread_error_reaches_caller(tmp_path, style, monkeypatch):
    from videostyle.io import mux
    from videostyle.errors import OutputError

    src = make_clip(tmp_path / "in.mp4", frames=6)

    def broken(self, image, pts, alpha=None):
        raise OutputError("disk full (simulated)")

    monkeypatch.setattr(mux.VideoWriter, "write", broken)
    out = tmp_path / "o.mp4"
    with pytest.raises(OutputError, match="disk full"):
        render(src, out, style)
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_output_size_source_upscales_video(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=(), size=(96, 64))
    out = tmp_path / "o.mp4"
    render(src, out, style, **{"optim.size": 48, "encode.output_size": "source"})
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height) == (96, 64)


def _with_subtitles(src: Path, dst: Path) -> Path:
    """Remux ``src`` adding an ASS subtitle track (language eng)."""
    from fractions import Fraction

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vo = out.add_stream_from_template(vin)
        so = out.add_stream("ass")
        so.metadata["language"] = "eng"
        so.time_base = Fraction(1, 1000)
        for p in inp.demux(vin):
            if p.dts is None:
                continue
            p.stream = vo
            out.mux(p)
        for i, t in enumerate((100, 600)):
            pk = av.Packet(f"{i},0,Default,,0,0,0,,line {i}".encode())
            pk.pts, pk.dts, pk.duration, pk.time_base, pk.stream = t, t, 400, Fraction(1, 1000), so
            out.mux(pk)
    return dst


def test_subtitles_copied_into_mkv_and_dropped_from_mp4_with_warning(tmp_path, style):
    from videostyle.report import Reporter

    src = _with_subtitles(make_clip(tmp_path / "v.mkv", frames=8, audio=()), tmp_path / "subs.mkv")
    assert streams(src)[1][0] == "subtitle"
    out = tmp_path / "o.mkv"
    render(src, out, style)
    assert [t for t, _ in streams(out)] == ["video", "subtitle"]
    with av.open(str(out)) as c:
        s = c.streams.subtitles[0]
        assert s.metadata.get("language") == "eng"
        assert [bytes(p) for p in c.demux(s) if p.size] == [b"0,0,Default,,0,0,0,,line 0", b"1,0,Default,,0,0,0,,line 1"]

    notes: list[str] = []

    class Keep(Reporter):
        def notice(self, message):
            notes.append(message)

    cfg = tiny_config(**{"style.images": [str(style)], "optim.size": 0, "optim.iterations": 1,
                         "optim.iterations_later": 1, "encode.preset": "ultrafast"})
    mp4 = tmp_path / "o.mp4"
    render_video(src, mp4, render_spec(cfg), Keep(), stylizer=new_stylizer(cfg, extractor=tiny_extractor()))
    assert [t for t, _ in streams(mp4)] == ["video"]
    assert any("subtitle" in n and "dropped" in n for n in notes)


def _cover_stream(out):
    """An album cover's stream in ``out``: MJPEG marked as an attached picture, as tagged music
    and video files carry it (add every stream before ``_mux_cover``: muxing writes the header)."""
    art = out.add_stream("mjpeg")
    art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
    art.disposition = av.stream.Disposition.attached_pic
    return art


def _mux_cover(out, art) -> None:
    """The cover's one picture, 32x32 grey."""
    fr = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 128, np.uint8), format="rgb24").reformat(format="yuvj420p")
    fr.pts = 0
    for p in [*art.encode(fr), *art.encode(None)]:
        out.mux(p)


def test_cover_art_stream_is_ignored(tmp_path, style):
    src = make_clip(tmp_path / "v.mp4", frames=6, audio=("aac",))
    cov = tmp_path / "cover.mp4"
    with av.open(str(src)) as inp, av.open(str(cov), "w") as out:
        art = _cover_stream(out)
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vo, ao = out.add_stream_from_template(vin), out.add_stream_from_template(ain)
        _mux_cover(out, art)
        for p in inp.demux(vin, ain):
            if p.dts is not None:
                p.stream = vo if p.stream.type == "video" else ao
                out.mux(p)
    assert ("video", "mjpeg") in streams(cov)
    out = tmp_path / "o.mp4"
    render(cov, out, style)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert len(video_pts(out)) == 6


def test_music_with_cover_art_says_it_holds_no_video(tmp_path, style, capsys):
    """A song with its album cover (an attached picture beside the audio, as tagged music files
    carry it) is not a video: one line that says what the file holds, and no output."""
    song = tmp_path / "song.m4a"
    with av.open(str(song), "w", format="mp4") as c:
        art = _cover_stream(c)
        a = c.add_stream("aac", rate=44100)
        _mux_cover(c, art)
        sound = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        sound.sample_rate, sound.pts = 44100, 0
        for p in [*a.encode(sound), *a.encode(None)]:
            c.mux(p)
    out = tmp_path / "o.mp4"
    assert main(["render", str(song), "--style", str(style), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "song.m4a has no video stream" in err[0], err
    assert "1 cover picture" in err[0] and "1 audio stream" in err[0] and "give a video file" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
def test_hevc_two_frame_stream_gets_valid_decode_timestamps(tmp_path, suffix):
    """x265 returns garbage decode timestamps for about half of two-frame streams (a short last
    chunk); the writer repairs them instead of failing the render."""
    from fractions import Fraction

    from videostyle.io.mux import VideoFormat, VideoWriter

    for k in range(6):
        out = tmp_path / f"o{k}{suffix}"
        w = VideoWriter(out, VideoFormat(96, 64, Fraction(1, 19200), Fraction(192, 17), codec="hevc"))
        for i, pts in enumerate((16000, 16800)):
            w.write(pattern(64, 96, shift=i), pts)
        w.finish()
        assert video_pts(out) == pytest.approx([16000 / 19200, 16800 / 19200], abs=1e-6)
