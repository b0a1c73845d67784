"""videostyle in shell pipelines: standard input and output as the video, with real pipes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from videostyle.io.images import write_image

from .clips import audio_packets, make_clip, streams, video_pts
from .conftest import stripes

FAST = ["--model", "random", "--size", "48", "--iterations", "2", "--iterations-later", "1", "--preset", "ultrafast"]


@pytest.fixture
def media(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=10, audio=("aac",), languages=("eng",))
    style = tmp_path / "s.png"
    write_image(style, stripes(64, 64))
    return tmp_path, src, style


def _sh(script: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, VS=f"{sys.executable} -m videostyle")
    return subprocess.run(["bash", "-c", "set -o pipefail; " + script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_stdin_to_stdout_keeps_frames_and_audio(media):
    tmp, src, style = media
    flags = " ".join(FAST)
    r = _sh(f"cat {src} | $VS render - --style {style} -o - -f matroska {flags} > out.mkv", tmp)
    assert r.returncode == 0, r.stderr
    out = tmp / "out.mkv"
    assert len(video_pts(out)) == 10
    assert [k for k, _ in streams(out)].count("audio") == 1
    assert audio_packets(out) == audio_packets(src)  # copied, byte for byte
    assert "Traceback" not in r.stderr and "no resume" in r.stderr  # progress and notes on stderr only


def test_stdin_to_a_file_and_a_file_to_stdout(media):
    tmp, src, style = media
    flags = " ".join(FAST)
    r = _sh(f"$VS render - --style {style} -o piped.mp4 -q {flags} < {src}", tmp)
    assert r.returncode == 0, r.stderr
    assert len(video_pts(tmp / "piped.mp4")) == 10
    r = _sh(f"$VS render {src} --style {style} -o - -f mpegts -q {flags} | cat > out.ts", tmp)
    assert r.returncode == 0, r.stderr
    assert len(video_pts(tmp / "out.ts")) == 10


def test_closed_downstream_pipe_is_one_line_and_no_hang(media):
    tmp, src, style = media
    long = make_clip(tmp / "long.mkv", frames=60, audio=("aac",), languages=("eng",))
    flags = " ".join(FAST)
    r = _sh(f"$VS render {long} --style {style} -o - -f matroska -q {flags} | head -c 1000 > /dev/null; "
            "exit ${PIPESTATUS[0]}", tmp, timeout=120)
    assert r.returncode in (141, 1), (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert "pipe" in lines[-1] and lines[-1].startswith("videostyle: error:")


@pytest.mark.parametrize("args,message", [
    (["-o", "-"], "name the container with -f matroska"),
    (["-o", "-", "-f", "mp4"], "use -f matroska"),
    (["-o", "x.mkv", "-f", "matroska"], "-f names the container of -o -"),
])
def test_pipe_flag_errors(media, args, message):
    tmp, src, style = media
    r = subprocess.run([sys.executable, "-m", "videostyle", "render", str(src), "--style", str(style), *args, *FAST],
                       cwd=tmp, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_empty_stdin_is_one_line(media):
    tmp, _, style = media
    r = _sh(f"$VS render - --style {style} -o out.mp4 -q {' '.join(FAST)} < /dev/null", tmp)
    assert r.returncode != 0 and "standard input" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp / "out.mp4").exists()
