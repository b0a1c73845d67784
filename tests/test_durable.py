"""Resume survives a power cut: chunks, state and outputs are synced before what they replace goes."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from videostyle.io.images import write_image
from videostyle.render.pipeline import render_video
from videostyle.engines import render_spec

from .clips import make_clip
from .conftest import stripes, tiny_config


def record(monkeypatch) -> list[tuple[str, str]]:
    """Log every fsync (by path), rename (by destination) and Path.unlink, in order, from all threads."""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, Path.unlink

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(src, dst) -> None:
        real_replace(src, dst)
        with lock:
            events.append(("replace", os.path.abspath(dst)))

    def unlink(self, missing_ok: bool = False) -> None:
        with lock:
            events.append(("unlink", os.path.abspath(self)))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    return events


def test_no_png_is_deleted_before_its_chunk_and_folder_are_synced(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", frames=11, audio=())
    style = tmp_path / "s.png"
    write_image(style, stripes(48, 48))
    out = tmp_path / "out.mp4"
    cfg = tiny_config(**{"style.images": [str(style)], "optim.size": 48, "optim.iterations": 2,
                         "optim.iterations_later": 1, "render.chunk_frames": 4, "encode.preset": "ultrafast"})
    events = record(monkeypatch)
    render_video(src, out, render_spec(cfg))
    work = str(tmp_path / ".out.mp4.videostyle-work")
    chunk_re = re.compile(re.escape(work) + r"/chunks/(\d{6})-(\d{6})\.mp4$")
    pruned = [(k, int(Path(p).stem)) for k, (e, p) in enumerate(events)
              if e == "unlink" and p.startswith(work + "/frames/") and p.endswith(".png")]
    assert pruned, "no PNG was pruned: the test did not exercise chunk closing"
    for k, index in pruned:
        closes = [j for j, (e, p) in enumerate(events[:k]) if e == "replace" and (m := chunk_re.match(p))
                  and int(m.group(1)) <= index < int(m.group(2))]
        assert closes, f"frame {index}'s PNG deleted before its chunk was renamed into place"
        j = closes[0]
        assert ("fsync", work + "/chunks") in events[j + 1:k], f"chunk of frame {index}: folder not synced"
        before = events[:j]
        assert any(e == "fsync" and p.startswith(work + "/chunks/") for e, p in before), "chunk data not synced"
    # the state file and the output: data synced, renamed, folder synced
    for dst in (work + "/state.json", str(out)):
        j = next(i for i, (e, p) in enumerate(events) if e == "replace" and p == dst)
        assert any(e == "fsync" for e, _ in events[max(0, j - 3):j]), f"{dst}: data not synced before the rename"
        assert ("fsync", os.path.dirname(dst)) in events[j + 1:], f"{dst}: folder not synced after the rename"
    assert out.exists()
