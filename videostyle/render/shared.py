"""A batch's videos that share one batch on the device (``--chains K`` in a batch file): the jobs
with the same settings (styles, size, engine, everything but their input and output) are
rendered together, each split into ``K / jobs`` segments (at least one), and every segment of
every job is a chain of one lockstep, at most K frames a batch (``render.chains.Together``).

Each job keeps its own work folder, resume, seams and encode, and its own outcome: a job whose
input fails (at planning or in a chain) is reported failed while the others finish. Jobs that
share nothing (another style, size or setting, an image, Ray workers) render one by one as a
batch's jobs do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from videostyle import interrupt
from videostyle.errors import RenderInterrupted, VideostyleError
from videostyle.io.images import is_image_path
from videostyle.render.batch import BatchPlan, Outcome, Render, run
from videostyle.render.lockstep import Link, Together
from videostyle.render.parallel import ParallelRender
from videostyle.report import Reporter

if TYPE_CHECKING:
    from videostyle.gatys.stylizer import Stylizer


def shares(r: Render) -> bool:
    """Whether a job can share a batch with others: a video with ``chains`` above 1 and no Ray workers."""
    sp = r.spec
    return sp.chains > 1 and sp.workers <= 1 and not is_image_path(r.input)


def run_shared(renders: list[Render], render_one: Callable[[Render], tuple[int, float]], *, overwrite: bool,
               fail_fast: bool, restart: bool, make_reporter: Callable[[], Reporter],
               on_outcome: Callable[[Outcome], None] = lambda o: None,
               stylizer: Stylizer | None = None) -> list[Outcome]:
    """The batch's renders in order, those with the same settings sharing one batch (rendered
    when the first of them comes up); the rest one by one."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(renders):
        if not r.skip(overwrite) and shares(r):
            groups.setdefault(r.spec.settings, []).append(i)
    together = {i: g for g in groups.values() if len(g) > 1 for i in g}
    done: dict[int, Outcome] = {}

    def rendered(i: int) -> Outcome | None:
        if i not in together:
            return None
        if i not in done:  # (its output was checked when the groups were made: the group writes it)
            done.update(_group({j: renders[j] for j in together[i]}, restart, make_reporter(), stylizer))
        return done[i]

    return run(BatchPlan(renders), render_one, overwrite=overwrite, fail_fast=fail_fast, on_outcome=on_outcome,
               rendered=rendered)


def _failed(r: Render, err: BaseException, seconds: float) -> Outcome:
    text = err.text if isinstance(err, VideostyleError) else f"{type(err).__name__}: {err}"
    return Outcome(r, "failed", seconds=seconds, text=text)


def _group(jobs: dict[int, Render], restart: bool, rep: Reporter, stylizer: Stylizer | None) -> dict[int, Outcome]:
    """One group's jobs rendered as chains of one lockstep, each then muxed: their outcomes."""
    t0 = time.perf_counter()
    k = next(iter(jobs.values())).spec.chains
    per = max(1, k // len(jobs))
    out: dict[int, Outcome] = {}
    prs: dict[int, ParallelRender] = {}
    for j, r in jobs.items():
        try:
            r.output.parent.mkdir(parents=True, exist_ok=True)
            prs[j] = ParallelRender(r.input, r.output, r.spec, rep, restart=restart, overwrite=True, segments=per,
                                    flag="chains")
        except VideostyleError as exc:
            out[j] = _failed(r, exc, time.perf_counter() - t0)
    links = [Link(pr.inp, pr.spec, pr.work, s, pr.span_frames, owner=j) for j, pr in prs.items() for s in pr.segs]
    errors: dict[int, BaseException] = {}
    if links:
        rep.notice(f"{len(prs)} videos with the same settings share one batch: {len(links)} chains, at most {k} "
                   "frames at once")
        errors = _run(Together(links, rep, stylizer, limit=k, stop_all=False), prs)
    for j, pr in prs.items():
        why = errors.get(j)
        if why is None:
            try:
                res = pr.mux()
                out[j] = Outcome(jobs[j], "ok", res.frames, time.perf_counter() - t0)
                continue
            except VideostyleError as exc:
                why = exc
        out[j] = _failed(jobs[j], why, time.perf_counter() - t0)
    return out


def _run(tog: Together, prs: dict[int, Any]) -> dict[int, BaseException]:
    """Every chain to its end; each render's error. Ctrl-C stops the batch (frames kept)."""
    try:
        tog.start()
        while tog.alive():
            tog.join(0.5)
    except KeyboardInterrupt as exc:
        tog.cancel("interrupted")
        where = ", ".join(str(pr.work.path) for pr in prs.values())
        raise RenderInterrupted(f"interrupted{interrupt.by(exc)}; finished frames are kept in {where}: run the same "
                                "command again to resume", exit_code=interrupt.exit_code(exc)) from None
    return tog.errors
