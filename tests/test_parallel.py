"""Parallel segment renders on a real local Ray cluster (loopback only)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from videostyle.cli import main
from videostyle.io.images import write_image
from videostyle.config import Config, apply
from videostyle.io.media import probe
from videostyle.engines import span
from videostyle.render.parallel import Segment, plan_segments
from videostyle.render.scan import scan
from videostyle.engines import render_spec, scan_spec

from .clips import audio_packets, make_clip, streams, video_pts
from .conftest import hide_module, stripes


def test_plan_even_segments_with_overlap():
    segs = plan_segments(40, [], 2, 6)
    assert segs == [Segment(0, 0, 20, 0), Segment(1, 20, 40, 6)]
    assert segs[1].first == 14


def test_plan_snaps_to_scene_cuts_without_overlap():
    segs = plan_segments(40, [17, 33], 2, 6)
    assert segs == [Segment(0, 0, 17, 0), Segment(1, 17, 40, 0)]
    segs = plan_segments(60, [30], 3, 4)  # ideal 20/40; the cut at 30 is too far from both
    assert [(s.start, s.warmup) for s in segs] == [(0, 0), (20, 4), (40, 4)]


def test_plan_never_more_segments_than_frames():
    assert len(plan_segments(2, [], 8, 4)) == 2


def test_planner_finds_the_scene_cut_on_small_frames(tmp_path):
    """The planner's scan at 160 px finds the same cut as one at the stylized size, and no other."""
    src = make_clip(tmp_path / "cut.mp4", frames=12, size=(320, 240), audio=(), cut_at=7)
    cfg = apply(Config(), {"optim.size": 320})
    info = probe(src)
    small, full = scan(src, scan_spec(cfg), span(cfg), info), scan(src, scan_spec(cfg), span(cfg), info, side=0)
    assert (small.frames, small.cuts) == (full.frames, full.cuts) == (12, (7,))
    assert small.unreliable[0] == 1.0 and max(small.unreliable[1:7] + small.unreliable[8:]) < 0.5


def test_the_scan_foresees_a_cut_that_only_the_stylized_size_shows(tmp_path):
    """Fast motion: a pattern that moves 20 px a frame at 320 px (10 at the scan's 160) keeps
    enough reliable flow at 160 px not to be a cut there, and not at 320 px, where the render
    decides. The scan says the render's cuts: the frames the render starts again."""
    src = make_clip(tmp_path / "fast.mp4", frames=4, size=(320, 240), audio=(), shift_per_frame=20)
    cfg = apply(Config(), {"optim.size": 320})
    info = probe(src)
    small, full = scan(src, scan_spec(cfg), span(cfg), info), scan(src, scan_spec(cfg), span(cfg), info, side=0)
    assert max(small.unreliable[1:]) < 1 - cfg.temporal.scene_cut  # (no cut at 160 px alone)
    assert small.cuts == full.cuts == (1, 2, 3)
    style = tmp_path / "s.png"
    write_image(style, stripes(48, 48))
    events = tmp_path / "events.jsonl"
    assert main(["render", str(src), "--style", str(style), "-o", str(tmp_path / "o.mp4"), "--model", "random",
                 "--size", "320", "--iterations", "2", "--iterations-later", "1", "--settle", "0", "--device", "cpu",
                 "-q", "--progress-file", str(events)]) == 0
    frames = [json.loads(ln) for ln in events.read_text().splitlines() if '"frame"' in ln]
    assert [f["index"] for f in frames if f["restarted"]] == [1, 2, 3]


def test_missing_ray_gives_one_line(tmp_path, monkeypatch, capsys):
    hide_module(monkeypatch, "ray")
    src = make_clip(tmp_path / "c.mp4", frames=3)
    style = tmp_path / "s.png"
    write_image(style, stripes(48, 48))
    rc = main(["render", str(src), "--style", str(style), "-o", str(tmp_path / "o.mp4"), "--workers", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and 'pip install -e ".[ray]"' in err and len(err.splitlines()) == 1


# Only the tests that start a cluster need the [ray] extra; the planner and the "missing extra"
# message are tested without it.
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason='needs the [ray] extra: pip install -e ".[ray]"')

FAST = ["--model", "random", "--size", "64", "--iterations", "3", "--iterations-later", "2", "--preset", "ultrafast",
        "--device", "cpu", "-q"]


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_seam_cross_fade_weights(tmp_path):
    """The K frames two segments share go from the earlier segment's to the later one's in K+1
    equal steps: weights 1/(K+1) .. K/(K+1) of the later segment, then all of it."""
    from videostyle.render.parallel import composite
    from videostyle.io.workdir import WorkDir

    segs = plan_segments(20, [], 2, 4)
    assert [(s.start, s.end, s.warmup) for s in segs] == [(0, 10, 0), (10, 20, 4)]
    work = WorkDir(tmp_path / "o.mp4", {})
    work.open(restart=True)
    for s, value in zip(segs, (0, 200)):
        for i in range(s.first, s.end):
            work.segment(s.index).save(i, np.full((4, 4, 3), value, np.uint8))
    got = [int(composite(work, segs, i)[0, 0, 0]) for i in range(20)]
    assert got == [0] * 6 + [40, 80, 120, 160] + [200] * 10


@needs_ray
def test_two_workers_match_one_worker_on_every_frame_and_the_seam_does_not_flicker(tmp_path):
    from videostyle.config import Config, apply
    from videostyle.metrics import temporal_error
    from videostyle.render.parallel import ParallelRender, composite, ray_session

    n, k = 24, 4
    src = make_clip(tmp_path / "c.mp4", frames=n, audio=("aac",), shift_per_frame=1)
    style = tmp_path / "s.png"
    write_image(style, stripes(48, 48))
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    assert main(["render", str(src), "--style", str(style), "-o", str(one), *FAST]) == 0
    cfg = apply(Config(), {"style.images": [str(style)], "model.name": "random", "optim.size": 64,
                           "optim.iterations": 3, "optim.iterations_later": 2, "encode.preset": "ultrafast",
                           "encode.crf": 0, "render.device": "cpu", "render.workers": 2, "render.overlap": k})
    pr = ParallelRender(src, two, render_spec(cfg))
    with ray_session(None) as ray:
        pr.submit(ray)
        pr.wait(ray)
    seam = pr.segs[1]
    assert (seam.start, seam.warmup) == (n // 2, k)
    expected = [composite(pr.work, pr.segs, i).astype(int) for i in range(n)]
    pr.mux()
    assert streams(two) == streams(one)
    assert video_pts(two) == pytest.approx(video_pts(one), abs=1e-6)
    assert audio_packets(two) == audio_packets(one) == audio_packets(src)
    assert not (tmp_path / ".two.mp4.videostyle-work").exists()

    fa, fb = _frames(one), _frames(two)
    assert len(fa) == len(fb) == n
    def luma(x: np.ndarray) -> np.ndarray:  # crf 0 keeps luma; 4:2:0 halves the colour resolution
        return x[..., :3].astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)

    for i, frame in enumerate(fb):
        # every frame is its composite, in its place
        diffs = {j: np.abs(luma(frame) - luma(expected[j])).mean() for j in (i - 1, i, i + 1) if 0 <= j < n}
        assert diffs[i] < 2 and diffs[i] == min(diffs.values()), (i, diffs)
    # the first segment, up to the seam, is the single-process chain (up to the float differences
    # of another torch thread count in the worker)
    assert max(np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(fa[:seam.first], fb)) < 3
    # the seam frames flicker no more than the others
    errs = temporal_error(two, src, gaps=(1,)).per_frame[1]  # errs[j]: frame j + 1 against frame j
    at_seam = [errs[i - 1] for i in range(seam.first, seam.start + 1)]
    others = [e for j, e in enumerate(errs) if not seam.first <= j + 1 <= seam.start]
    assert max(at_seam) <= 1.5 * float(np.median(others)), (at_seam, float(np.median(others)))


def start_slow_parallel_render(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen]:
    """A 20-frame clip rendered by 2 Ray workers in a subprocess, slowly enough to interrupt."""
    src = make_clip(tmp_path / "c.mp4", frames=20, audio=("aac",))
    style = tmp_path / "s.png"
    write_image(style, stripes(48, 48))
    out = tmp_path / "o.mp4"
    slow = ["--model", "random", "--size", "64", "--iterations", "40", "--iterations-later", "15", "--preset",
            "ultrafast", "--device", "cpu", "-q", "--workers", "2", "--overlap", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "videostyle", "render", str(src), "--style", str(style),
                             "-o", str(out), *slow], stderr=subprocess.PIPE, text=True)
    return src, out, proc


@needs_ray
def test_killed_worker_is_retried_and_output_complete(tmp_path):
    src, out, proc = start_slow_parallel_render(tmp_path)
    seg = tmp_path / ".o.mp4.videostyle-work" / "segment001"
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        frames = list((seg / "frames").glob("*.png")) if seg.exists() else []
        if len(frames) >= 2 and (seg / "worker.pid").exists():
            killed = int((seg / "worker.pid").read_text())
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.05)
    assert killed is not None, "segment 1 never got going"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(video_pts(out)) == 20
    assert video_pts(out) == pytest.approx(video_pts(src), abs=1e-6)
    assert audio_packets(out) == audio_packets(src)


@needs_ray
def test_sigterm_stops_a_parallel_render_like_ctrl_c(tmp_path):
    _, out, proc = start_slow_parallel_render(tmp_path)
    work = tmp_path / ".o.mp4.videostyle-work"
    deadline = time.time() + 180
    sent = False
    while time.time() < deadline and proc.poll() is None:
        if len(list(work.glob("segment*/frames/*.png"))) >= 2:
            proc.send_signal(signal.SIGTERM)
            sent = True
            break
        time.sleep(0.05)
    assert sent, "the segments never got going"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert list(work.glob("segment*/frames/*.png"))  # finished frames kept


@needs_ray
def test_batch_spreads_jobs_over_the_cluster_and_isolates_failures(tmp_path, capsys):
    import json

    import yaml

    make_clip(tmp_path / "a.mp4", frames=8, audio=("aac",))
    make_clip(tmp_path / "b.mp4", frames=6, audio=())
    (tmp_path / "bad.mp4").write_text("not a video")
    write_image(tmp_path / "s.png", stripes(48, 48))
    fast = {"model": "random", "size": 48, "iterations": 2, "iterations_later": 1, "device": "cpu",
            "encode": {"preset": "ultrafast"}, "workers": 2, "overlap": 2}
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump({"defaults": fast, "jobs": [
        {"name": "two", "inputs": ["a.mp4", "bad.mp4", "b.mp4"], "style": "s.png", "output": "out/{input_stem}.mp4"},
    ]}))
    report = tmp_path / "r.json"
    rc = main(["batch", str(jobs), "--report", str(report), "-q"])
    assert rc == 1
    data = json.loads(report.read_text())
    assert [r["status"] for r in data["renders"]] == ["ok", "failed", "ok"]
    assert len(video_pts(tmp_path / "out" / "a.mp4")) == 8 and len(video_pts(tmp_path / "out" / "b.mp4")) == 6
    assert audio_packets(tmp_path / "out" / "a.mp4") == audio_packets(tmp_path / "a.mp4")
    assert "bad.mp4" in capsys.readouterr().err


# Lists the TCP sockets that this process and its descendants listen on, from /proc (Linux).
LISTEN_PROBE = r"""
import json, os, socket
from videostyle.render.parallel import ray_session
from videostyle.engines import render_spec

def addr(hexaddr):
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, raw), int(port, 16)

def listening():
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":
                inodes[f[9]] = addr(f[1])
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass

    def ours(pid):
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parent.get(pid, 0)
        return False
    found = []
    for pid in parent:
        if not ours(pid):
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                found.append(inodes[link[8:-1]])
    return found

with ray_session(None) as ray:
    @ray.remote
    def ping():
        return 1
    ray.get(ping.remote())  # a worker process is up too
    print(json.dumps(listening()))
"""


@needs_ray
def test_embedded_cluster_listens_on_loopback_only_whatever_the_environment():
    """Ray binds all interfaces unless told before its import; the package tells it itself."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    r = subprocess.run([sys.executable, "-c", LISTEN_PROBE], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    import ipaddress
    import json
    sockets = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(sockets) >= 3, sockets  # GCS, raylet, the driver's and the worker's servers
    exposed = []
    for ip, port in sockets:
        a = ipaddress.ip_address(ip)
        a = a.ipv4_mapped or a if isinstance(a, ipaddress.IPv6Address) else a
        if not a.is_loopback:
            exposed.append((ip, port))
    assert not exposed, f"listening beyond loopback: {exposed}"
