"""A render job's frozen spec: what every job (an image, a file, a pipe, a stream, a segment, a
painted render, a parallel one) is given instead of the Config. The builder
(``engines.render_spec``) translates the Config into it once; the jobs read it and hand its
parts on (the engine's spec to the factory, the policy's to the policy, the output's to the
sinks). It pickles, so a Ray task receives it as it is."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videostyle.engine import EngineSpec
from videostyle.io import sequence
from videostyle.io.media import Span, VideoInfo
from videostyle.io.workdir import file_digest
from videostyle.render.output import OutputSpec
from videostyle.render.policy import PolicySpec
from videostyle.render.scan import ScanSpec


@dataclass(frozen=True)
class RenderSpec:
    """Everything a render job needs to know of its settings."""

    engine: EngineSpec
    policy: PolicySpec  # its style keyframes placed on a source by ``policy_for``
    output: OutputSpec
    scan: ScanSpec
    # The settings a resume compares, as JSON (``record``): those that change the frames or their
    # encoding, without the input's and the style images' digests, which ``record`` adds.
    settings: str = "{}"
    painted: PolicySpec | None = None  # a painted render's policy (None: no paintings)
    paintings: tuple[str, ...] = ()  # TIME=IMAGE
    paint_style_weight: float = 0.25
    loop: int = 0  # frames rendered again from the last one (0: off)
    chunk_frames: int = 240
    preview_every: int = 0
    stage_threads: bool = True
    flow_workers: int = 0  # 0: by the engine and the device
    workers: int = 1  # Ray tasks
    chains: int = 0  # segments optimised together as one batch (0: auto)
    overlap: int = 12
    threads: int = 0  # torch's CPU threads in a Ray task (0: its share)
    ray_address: str | None = None

    @property
    def span(self) -> Span:
        return self.output.span

    @property
    def size(self) -> int:
        return self.output.size

    @property
    def upscale(self) -> bool:
        return self.output.upscale

    @property
    def strict(self) -> bool:
        return self.scan.strict

    @property
    def max_pixels(self) -> int:
        return self.output.max_pixels

    @property
    def at_source_size(self) -> bool:
        """Whether the output is resized back to the source's size."""
        return self.output.output_size == "source"

    def policy_for(self, info: VideoInfo | None) -> PolicySpec:
        """The policy on a source whose frame rate and first timestamp (``info``; None: a still)
        place the style keyframes."""
        keys = self.engine.styles.keys.at(float(info.fps) if info else 0.0)
        return dataclasses.replace(self.policy, schedule=keys, start_time=info.start_time if info else 0.0)

    def with_iterations(self, n: int) -> RenderSpec:
        """This spec with ``n`` iterations on a fresh frame (the estimate's few measured ones)."""
        e = self.engine
        optim = dataclasses.replace(e.gatys.optim, iterations=n)
        engine = dataclasses.replace(e, gatys=dataclasses.replace(e.gatys, optim=optim))
        return dataclasses.replace(self, engine=engine)


def record(spec: RenderSpec, inp: Path, info: VideoInfo) -> dict[str, Any]:
    """Everything that determines the stylized frames and their encoding (for resume); not
    progress or scheduling options. ``info``: the input's probe (an image sequence's files)."""
    d = json.loads(spec.settings)
    d["input"] = {"path": str(inp.resolve()),
                  "digest": sequence.digest(info.sequence) if info.sequence else file_digest(inp, full=False)}
    d["styles"] = [file_digest(p) for p in spec.engine.styles.keys.paths]
    weights = spec.engine.gatys.network.weights or os.environ.get("VIDEOSTYLE_WEIGHTS")
    if weights and Path(weights).is_file():
        st = Path(weights).stat()
        d["weights"] = {"path": str(Path(weights).resolve()), "size": st.st_size, "mtime": st.st_mtime}
    return d
