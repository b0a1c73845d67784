"""A video's stylized frames handed to the caller one by one (the API's ``frames``): the frame
loop of a pipe render, with the caller as its sink. Nothing is written: no work folder, no
resume, no settle pass (it would hold the first second back); stopping early (``break``)
closes the engines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from videostyle.factory import build_video_stylizer, load_styles, render_plan
from videostyle.errors import InputError
from videostyle.io.images import fit_size, resize_image
from videostyle.render import chain
from videostyle.render.output import probe_input
from videostyle.render.spec import RenderSpec
from videostyle.report import FrameDone, Reporter

if TYPE_CHECKING:
    from videostyle.gatys.stylizer import Stylizer


@dataclass(frozen=True)
class StyledFrame:
    """A stylized frame: its index in the span, its time in the source (s), the picture (RGB
    uint8, at the stylized size or, with ``output_size="source"``, the source's), and the
    optimiser's iterations for it (0 for a network's frame)."""

    index: int
    time: float
    image: np.ndarray
    iterations: int

    def to_pil(self):  # noqa: ANN201 (PIL.Image.Image; PIL is imported only when asked)
        from PIL import Image

        return Image.fromarray(self.image)


def stream_frames(inp: Path, spec: RenderSpec, reporter: Reporter | None = None, *,
                  styles: list[np.ndarray] | None = None, stylizer: Stylizer | None = None) -> Iterator[StyledFrame]:
    """``inp``'s frames over the span ``spec`` gives, stylized in order, each warm-started from the
    ones before it, as they are made."""
    reporter = reporter or Reporter()
    info = probe_input(inp, spec.output)
    sp = spec.span
    sp.check(info)
    source = (info.height, info.width)
    vs = build_video_stylizer(spec, load_styles(spec.engine.styles) if styles is None else styles, reporter, stylizer, info)
    total = sp.count(inp, info)
    made = 0
    try:
        reporter.begin(total, str(inp))
        reporter.plan(render_plan(vs.spec, vs.engine, total, fit_size(*source, spec.size, spec.upscale)))
        frames = chain.decoded(inp, sp, info, spec.size, spec.upscale, reporter.notice, strict=spec.strict)
        for step in chain.steps(vs, frames):
            res, fr = step.result, step.frame
            assert res is not None
            image = resize_image(res.image, source) if spec.at_source_size else res.image
            reporter.frame(FrameDone(fr.index, total, res.iterations, res.seconds, res.loss, res.restarted))
            made += 1
            yield StyledFrame(fr.index, fr.time, image, res.iterations)
        if not made:
            raise InputError(f"input {inp} has no video frames in the requested span")
    finally:
        vs.close()
        reporter.end()
