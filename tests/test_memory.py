"""Memory across renders in one process (a batch, the studio, a notebook): a render that left
its tensors alive (a layer's output kept by its own autograd graph, about 120 MB a render at
512 px once) shows as resident memory that grows with each render."""

from __future__ import annotations

import gc
import os

import pytest

from videostyle.cli import main as cli
from videostyle.io.images import write_image

from .clips import make_clip
from .conftest import stripes


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc")
def test_renders_in_one_process_leave_no_memory_behind(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=4, size=(256, 192))
    write_image(tmp_path / "s.png", stripes(96, 96))
    after = []
    for _ in range(8):
        assert cli(["render", str(clip), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.mp4"), "-y",
                    "--model", "random", "--size", "256", "--iterations", "2", "--iterations-later", "1",
                    "--device", "cpu", "--precision", "fp32", "--settle", "0", "-q"]) == 0
        gc.collect()
        after.append(resident_mb())
    # The first renders warm caches (the allocator's pools, the math library's buffers); from the
    # third on, a leak of a render's layer outputs (tens of MB each at 256x192) would add up.
    assert after[-1] - after[2] < 40, after
