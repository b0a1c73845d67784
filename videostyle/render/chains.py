"""K chains in lockstep (``--chains K``): a clip's segments, planned as ``--workers`` plans them
(``render.parallel``: boundaries at scene cuts, else even, each later segment starting
``overlap`` frames early and cross-faded at its seam), rendered in this process, each on its own
thread, with their frames optimised together as one batch through one network
(``gatys.chains.Lockstep``).

Each chain is a segment render (``pipeline.stylize_segment``) with its own policy: warm start,
flow, occlusion masks, temporal terms, scene cuts, stop rule, style keyframes, regions, the
settle pass of the first; only its stylizer is a member of the lockstep. Frames land in each
segment's folder of the work folder as they finish, so an interrupted render resumes each chain
where it stopped; the frames are then encoded with the audio as a parallel render's are.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from videostyle import interrupt
from videostyle.errors import RenderInterrupted
from videostyle.render.lockstep import Said, Together
from videostyle.render.parallel import ParallelRender
from videostyle.render.spec import RenderSpec
from videostyle.report import FrameDone, RenderResult, Reporter

if TYPE_CHECKING:
    from videostyle.gatys.chains import Lockstep, Member
    from videostyle.gatys.stylizer import Stylizer


class Chains:
    """One render's chains: planned (``ParallelRender``), run on threads in lockstep, then muxed."""

    def __init__(self, inp: Path, out: Path, spec: RenderSpec, k: int, reporter: Reporter, *, restart: bool,
                 overwrite: bool, stylizer: Stylizer | None = None) -> None:
        self.said: set[str] = set()
        self.guard = threading.Lock()
        self.pr = ParallelRender(inp, out, spec, Said(reporter, self.said, self.guard), restart=restart,
                                 overwrite=overwrite, segments=k, flag="chains")
        self.spec, self.reporter = spec, reporter
        self.base = stylizer
        self.together: Together | None = None

    @property
    def lockstep(self) -> Lockstep | None:
        return self.together.lockstep if self.together is not None else None

    @property
    def members(self) -> dict[int, Member]:
        """Each segment's chain, by segment."""
        return {i: m for (_, i), m in self.together.members.items()} if self.together is not None else {}

    def run(self) -> None:
        pr = self.pr
        self.together = tog = Together.of(pr.inp, self.spec, pr.work, pr.segs, pr.span_frames,
                                          Said(self.reporter, self.said, self.guard), self.base)
        self.reporter.notice(f"{len(pr.segs)} chains optimised together as one batch"
                             + (f" ({len(tog.left)} left to render)" if len(tog.left) < len(pr.segs) else ""))
        self.reporter.begin(pr.total, str(pr.inp))
        try:
            tog.start()
            self._wait(tog)
        except KeyboardInterrupt as exc:
            tog.cancel("interrupted")
            raise RenderInterrupted(f"interrupted{interrupt.by(exc)}; finished frames are kept in {pr.work.path}: "
                                    "run the same command again to resume", exit_code=interrupt.exit_code(exc)) from None
        finally:
            self.reporter.end()
        tog.raise_error()

    def _wait(self, tog: Together) -> None:
        """Wait for the chains, reporting frames as they land in the work folder."""
        seen = self.pr.kept
        for _ in range(seen):
            self.reporter.frame(FrameDone(0, self.pr.total, 0, 0.0, float("nan"), resumed=True))
        while tog.alive():
            tog.join(0.5)
            now = self.pr.done()
            for _ in range(now - seen):
                self.reporter.frame(FrameDone(0, self.pr.total, 0, 0.0, float("nan")))
            seen = max(seen, now)


def render_chains(inp: str | os.PathLike[str], out: str | os.PathLike[str], spec: RenderSpec, k: int,
                  reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                  stylizer: Stylizer | None = None) -> RenderResult:
    """Render a video as ``k`` chains optimised together in this process, then encode it with a
    single render's settings and audio."""
    rep = reporter or Reporter()
    started = time.perf_counter()
    ch = Chains(Path(inp), Path(out), spec, k, rep, restart=restart, overwrite=overwrite, stylizer=stylizer)
    ch.run()
    res = ch.pr.mux()
    return RenderResult(res.output, res.frames, time.perf_counter() - started, res.iterations, res.stages)
