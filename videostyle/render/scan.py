"""A quick pass over a render's span at a small size: each frame's motion from the frame before
(the share of its pixels whose flow is not reliable) and the scene cuts. The Ray planner places
its segments at the cuts; a Gatys render scans beside its first frame, so that its estimate
foresees the cuts (each a fresh frame at full iterations) and weighs each later frame by its
motion (a frame that hardly moves starts near its answer and stops early)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from videostyle.errors import VideostyleError
from videostyle.io.images import fit_size, resize_image
from videostyle.io.media import Span, VideoInfo
from videostyle.temporal.flow import FlowParams
from videostyle.temporal.flow import pair as flow_pair
from videostyle.temporal.flow import shrink

# Longest side of the frames scanned. A hard cut leaves no reliable flow at any size, and the
# motion only weighs frames against each other: at 160 px the scan costs a fraction of one at
# 512 px (decoding the source is most of it).
SCAN_SIDE = 160
# Fast motion is not a cut, but its flow is less reliable the larger the frame (more pixels of
# motion from one frame to the next), and the render decides its cuts at the stylized size: a
# run of fast frames can fall under the threshold at 256 px and not at 160 (nor at 512, where the
# flow's search scales with it). A frame whose reliable share at SCAN_SIDE is this close to
# temporal.scene_cut is decided at the stylized size, as the render will decide it; the shares
# differ between sizes by up to about a fifth on the shared clips.
DOUBT = 0.3


@dataclass(frozen=True)
class ScanSpec:
    """How a span is scanned (``engines.scan_spec``): the render's flow, its scene-cut threshold,
    whether a damaged source is refused, and the stylized size (a scan at ``side=0``)."""

    flow: FlowParams
    scene_cut: float
    strict: bool = False
    size: int = 512
    upscale: bool = False


@dataclass(frozen=True)
class SpanScan:
    """What the scan found over a span of ``frames`` frames."""

    frames: int
    unreliable: tuple[float, ...]  # per frame: the share of unreliable flow from the frame before (frame 0: 1)
    cuts: tuple[int, ...]  # frames whose flow from the frame before is below temporal.scene_cut (as the render sees it)


def scan(inp: Path, spec: ScanSpec, span: Span, info: VideoInfo, side: int | None = None,
         stop: threading.Event | None = None) -> SpanScan | None:
    """Scan ``span`` of ``inp`` at ``side`` pixels (default SCAN_SIDE; 0: at the stylized size),
    its cuts as the render will detect them (a doubtful frame again at the stylized size). None
    when ``stop`` is set before the end."""
    side = SCAN_SIDE if side is None else side
    params = spec.flow
    prev = prev_full = None
    unreliable: list[float] = []
    cuts: list[int] = []
    for fr in span.frames(inp, info=info, strict=spec.strict):
        if stop is not None and stop.is_set():
            return None
        full = (resize_image(fr.image, fit_size(*fr.image.shape[:2], spec.size, spec.upscale))
                if not side or spec.scene_cut > 0 else None)
        src = shrink(fr.image, side) if side else full
        if prev is None:
            unreliable.append(1.0)
        else:
            reliable = flow_pair(src, prev, params).reliable
            unreliable.append(round(1.0 - reliable, 4))
            if side and full is not None and abs(reliable - spec.scene_cut) < DOUBT:
                reliable = flow_pair(full, prev_full, params).reliable
            if reliable < spec.scene_cut:
                cuts.append(fr.index)
        prev, prev_full = src, full
    return SpanScan(len(unreliable), tuple(unreliable), tuple(cuts))


class BackgroundScan(threading.Thread):
    """``scan`` on a thread of its own, beside the render: ``result`` is None until it is done
    (or when it failed: the scan only informs the estimate, and the render reads the source
    itself, with its own errors)."""

    def __init__(self, inp: Path, spec: ScanSpec, span: Span, info: VideoInfo) -> None:
        super().__init__(name="videostyle-scan", daemon=True)
        self.args = (inp, spec, span, info)
        self.stop = threading.Event()
        self.result: SpanScan | None = None

    def run(self) -> None:
        try:
            self.result = scan(*self.args, stop=self.stop)
        except (VideostyleError, OSError, ValueError):
            self.result = None

    def cancel(self) -> None:
        self.stop.set()
