"""Damaged streams rendered as the ffmpeg tool renders them: a packet that does not decode is
skipped and its slot shows the frame before, with one warning; --strict refuses; a file that is
mostly damage is refused with the count. The fixtures are damaged the way downloads are (byte
ranges zeroed in a PyAV-made file) and the way real Theora files are (packets the decoder
rejects with EPERM), and an independent decoder (the ffmpeg tool) checks that they still play."""

from __future__ import annotations

import errno
import random
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.io.media import read_frames

from .clips import make_clip, streams
from .conftest import stripes
from .legacy_clips import theora_ogg

TINY = ["--model", "random", "--size", "64", "--iterations", "2", "--iterations-later", "1", "--device", "cpu",
        "--precision", "fp32", "--settle", "0", "-q"]


def _ffmpeg() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def _video_packets(path: Path) -> list[tuple[int, int, int]]:
    with av.open(str(path)) as c:
        return [(p.pos, p.size, p.pts) for p in c.demux(c.streams.video[0]) if p.size]


def _decode_errors(path: Path) -> list[int | None]:
    """The errno of each video packet that fails to decode."""
    errs = []
    with av.open(str(path)) as c:
        for p in c.demux(c.streams.video[0]):
            if p.size == 0 and p.buffer_ptr:
                continue
            try:
                p.decode()
            except av.error.FFmpegError as exc:
                errs.append(exc.errno)
    return errs


def _zeroed(src: Path, dst: Path, which: list[int]) -> Path:
    """``src`` with 8 bytes zeroed at the start of the video packets ``which`` (their NAL lengths)."""
    data = bytearray(src.read_bytes())
    packets = _video_packets(src)
    for i in which:
        pos = packets[i][0]
        data[pos:pos + 8] = bytes(8)
    dst.write_bytes(bytes(data))
    return dst


def _ffmpeg_frames(path: Path, tmp: Path) -> int:
    """Frames the ffmpeg tool writes when it transcodes ``path`` (it must not give up)."""
    out = tmp / f"{path.stem}.ffmpeg.mp4"
    r = subprocess.run([_ffmpeg(), "-y", "-v", "error", "-i", str(path), "-map", "0:v", "-c:v", "libx264",
                        "-preset", "ultrafast", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_packets_that_do_not_decode_are_held_as_ffmpeg_skips_them(tmp_path, capsys):
    src = make_clip(tmp_path / "src.mp4", frames=48, size=(128, 96))
    bad = _zeroed(src, tmp_path / "bad.mp4", [5, 13, 21, 29, 37])
    assert len(_decode_errors(bad)) == 5  # the fixture is what it claims
    assert _ffmpeg_frames(bad, tmp_path) == 43  # ffmpeg carries on past them
    warnings: list[str] = []
    frames = list(read_frames(bad, warn=warnings.append))
    assert [f.pts for f in frames] == [p for _, _, p in _video_packets(src)]  # every slot, in time
    assert len(warnings) == 1 and "5 frame(s) did not decode" in warnings[0] and "0.42 s" in warnings[0]
    assert np.array_equal(frames[5].image, frames[4].image)  # the slot holds the frame before
    assert not np.array_equal(frames[6].image, frames[5].image)
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "out.mp4"
    args = ["render", str(bad), "--style", str(tmp_path / "s.png"), *TINY]
    assert main([*args, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("did not decode") == 1
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert sum(1 for _ in c.decode(v)) == 48 and c.streams.audio
    assert ("audio", "aac") in streams(out)
    early = _zeroed(src, tmp_path / "early.mp4", [1, 2, 3, 4, 5])  # (refused at once, not at the end)
    args = ["render", str(early), "--style", str(tmp_path / "s.png"), *TINY]
    assert main([*args, "-o", str(tmp_path / "strict.mp4"), "--strict"]) == 1
    line = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(line) == 1 and "corrupt: 5 of" in line[0] and not (tmp_path / "strict.mp4").exists()


def test_a_file_that_is_mostly_damage_is_refused_with_the_count(tmp_path, capsys):
    src = make_clip(tmp_path / "src.mp4", frames=40, size=(128, 96))
    bad = _zeroed(src, tmp_path / "bad.mp4", list(range(1, 38)))
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(bad), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"), *TINY]) == 1
    line = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(line) == 1 and "too damaged to render" in line[0] and "video packets decode" in line[0]


def _theora_with_rejected_packets(tmp: Path) -> Path:
    """A Theora clip whose later packets the decoder rejects (EPERM, "error in unpack_block_qpis"),
    as in real files: the container is intact (Ogg pages and their checksums are rewritten by the
    muxer), the packets' payload is not."""
    src = theora_ogg(tmp / "theora.ogv")
    out = tmp / "rejected.ogv"
    rnd = random.Random(0)
    with av.open(str(src)) as i, av.open(str(out), "w", format="ogg") as o:
        vin = i.streams.video[0]
        ain = i.streams.audio[0]
        vo, ao = o.add_stream_from_template(vin, opaque=True), o.add_stream_from_template(ain, opaque=True)
        k = 0
        for p in i.demux():
            if p.dts is None and p.size == 0:
                continue
            if p.stream is vin:
                if p.size and k >= 3 and rnd.random() < 0.3:
                    b = bytearray(bytes(p))
                    for _ in range(2):
                        b[rnd.randrange(1, min(len(b), 16))] ^= 0xFF
                    q = av.Packet(bytes(b))
                    q.pts, q.dts, q.time_base = p.pts, p.dts, p.time_base
                    p = q
                k += 1
                p.stream = vo
            else:
                p.stream = ao
            o.mux(p)
    return out


def test_theora_packets_the_decoder_rejects_are_skipped(tmp_path, capsys):
    ogv = _theora_with_rejected_packets(tmp_path)
    errs = _decode_errors(ogv)
    assert errs and errno.EPERM in errs  # rejected as real files are
    assert _ffmpeg_frames(ogv, tmp_path) > 0  # the ffmpeg tool writes a video
    write_image(tmp_path / "s.png", stripes(48, 48))
    out = tmp_path / "out.mkv"
    assert main(["render", str(ogv), "--style", str(tmp_path / "s.png"), "-o", str(out), *TINY]) == 0
    assert "did not decode" in capsys.readouterr().err
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == len(list(read_frames(ogv))) and n > 0


def test_a_damaged_first_packet_is_dropped_not_a_crash(tmp_path, capsys):
    """Nothing comes before the first frame to hold in its slot: the probe reads the first frame
    that decodes, and the render starts at the next keyframe (a second in, as in a phone clip)."""
    from videostyle.io.media import probe

    src = make_clip(tmp_path / "src.mp4", frames=24, size=(128, 96), keyint=12)
    bad = _zeroed(src, tmp_path / "bad.mp4", [0])
    assert len(_decode_errors(bad)) >= 1
    assert probe(bad).width == 128
    frames = list(read_frames(bad))
    assert len(frames) == 12 and frames[0].pts == _video_packets(src)[12][2]
    write_image(tmp_path / "s.png", stripes(48, 48))
    assert main(["render", str(bad), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"), *TINY]) == 0
