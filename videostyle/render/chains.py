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
from videostyle.factory import new_stylizer
from videostyle.io.workdir import WorkDir
from videostyle.render.parallel import ParallelRender, Segment
from videostyle.render.pipeline import stylize_segment
from videostyle.render.spec import RenderSpec
from videostyle.report import FrameDone, RenderResult, Reporter

if TYPE_CHECKING:
    from videostyle.gatys.chains import Lockstep, Member
    from videostyle.gatys.stylizer import Stylizer


class _Said(Reporter):
    """A chain's reporter: its notices go to the render's reporter, each said once."""

    def __init__(self, to: Reporter, said: set[str], lock: threading.Lock) -> None:
        self.to, self.said, self.lock = to, said, lock

    def notice(self, message: str) -> None:
        with self.lock:
            if message not in self.said:
                self.said.add(message)
                self.to.notice(message)


class Chains:
    """One render's chains: planned (``ParallelRender``), run on threads in lockstep, then muxed."""

    def __init__(self, inp: Path, out: Path, spec: RenderSpec, k: int, reporter: Reporter, *, restart: bool,
                 overwrite: bool, stylizer: Stylizer | None = None) -> None:
        self.said: set[str] = set()
        self.guard = threading.Lock()
        self.pr = ParallelRender(inp, out, spec, _Said(reporter, self.said, self.guard), restart=restart,
                                 overwrite=overwrite, segments=k, flag="chains")
        self.spec, self.reporter = spec, reporter
        self.base = stylizer
        self.errors: list[BaseException] = []
        self.lockstep: Lockstep | None = None
        self.members: dict[int, Member] = {}

    def run(self) -> None:
        from videostyle.gatys.chains import Lockstep

        base = self.base or new_stylizer(self.spec.engine.gatys)
        self.lockstep = lock = Lockstep(base)
        segs = [s for s in self.pr.segs if self.pr.work.segment(s.index).count(s.first) < s.end - s.first]
        members = [lock.member() for _ in segs]
        self.members = {s.index: m for s, m in zip(segs, members)}  # (each segment's chain)
        threads = [threading.Thread(target=self._chain, args=(s, m, _Said(self.reporter, self.said, self.guard)),
                                    name=f"videostyle-chain-{s.index}", daemon=True) for s, m in zip(segs, members)]
        self.reporter.notice(f"{len(self.pr.segs)} chains optimised together as one batch"
                             + (f" ({len(segs)} left to render)" if len(segs) < len(self.pr.segs) else ""))
        self.reporter.begin(self.pr.total, str(self.pr.inp))
        try:
            for t in threads:
                t.start()
            self._wait(threads)
        except KeyboardInterrupt as exc:
            lock.cancel("interrupted")
            for t in threads:
                t.join()
            raise RenderInterrupted(f"interrupted{interrupt.by(exc)}; finished frames are kept in {self.pr.work.path}: "
                                    "run the same command again to resume", exit_code=interrupt.exit_code(exc)) from None
        finally:
            self.reporter.end()
        real = [e for e in self.errors if not isinstance(e, RenderInterrupted)]
        if real or self.errors:
            raise (real or self.errors)[0]

    def _chain(self, seg: Segment, member: Member, reporter: Reporter) -> None:
        try:
            store: WorkDir = self.pr.work.segment(seg.index)
            stylize_segment(self.pr.inp, self.spec, store, seg.first, seg.end, reporter, member,
                            total=self.pr.span_frames)
        except BaseException as exc:  # noqa: BLE001 - handed to the render's thread
            self.errors.append(exc)
        finally:
            member.leave()

    def _wait(self, threads: list[threading.Thread]) -> None:
        """Wait for the chains, reporting frames as they land in the work folder; the first
        chain's error stops the others."""
        assert self.lockstep is not None
        seen = self.pr.kept
        for _ in range(seen):
            self.reporter.frame(FrameDone(0, self.pr.total, 0, 0.0, float("nan"), resumed=True))
        while any(t.is_alive() for t in threads):
            next(t for t in threads if t.is_alive()).join(0.5)
            if self.errors:
                self.lockstep.cancel("another chain failed")
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
