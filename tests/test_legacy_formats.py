"""Older formats that real sample collections are full of: each renders to MP4 and Matroska with
its audio kept (copied where the container takes it, else re-encoded) over the same span."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from videostyle.io.images import write_image

from .clips import audio_packets, streams
from .conftest import stripes
from .legacy_clips import LEGACY
from .test_video import render

# (fixture, container) -> "copy" (the source's packets as they are) or the codec re-encoded to.
EXPECTED_AUDIO = {
    ("wma.asf", ".mp4"): "aac", ("wma.asf", ".mkv"): "aac",  # no WMA in either (see audio._muxer_takes)
    ("ac3.rm", ".mp4"): "aac",  # MP4 takes AC-3 only at 32, 44.1 and 48 kHz
    ("ac3.rm", ".mkv"): "copy",
    ("mp2.mpg", ".mp4"): "copy", ("mp2.mpg", ".mkv"): "copy",
    ("theora.ogv", ".mp4"): "aac",  # Vorbis in MP4 plays nowhere
    ("theora.ogv", ".mkv"): "copy",
    ("amr.3gp", ".mp4"): "aac", ("amr.3gp", ".mkv"): "aac",
}


def _audio(path: Path) -> tuple[str, float, float, float]:
    """(codec, start, end, longest frame) of the first audio stream, in seconds, from its packets."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        tb = a.time_base
        pkts = [p for p in c.demux(a) if p.size and p.pts is not None]
        start = min(p.pts for p in pkts) * tb
        end = max(p.pts + (p.duration or 0) for p in pkts) * tb
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        frame = max(f.samples for f in c.decode(a)) / a.codec_context.sample_rate
        codec = a.codec_context.name
    return codec, float(start), float(end), frame


def _decoded_video_frames(path: Path) -> int:
    """Frames FFmpeg's own tool decodes: it skips empty packets (Theora's repeats)."""
    with av.open(str(path)) as c:
        return sum(len(p.decode()) for p in c.demux(c.streams.video[0]) if p.size or not p.buffer_ptr)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("legacy")
    return {name: build(root / name) for name, build in LEGACY.items()}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("name", list(LEGACY))
def test_legacy_clip_renders_with_its_audio(tmp_path, legacy, name, suffix):
    src = legacy[name]
    style = tmp_path / "style.png"
    write_image(style, stripes(32, 32))
    out = tmp_path / f"out{suffix}"
    res = render(src, out, style)
    assert [t for t, _ in streams(out)] == ["video", "audio"]
    assert res.frames == _decoded_video_frames(src) == _decoded_video_frames(out)

    codec, start, end, frame = _audio(out)
    _, src_start, src_end, src_frame = _audio(src)
    expected = EXPECTED_AUDIO[(name, suffix)]
    if expected == "copy":
        assert audio_packets(out) == audio_packets(src)
    else:
        assert codec == expected
    # The same span of sound, to within one audio frame (of either codec): an encoder's priming
    # samples sit before zero, and the end is rounded to a whole frame.
    tol = max(frame, src_frame) + 1e-3
    assert abs(end - src_end) <= tol
    assert abs(max(start, 0.0) - max(src_start, 0.0)) <= tol


def test_theora_fixture_has_the_empty_packets_that_broke_decoding(legacy):
    with av.open(str(legacy["theora.ogv"])) as c:
        sizes = [p.size for p in c.demux(c.streams.video[0]) if p.buffer_ptr]
    assert sizes.count(0) == len(sizes) // 3 and len(sizes) == 48


def test_wma_fixture_has_a_channel_count_without_a_layout(legacy):
    with av.open(str(legacy["wma.asf"])) as c:
        assert c.streams.audio[0].codec_context.layout.name == "1 channels"
