"""A painted render (``--paint``): the painted frames are keyframes, and the frames around them
are rendered by passes that start from a painting (``temporal.paint`` plans them), then blended
and encoded with the source's audio.

Each pass is a chain of the usual kind (``render.chain.run``): its history starts with the
painting beside its source frame, so its first frame starts from the painting warped through
the flow, and its style target is the painting itself (its Gram matrices for the optimiser, its
style vector for the network), with the style images, if any, beside it at
``style.paint_style_weight``. A temporal term holds each frame to the one before it where the
flow is reliable (Ruder et al.'s balance unless --temporal-weight or --consistency says
otherwise), so the chain stays with the painting; disoccluded pixels start from the content in
the painting's colours and are painted by its statistics.

Frames travel through the work folder: the source frames at the stylized size (``source``) and
each pass's frames (``fwdNNNNNN``, ``bwdNNNNNN``), so an interrupted render resumes in the pass it
was in, from the frame it had reached, and gives the frames an uninterrupted one would. The
passes do not depend on one another: with ``--workers N`` they run side by side as Ray tasks
(one pass each, on a CPU share or a GPU each), each reading and writing the same work folder.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from videostyle import interrupt
from videostyle.factory import build_video_stylizer, load_region_styles, load_styles
from videostyle.errors import ConfigError, InputError, RenderInterrupted, setting
from videostyle.estimate import RenderPlan
from videostyle.io.colour import fill_transparent
from videostyle.io.images import read_alpha, read_image
from videostyle.io.media import Frame
from videostyle.io.workdir import WorkDir, file_digest
from videostyle.render import chain
from videostyle.render.chain import SourceFrame, Step
from videostyle.render.spec import RenderSpec, record
from videostyle.render.output import finish_writer, open_sink, output_alpha, output_frame, plan_video
from videostyle.report import FrameDone, RenderResult, Reporter, StageTimes
from videostyle.temporal import paint
from videostyle.render.chain import save_frame
from videostyle.render.policy import PassStart



class PaintRender:
    """One painted render: checked on creation (paintings in the span, readable, following their
    frames), then ``run``: the source cached, the passes rendered, the frames blended and muxed."""

    def __init__(self, inp: Path, out: Path, spec: RenderSpec, reporter: Reporter, restart: bool,
                 overwrite: bool) -> None:
        self.inp, self.out, self.spec, self.reporter = inp, out, spec, reporter
        if spec.loop:
            raise ConfigError(f"{setting('paint')} renders its passes from the paintings, without {setting('loop')}")
        self.job = plan_video(inp, out, spec.output, overwrite, reporter.notice)
        info = self.job.info
        self.total = self.job.span.count(inp, info)
        if not self.total:
            raise InputError(f"input {inp} has no video frames in the requested span")
        self.paintings = paint.resolve([paint.parse(s) for s in spec.paintings], float(info.fps), self.total,
                                       self.job.span.start)
        self.painted = sorted(self.paintings)
        h, w = self.job.stylized
        self.pictures = {i: cv2.resize(read_image(p.image, "painting", spec.max_pixels), (w, h), interpolation=cv2.INTER_AREA)
                         for i, p in self.paintings.items()}
        # A painting's alpha marks what was painted (None: all of it).
        alphas = {i: read_alpha(p.image, spec.max_pixels) for i, p in self.paintings.items()}
        self.covers = {i: None if a is None else cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
                       for i, a in alphas.items()}
        self.keyframes: dict[int, np.ndarray] = {}
        styles = spec.engine.styles
        self.styles = load_styles(styles) if styles.keys.images else []
        settings = record(spec, inp, info)
        settings["paintings"] = {str(i): file_digest(p.image) for i, p in self.paintings.items()}
        # The passes are the same however many run at once: a resume may change --workers.
        settings["render"] = {k: v for k, v in settings["render"].items() if k not in ("workers", "overlap")}
        self.work = WorkDir(out, settings)
        self.work.open(restart)
        self.source = self.work.store("source")
        self.passes = paint.passes(self.painted, self.total)
        self.vs = build_video_stylizer(spec, [self.pictures[self.painted[0]]] + self.styles, reporter, None, info,
                                       painted=True)
        self.masks = self.vs.regions  # --mask, beside the paintings
        if self.masks is not None and not self.masks.still():
            raise ConfigError(f"{setting('paint')} goes with still {setting('mask')} images only: its passes run backwards "
                              "too, and a mask video is read in the clip's order")
        self.region_styles = load_region_styles(styles)
        self.anchor = True  # each pass's frames held to its keyframe too (PassStart.anchor)
        self.anchor_start = True  # ... and started from it where it holds
        self.anchor_content = True  # ... and its content target is the carried keyframe where it holds
        self.stages = StageTimes()
        self.iterations: list[int] = []
        self.frame_secs: list[float] = []

    # -- the steps

    def cache_source(self) -> None:
        """The source frames at the stylized size, once (a resume keeps them), and the check that
        each painting follows its frame."""
        c = self.spec
        for sf in chain.decoded(self.inp, self.job.span, self.job.info, c.size, c.upscale, self.reporter.notice,
                                times=self.stages, strict=c.strict):
            i = sf.frame.index
            assert sf.content is not None
            if not self.source.has(i):
                self.source.save(i, sf.content)
            if i in self.pictures:
                self._check_layout(i, sf.content)

    def _check_layout(self, index: int, frame: np.ndarray) -> None:
        match = paint.layout_match(self.pictures[index], frame)
        if match < paint.MATCH:
            self.reporter.notice(f"warning: {setting('paint', self.paintings[index].spec)}: the painting hardly follows frame "
                                 f"{index}'s layout (edge correlation {match:.2f}); check its frame number")

    def keyframe(self, index: int) -> np.ndarray:
        """A painted frame's output: the painting, over what the render gives where it covers
        part of the frame only (the content, or with --style a fresh frame in the style images,
        kept in the work folder)."""
        if index in self.keyframes:
            return self.keyframes[index]
        pic, cover = self.pictures[index], self.covers[index]
        if cover is None:
            out = pic
        else:
            base = self.source.load(index)
            if self.styles or self.region_styles:
                store = self.work.store("base")
                if store.has(index):
                    base = store.load(index)
                else:
                    eng = self.vs.engine
                    eng.set_styles(self.styles or [pic], [1.0] * max(len(self.styles), 1))
                    eng.set_region_styles(self.region_styles)
                    regions = (paint.PaintedRegions(self.masks, None, len(self.region_styles), bool(self.styles))
                               if self.masks is not None else None)
                    eng.set_regions(None if regions is None else regions.frame(index, base.shape[:2]))
                    base = eng.fresh(base, "content", self.vs.spec.seed + index, self.vs.on_iterate).image
                    store.save(index, base)
            a = cover[..., None]
            out = np.clip(np.round(a * pic + (1.0 - a) * base), 0, 255).astype(np.uint8)
        self.keyframes[index] = out
        return out

    def _frames(self, p: paint.Pass) -> Iterator[SourceFrame]:
        tb = self.job.info.time_base
        fps = float(self.job.info.fps)
        for i in p.frames:
            pts = round((self.job.span.start + i / fps) / tb)
            yield SourceFrame(Frame(i, pts, tb, np.empty((0, 0, 3), np.uint8)), self.source.load(i))

    def render_pass(self, p: paint.Pass) -> None:
        """One chain from its painting, its frames saved in its own store (those already there
        restored, so a resumed pass continues where it stopped)."""
        store = self.work.store(p.name)
        start = self.keyframe(p.origin)
        cover = self.covers[p.origin]
        slot = len(self.region_styles)  # the painting's region style, after --mask's
        if cover is None:
            styles = [self.pictures[p.origin]] + self.styles
            weights = [1.0] + [self.spec.paint_style_weight] * len(self.styles)
            region_styles = self.region_styles
            regions = None if self.masks is None else paint.PaintedRegions(self.masks, None, slot, True)
        else:
            # The painted part is styled by the painting (its transparent pixels filled from the
            # painted ones, so that its Gram matrices are the brushwork's), the rest by the style
            # images, or keeps the content; what it covers moves with the flow.
            painted = fill_transparent(self.pictures[p.origin], cover)
            region_styles = self.region_styles + [painted]
            styles, weights = self.styles or [painted], [1.0] * max(len(self.styles), 1)
            regions = paint.PaintedRegions(self.masks, cover, slot, bool(self.styles))
        source = self.source.load(p.origin)
        anchor = paint.Anchor(source, start, self.anchor_start, self.anchor_content) if self.anchor else None
        self.vs.begin_pass(PassStart(styles, weights, region_styles, regions, source, start, anchor))  # type: ignore[arg-type]
        vs = self.vs

        def sink(step: Step) -> None:
            res = step.result
            if res is None:  # restored from the pass's store
                self.reporter.frame(FrameDone(step.frame.index, self.frames_to_render, 0, 0.0, float("nan"),
                                              resumed=True))
                return
            assert step.image is not None
            save_frame(store, step.frame.index, step.image, res.restarted, res.ref_loss)
            self.iterations.append(res.iterations)
            self.frame_secs.append(res.seconds)
            self.reporter.frame(FrameDone(step.frame.index, self.frames_to_render, res.iterations, res.seconds,
                                          res.loss, restarted=res.restarted))

        chain.run(vs, self._frames(p), sink, store=store, times=self.stages)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the output at the stylized size: its painting, or its passes blended."""
        if index in self.pictures:
            return self.keyframe(index)
        acc = np.zeros(self.pictures[self.painted[0]].shape, np.float32)
        for origin, w in paint.weights(index, self.painted):
            name = f"{'fwd' if index > origin else 'bwd'}{origin:06d}"
            acc += w * self.work.store(name).load(index).astype(np.float32)
        return np.clip(np.round(acc), 0, 255).astype(np.uint8)

    def mux(self) -> int:
        """The blended frames encoded at the source's timestamps, with its audio (or written as
        the output's image sequence, each file through a temporary name)."""
        job = self.job
        writer = open_sink(self.inp, self.out, job, self.reporter.notice, self.work.path / "frames.list")
        frames, last = 0, 0.0
        try:
            for fr in job.span.frames(self.inp, info=job.info, strict=self.spec.strict):
                te = time.perf_counter()
                writer.write(output_frame(self.frame(fr.index), job), fr.pts, output_alpha(fr.alpha, job))
                self.stages.encode += time.perf_counter() - te
                frames, last = frames + 1, fr.time
            finish_writer(writer, job, last)
        except BaseException:
            writer.abort()
            raise
        return frames

    # -- the render

    @property
    def frames_to_render(self) -> int:
        return sum(len(p.frames) for p in self.passes)

    def rendered(self) -> int:
        """The passes' frames in the work folder."""
        n = 0
        for p in self.passes:
            store = self.work.store(p.name)  # (once a pass: it makes sure of its folder)
            n += sum(1 for i in p.frames if store.has(i))
        return n

    def render_passes(self) -> None:
        """Every pass: one after the other here, or side by side as Ray tasks with --workers."""
        workers = min(self.spec.workers, len(self.passes))
        if workers <= 1:
            for p in self.passes:
                self.render_pass(p)
            return
        from videostyle.render.cluster import import_ray, ray_session, remote_task, wait_tasks

        for i in self.painted:
            self.keyframe(i)  # (a partial painting's base, rendered once, here)
        self.vs.close()
        address = self.spec.ray_address
        import_ray(local=address is None)
        kept = self.rendered()
        with ray_session(address) as ray:
            task, threads = remote_task(ray, _pass_task, workers, self.spec.threads)
            refs = [task.remote(str(self.inp), str(self.out), self.spec, k, threads) for k in range(len(self.passes))]
            # (the tasks' frames are counted from the work folder as they land)
            wait_tasks(ray, refs, self.rendered, self.reporter, self.frames_to_render, kept, self.inp,
                       self.work.path)

    def run(self) -> RenderResult:
        started = time.perf_counter()
        rep = self.reporter
        rep.notice(f"{setting('paint')}: {len(self.painted)} painting(s) at frame(s) {', '.join(map(str, self.painted))}; "
                   f"{len(self.passes)} pass(es) over {self.frames_to_render} frame(s)")
        rep.begin(self.frames_to_render, str(self.inp))
        opt = self.vs.engine.optimises
        rep.plan(RenderPlan(frames=self.frames_to_render, first_iterations=0,
                            later_iterations=self.vs.spec.iterations_later if opt else 0, size=self.job.stylized,
                            device="GPU" if self.vs.engine.on_gpu else "CPU"))
        try:
            self.cache_source()
            self.render_passes()
            frames = self.mux()
        except KeyboardInterrupt as exc:
            self.vs.close()
            rep.end()
            raise RenderInterrupted(
                f"interrupted{interrupt.by(exc)}; the finished frames are kept in {self.work.path}: run the same "
                "command again to resume", exit_code=interrupt.exit_code(exc)) from None
        except BaseException:
            self.vs.close()
            rep.end()
            raise
        self.vs.close()
        rep.end()
        self.work.remove()
        st = dataclasses.replace(self.stages, stylize=sum(self.frame_secs))
        return RenderResult(self.out, frames, time.perf_counter() - started, self.iterations, st,
                            tuple(self.frame_secs))


def _pass_task(inp: str, out: str, spec: RenderSpec, index: int, threads: int) -> int:
    """Ray task body: render pass ``index`` of a painted render into its store (resuming)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    pr = PaintRender(Path(inp), Path(out), spec, Reporter(), restart=False, overwrite=True)
    try:
        p = pr.passes[index]
        pr.render_pass(p)
        return len(p.frames)
    finally:
        pr.vs.close()


def render_painted(inp: Path, out: Path, spec: RenderSpec, reporter: Reporter, *, restart: bool = False,
                   overwrite: bool = True) -> RenderResult:
    """Render ``inp`` into ``out`` around its painted keyframes (``spec.paintings``)."""
    return PaintRender(Path(inp), Path(out), spec, reporter, restart, overwrite).run()
