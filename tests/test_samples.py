"""A first render with nothing to bring: the shipped samples, the example configs pointed at
them, the shipped presets by name, and ``videostyle demo``."""

from __future__ import annotations

import os

import av
import pytest

from videostyle import config as C
from videostyle.cli import main
from videostyle.io.media import probe
from videostyle.samples import CLIP, PAINTINGS, SAMPLES


def test_the_samples_are_real_media_with_their_sources():
    info = probe(CLIP)
    assert info.audio and 3.5 < (info.duration or 0) < 4.5 and (info.width, info.height) == (480, 270)
    sources = (SAMPLES / "SOURCES.md").read_text()
    for name in ("bunny.mp4", *PAINTINGS):
        assert (SAMPLES / name).is_file() and f"`{name}`" in sources
    assert "CC BY 3.0" in sources and sum(p.stat().st_size for p in SAMPLES.iterdir()) < 5 << 20


def test_examples_copies_the_samples_and_configs_that_point_at_them(tmp_path, monkeypatch, capsys):
    assert main(["examples", str(tmp_path / "ex")]) == 0
    ex = tmp_path / "ex"
    assert (ex / "samples" / "bunny.mp4").is_file() and (ex / "configs" / "masks" / "top_band.png").is_file()
    monkeypatch.chdir(ex)
    for name in ("keyframes-example.yaml", "regions-example.yaml"):
        cfg = C.load(ex / "configs" / name)
        paths = [p.split("@")[0] for p in cfg.style.images] + [m.split("=")[-1] for m in cfg.style.masks]
        assert paths and all(os.path.exists(p) for p in paths), paths
    assert main(["batch", "configs/batch-example.yaml", "--dry-run"]) == 0
    assert "5 render(s)" in capsys.readouterr().out
    before = (ex / "configs" / "preview.yaml").stat().st_mtime_ns
    assert main(["examples", str(ex)]) == 0  # a second time: nothing replaced
    assert (ex / "configs" / "preview.yaml").stat().st_mtime_ns == before


def test_a_shipped_preset_is_found_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert C.load("preview") == C.load(SAMPLES.parent / "configs" / "preview.yaml")
    with pytest.raises(Exception, match="nonesuch"):
        C.load("nonesuch")


def test_demo_renders_the_sample_and_says_what_to_run_next(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the demo's fast engine needs the fast extra")
    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--max-frames", "6", "--model", "random", "-q"]) == 0
    out = capsys.readouterr().out
    result = folder / "bunny_cafe_terrace.mp4"
    with av.open(str(result)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6 and c.streams.audio
    assert str(result) in out and "videostyle render" in out and "on this machine" in out
    assert main(["demo", "--folder", str(folder), "--max-frames", "6", "-q"]) == 1  # exists: not replaced
