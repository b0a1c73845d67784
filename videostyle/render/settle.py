"""temporal.settle: the first frames of a warm-started chain rendered a second time, backwards
from the frame after them, so that frame 0 is a link of the chain like every other rather than
a fresh render that the next frames drift away from (docs/guide/video.md)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from videostyle.io.media import Frame
from videostyle.render import chain
from videostyle.render.chain import SourceFrame
from videostyle.report import FrameDone
from videostyle.render.policy import FrameResult, PolicyState, VideoStylizer


def settle_frames(seconds: float, optimises: bool, fps: float | Fraction | None, total: int | None) -> int:
    """How many frames temporal.settle renders again at the start: its ``seconds``' worth (the
    policy's ``settle_seconds``, 0 with --loop, which settles frame 0 from the last frame), at
    most a quarter of the span, and none for the fast engine (no warm-started chain) or for fewer
    than 2. Frames of a resumed render that are restored from the work folder were settled before
    they were saved."""
    if not seconds or not optimises or not fps:
        return 0
    k = round(seconds * float(fps))
    if total is not None:
        k = min(k, total // 4)
    return k if k >= 2 else 0


class StartSettler:
    """temporal.settle's frames at the start of a span: those below ``k`` rendered now are held
    back, then rendered again backwards, each warm-started from the one after it through their
    flow (the last from frame ``k``), so that frame 0 is a settled link of the chain rather than
    a fresh render. The caller saves and encodes what ``at`` and ``finish`` return; frames it
    restored from the work folder were settled before they were saved."""

    def __init__(self, vs: VideoStylizer, k: int, notice: Callable[[str], None] = lambda m: None,
                 report: Callable[[FrameDone], None] = lambda d: None) -> None:
        """``report`` hears each frame the settle pass renders again (``FrameDone.settled``)."""
        self.vs, self.k, self.notice, self.report = vs, k, notice, report
        self.held: list[tuple[Frame, np.ndarray, FrameResult]] = []

    def hold(self, fr: Frame, src: np.ndarray, res: FrameResult | None) -> bool:
        """Keep a frame rendered now below ``k`` back (True), or not."""
        if res is None or fr.index >= self.k:
            return False
        self.held.append((fr, src, res))
        return True

    def at(self, fr: Frame, src: np.ndarray, img: np.ndarray) -> list[tuple[Frame, FrameResult, np.ndarray]]:
        """At frame ``k`` (source ``src``, output ``img``): the held frames, settled from it, in
        frame order (none at other frames)."""
        if fr.index != self.k or not self.held:
            return []
        return self._settle(fr, src, img)

    def finish(self) -> list[tuple[Frame, FrameResult, np.ndarray]]:
        """The span ended before frame ``k``: the held frames settled from the last of them,
        which stays as it is."""
        if not self.held:
            return []
        last, src, res = self.held.pop()
        return [*self._settle(last, src, res.image), (last, res, res.image)]

    def _settle(self, fr: Frame, src: np.ndarray, img: np.ndarray) -> list[tuple[Frame, FrameResult, np.ndarray]]:
        held, self.held = self.held, []
        if not held:
            return []
        self.notice(f"settling the start: frames {held[-1][0].index}-{held[0][0].index} again, "
                    f"backwards from frame {fr.index}")
        vs = self.vs
        forward = vs.snapshot()
        vs.restore(PolicyState(forward.ref_loss, ()))
        vs.push(src, img)
        outs: list[np.ndarray] = []

        def sink(step: chain.Step) -> None:
            outs.append(step.image)  # type: ignore[arg-type]
            r = step.result
            if r is not None:
                self.report(FrameDone(step.frame.index, None, r.iterations, r.seconds, r.loss, settled=True))

        chain.run(vs, (SourceFrame(h, held_src) for h, held_src, _ in reversed(held)), sink)
        vs.restore(forward)  # the warm-start history as the forward pass left it
        return [(h, r, im) for (h, _, r), im in zip(held, outs[::-1])]
