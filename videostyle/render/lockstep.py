"""Chains in lockstep: segments of one render or of several (a batch's jobs), each a chain on
its own thread (``pipeline.stylize_segment``), their stylizers members of one
``gatys.chains.Lockstep``. ``render.chains`` (``--chains``), a Ray task with ``--chains``
(``render.parallel``) and a batch's shared jobs (``render.shared``) run their chains here."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from videostyle.errors import RenderInterrupted
from videostyle.factory import new_stylizer
from videostyle.io.workdir import WorkDir
from videostyle.render.pipeline import stylize_segment
from videostyle.render.segments import Segment
from videostyle.render.spec import RenderSpec
from videostyle.report import Reporter

if TYPE_CHECKING:
    from videostyle.gatys.chains import Member
    from videostyle.gatys.stylizer import Stylizer


class Said(Reporter):
    """A chain's reporter: its notices go to the render's reporter, each said once."""

    def __init__(self, to: Reporter, said: set[str], lock: threading.Lock) -> None:
        self.to, self.said, self.lock = to, said, lock

    def notice(self, message: str) -> None:
        with self.lock:
            if message not in self.said:
                self.said.add(message)
                self.to.notice(message)


@dataclass(frozen=True)
class Link:
    """One chain: a segment of a render (its input, spec, work folder and span's frames); ``owner``
    numbers the render it belongs to when several share a lockstep (a batch's jobs)."""

    inp: Path
    spec: RenderSpec
    work: WorkDir
    seg: Segment
    total: int
    owner: int = 0


class Together:
    """Chains, each on its own thread, their stylizers members of one ``Lockstep`` on
    ``stylizer``'s network (default: a new one), at most ``limit`` frames a batch (0: all).
    Chains already finished in their work folder are left out. Each render's first error is kept
    (``errors``, by owner); with ``stop_all`` it stops every chain, else only its own render's."""

    def __init__(self, links: list[Link], reporter: Reporter, stylizer: Stylizer | None = None, limit: int = 0,
                 stop_all: bool = True) -> None:
        from videostyle.gatys.chains import Lockstep

        self.lockstep = Lockstep(stylizer or new_stylizer(links[0].spec.engine.gatys), limit)
        self.stop_all = stop_all
        self.errors: dict[int, BaseException] = {}
        self.left = [c for c in links if c.work.segment(c.seg.index).count(c.seg.first) < c.seg.end - c.seg.first]
        self.members: dict[tuple[int, int], Member] = {(c.owner, c.seg.index): self.lockstep.member() for c in self.left}
        self._made: list[int] = []
        self.threads = [threading.Thread(target=self._chain, args=(c, reporter), daemon=True,
                                         name=f"videostyle-chain-{c.owner}-{c.seg.index}") for c in self.left]

    @classmethod
    def of(cls, inp: Path, spec: RenderSpec, work: WorkDir, segs: list[Segment], total: int, reporter: Reporter,
           stylizer: Stylizer | None = None) -> Together:
        """One render's segments as chains."""
        return cls([Link(inp, spec, work, s, total) for s in segs], reporter, stylizer)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self, timeout: float | None = None) -> None:
        """Wait for a chain (at most ``timeout`` seconds); with ``stop_all``, the first chain's
        error stops the others."""
        alive = [t for t in self.threads if t.is_alive()]
        if alive:
            alive[0].join(timeout)
        if self.errors and self.stop_all:
            self.lockstep.cancel("another chain failed")

    def cancel(self, why: str) -> None:
        self.lockstep.cancel(why)
        for t in self.threads:
            t.join()

    def raise_error(self) -> None:
        """The first render's error (an interruption that only followed another's error comes last)."""
        real = [e for e in self.errors.values() if not isinstance(e, RenderInterrupted)]
        if real or self.errors:
            raise (real or list(self.errors.values()))[0]

    def run(self) -> int:
        """Every chain to its end (a Ray task's segments); the frames stylized now."""
        self.start()
        while self.alive():
            self.join(0.5)
        self.raise_error()
        return sum(self._made)

    def _chain(self, c: Link, reporter: Reporter) -> None:
        member = self.members[c.owner, c.seg.index]
        try:
            if c.owner in self.errors and not self.stop_all:
                return  # (its render failed in another chain)
            self._made.append(stylize_segment(c.inp, c.spec, c.work.segment(c.seg.index), c.seg.first, c.seg.end,
                                              reporter, member, total=c.total))
        except BaseException as exc:  # noqa: BLE001 - handed to the render's thread
            self.errors.setdefault(c.owner, exc)
        finally:
            member.leave()
