"""What ``videostyle demo`` computes, through the public API: the sample clip in a sample painting
with the fast engine, and the estimate of the optimisation (Gatys) render of the same clip on this
machine, from a few measured iterations of its first frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videostyle import api
from videostyle.estimate import Estimate
from videostyle.report import RenderResult, Reporter

GATYS_SIZE = 256  # the demo's suggested first optimisation render


def fast_render(clip: Path, style: Path, out: Path, base: Any, reporter: Reporter) -> RenderResult:
    """The clip in ``style`` with the fast engine, over the settings ``base`` (a Config)."""
    return api.render(clip, out, style=style, config=base, method="fast", reporter=reporter, overwrite=True)


def gatys_estimate(clip: Path, style: Path, base: Any) -> Estimate | None:
    """The estimate an optimisation render of the clip at ``GATYS_SIZE`` would give."""
    return api.estimate(clip, style=style, config=base, method="gatys", size=GATYS_SIZE)
