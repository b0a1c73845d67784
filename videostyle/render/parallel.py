"""Parallel renders on Ray: a clip is split into segments rendered as Ray tasks; the driver then
encodes the composited frames with the original audio, with a single-process render's settings
(which encodes chunks as it goes and only copies their packets at the end: each frame is
encoded once either way).

Segments end at detected scene cuts where there are any, else at even lengths. Warm starting
makes each frame depend on the previous ones, so a segment that does not begin at a cut starts
``overlap`` frames early from a fresh start; the frames two segments both render are cross-faded
from the earlier segment's to the later one's. Frames travel through the render's work folder
(which must be on a shared filesystem when the cluster has several machines); a worker that dies
is retried by Ray and resumes from its segment's finished frames.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from videostyle.errors import ConfigError, InputError, setting
from videostyle.factory import load_styles, random_model_notice
from videostyle.render.segments import Segment, plan_segments
from videostyle.render.spec import RenderSpec, record
from videostyle.render.output import finish_writer, open_writer, output_alpha, output_frame, plan_video
from videostyle.render.cluster import import_ray, ray_session, remote_task, wait_tasks
from videostyle.render.lockstep import Together
from videostyle.render.pipeline import stylize_segment
from videostyle.render.scan import scan
from videostyle.report import RenderResult, Reporter, StageTimes
from videostyle.io.workdir import WorkDir


def _segment_task(inp: str, spec: RenderSpec, work_path: str, segs: list[tuple[int, int, int, int]],
                  threads: int, total: int | None = None) -> int:
    """Ray task body: render its segments into their frame stores (resuming), one, or several
    as chains in lockstep (``--chains``); return the frames made."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    work = WorkDir.at(Path(work_path))
    for index, *_ in segs:
        (work.segment(index).path / "worker.pid").write_text(str(os.getpid()))
    if len(segs) == 1:
        index, start, end, warmup = segs[0]
        return stylize_segment(inp, spec, work.segment(index), start - warmup, end, total=total)
    return Together.of(Path(inp), spec, work, [Segment(*s) for s in segs], total or 0, Reporter()).run()


def composite(work: WorkDir, segs: list[Segment], i: int) -> np.ndarray:
    """Frame ``i``: its segment's output, cross-faded into the next segment's warm-up frames."""
    owner = next(s for s in segs if s.start <= i < s.end)
    img = work.segment(owner.index).load(i)
    nxt = segs[owner.index + 1] if owner.index + 1 < len(segs) else None
    if nxt is not None and nxt.warmup and i >= nxt.first:
        # Linear cross-fade over the K shared frames: weight of the later segment rises 1/(K+1)...K/(K+1).
        alpha = (i - nxt.first + 1) / (nxt.warmup + 1)
        other = work.segment(nxt.index).load(i)
        img = np.clip(np.rint(img * (1 - alpha) + other * alpha), 0, 255).astype(np.uint8)
    return img


class ParallelRender:
    """One video's parallel render: checked and planned on creation, then submitted, collected, muxed."""

    def __init__(self, inp: str | os.PathLike[str], out: str | os.PathLike[str], spec: RenderSpec,
                 reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True,
                 segments: int = 0, flag: str = "workers") -> None:
        """``segments``: how many (0: ``spec.workers``); ``flag``: the setting that asked for them."""
        self.reporter = reporter or Reporter()
        self.inp, self.out, self.spec = Path(inp), Path(out), spec
        self.started = time.perf_counter()
        self.job = plan_video(self.inp, self.out, spec.output, overwrite, self.reporter.notice)
        if not self.job.muxed:
            raise ConfigError(f"{setting(flag)} renders into a video file; render an image sequence without "
                              f"{setting(flag)}")
        load_styles(spec.engine.styles)  # fail fast on bad style paths
        found = scan(self.inp, spec.scan, self.job.span, self.job.info)
        n, cuts = (found.frames, list(found.cuts)) if found is not None else (0, [])
        if n == 0:
            raise InputError(f"input {self.inp} has no video frames in the requested span")
        # With --chains K, each of --workers' tasks renders K segments as chains in lockstep.
        self.per_task = max(spec.chains, 1) if not segments else 1
        self.segs = plan_segments(n, cuts, segments or spec.workers * self.per_task, spec.overlap)
        self.span_frames = n
        settings = record(spec, self.inp, self.job.info)
        settings["segments"] = [(s.start, s.end, s.warmup) for s in self.segs]
        self.work = WorkDir(self.out, settings)
        self.work.open(restart)
        self.kept = self.done()
        if self.kept:
            self.reporter.notice(f"resuming {self.out.name}: {self.kept} finished frame(s) kept in {self.work.path}")
        random_model_notice(spec.engine, self.reporter.notice)
        self.total = sum(s.end - s.first for s in self.segs)
        self.refs: list[Any] = []

    def done(self) -> int:
        return sum(self.work.segment(s.index).count(s.first) for s in self.segs)

    def submit(self, ray: Any) -> None:
        """Queue one Ray task per segment: a GPU each where the cluster has GPUs, else a CPU share."""
        task, threads = remote_task(ray, _segment_task, self.spec.workers, self.spec.threads)
        k = self.per_task
        groups = [self.segs[i:i + k] for i in range(0, len(self.segs), k)]
        self.refs = [task.remote(str(self.inp), self.spec, str(self.work.path),
                                 [(s.index, s.start, s.end, s.warmup) for s in group], threads, self.span_frames)
                     for group in groups]

    def wait(self, ray: Any) -> None:
        """Wait for the segments, reporting frames as they land; a task's error becomes one line."""
        self.reporter.begin(self.total, str(self.inp))
        try:
            wait_tasks(ray, self.refs, self.done, self.reporter, self.total, self.kept, self.inp, self.work.path)
        finally:
            self.reporter.end()

    def mux(self) -> RenderResult:
        """Encode the composited frames with the original audio, as a single-process render's
        chunks are encoded (same settings; here all at the end, as the seams need both segments)."""
        job = self.job
        writer = open_writer(self.inp, self.out, job, self.reporter.notice)
        stages = StageTimes()
        frames, last_time = 0, 0.0
        try:
            for fr in job.span.frames(self.inp, info=job.info, strict=self.spec.strict):
                te = time.perf_counter()
                writer.write(output_frame(composite(self.work, self.segs, fr.index), job), fr.pts,
                             output_alpha(fr.alpha, job))
                stages.encode += time.perf_counter() - te
                frames += 1
                last_time = fr.time
            finish_writer(writer, job, last_time)
        except BaseException:
            writer.abort()
            raise
        self.work.remove()
        return RenderResult(self.out, frames, time.perf_counter() - self.started, [], stages)


def render_parallel(inp: str | os.PathLike[str], out: str | os.PathLike[str], spec: RenderSpec,
                    reporter: Reporter | None = None, *, restart: bool = False, overwrite: bool = True) -> RenderResult:
    """Render a video as ``spec.workers`` parallel Ray tasks, then encode it with a single
    render's settings and audio. A painted render's tasks are its passes (``render.paint``)."""
    if spec.paintings:
        from videostyle.render.paint import render_painted

        return render_painted(Path(inp), Path(out), spec, reporter or Reporter(), restart=restart,
                              overwrite=overwrite)
    import_ray(local=spec.ray_address is None)
    pr = ParallelRender(inp, out, spec, reporter, restart=restart, overwrite=overwrite)
    with ray_session(spec.ray_address) as ray:
        pr.submit(ray)
        pr.wait(ray)
    return pr.mux()


def run_batch(renders: list[Any], render_one: Any, *, overwrite: bool, fail_fast: bool, restart: bool,
              address: str | None, make_reporter: Any, on_outcome: Any = lambda o: None) -> list[Any]:
    """A batch on Ray: every video job's segments are submitted at once, so jobs and segments
    spread over the cluster together; results are collected and muxed in the batch's order.
    Images (and jobs with workers 1) render in this process. One failing job does not stop the
    others (``fail_fast`` cancels what is left)."""
    from videostyle.render.batch import EXISTS, Outcome, attempt
    from videostyle.errors import VideostyleError
    from videostyle.io.images import is_image_path

    outcomes: list[Any] = []
    with ray_session(address) as ray:
        early: dict[int, Any] = {}
        jobs: dict[int, ParallelRender] = {}
        for i, r in enumerate(renders):
            if r.skip(overwrite):
                early[i] = Outcome(r, "skipped", text=EXISTS)
            elif not is_image_path(r.input):
                try:
                    if r.spec.workers <= 1 or r.spec.paintings:
                        continue
                    r.output.parent.mkdir(parents=True, exist_ok=True)
                    pr = ParallelRender(r.input, r.output, r.spec, make_reporter(), restart=restart)
                    pr.submit(ray)
                    jobs[i] = pr
                except VideostyleError as err:
                    early[i] = Outcome(r, "failed", text=err.text)
        for i, r in enumerate(renders):
            t0 = time.perf_counter()
            if i in early:
                o = early[i]
            elif i in jobs:
                try:
                    jobs[i].wait(ray)
                    res = jobs[i].mux()
                    o = Outcome(r, "ok", res.frames, res.seconds)
                except VideostyleError as err:
                    o = Outcome(r, "failed", seconds=time.perf_counter() - t0, text=err.text)
            else:
                o = attempt(r, render_one)
            outcomes.append(o)
            on_outcome(o)
            if fail_fast and o.status == "failed":
                for j, pr in jobs.items():
                    if j > i:
                        for ref in pr.refs:
                            ray.cancel(ref, force=True)
                break
    return outcomes
