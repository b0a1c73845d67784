"""The per-frame policy of a video render, and its only home: which frames start fresh (the
first, scene cuts) and with how many iterations, how later frames warm-start from the previous
output warped by optical flow, which temporal terms they get, and when they stop. Also how a
frame an interrupted run finished is restored, so that the next one warm-starts the same."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from videostyle.config import Config
from videostyle.engine import Engine, TemporalTerm, WarmStart
from videostyle.engines import build_engine, build_regions, first_init, prepare_content, render_flow_params, runs_ahead
from videostyle.errors import DivergedError
from videostyle.temporal.flow import FlowParams, FramePair, blend, warp
from videostyle.temporal.flow import pair as flow_pair
from videostyle.temporal.keyframes import Schedule, schedule
from videostyle.temporal.paint import Anchor
from videostyle.io.media import VideoInfo
from videostyle.temporal.regions import FrameRegions, Regions
from videostyle.report import Reporter, StageTimes, STIterate
from videostyle.io.workdir import WorkDir

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    from videostyle.gatys.stylizer import Stylizer


class _History:
    """The last few (source, output) frame pairs at the stylized size, for warm starts and temporal terms."""

    def __init__(self, depth: int) -> None:
        self.pairs: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=depth)

    def push(self, src: np.ndarray, out: np.ndarray) -> None:
        self.pairs.append((src, out))

    def reset(self) -> None:
        self.pairs.clear()

    def get(self, gap: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.pairs[-gap] if gap <= len(self.pairs) else None


@dataclass(frozen=True)
class FrameResult:
    image: np.ndarray  # (H, W, 3) uint8 at the stylized size
    iterations: int
    loss: float
    restarted: bool  # a scene cut restarted this frame
    # Full-iteration frames (first, scene cuts): the reference loss later frames stop at (None otherwise).
    ref_loss: float | None = None
    seconds: float = 0.0  # wall time of the stylization, flow included


def flow_pairs(src: np.ndarray | None, earlier: dict[int, np.ndarray],
               params: FlowParams) -> tuple[dict[int, FramePair], float]:
    """Flow from ``src`` to each earlier source frame (by gap), and the seconds it took. It
    depends on source frames only, so it runs ahead of the stylizer."""
    t = time.perf_counter()
    pairs = {g: flow_pair(src, e, params) for g, e in earlier.items()} if src is not None else {}
    return pairs, time.perf_counter() - t


@dataclass(frozen=True)
class PassStart:
    """A painted pass's start, handed to ``VideoStylizer.begin_pass``: the styles it paints with
    (blended by ``weights``), the region styles by slot, its regions (None: the whole frame), the
    keyframe it starts from (source frame and painted output), and the anchor that holds its
    frames to that keyframe (None: none)."""

    styles: list[np.ndarray]
    weights: list[float]
    region_styles: list[np.ndarray]
    regions: Regions | None
    source: np.ndarray
    start: np.ndarray
    anchor: Anchor | None = None


class VideoStylizer:
    """Per-frame logic of a video render: warm start, flow warping, temporal terms, scene cuts.
    Its jobs drive it through its methods (``frame``, ``push``, ``resume_at``, ``begin_pass``,
    ``hold_styles``, ``hold_temporal_weight``), never by setting its state."""

    def __init__(self, cfg: Config, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        self.params = render_flow_params(cfg)
        self.hist = _History(depth=max(max(cfg.temporal.frames, default=1), 1))
        self.first_init: str | np.ndarray = cfg.optim.init
        self.callback: Callable[[STIterate], None] | None = None
        self.stages = StageTimes()
        self.ref_loss: float | None = None  # final loss of the last full-iteration frame
        self.schedule: Schedule | None = None  # style keyframes (None: one style blend throughout)
        self.start_time = 0.0  # the source's first timestamp: keyframe times count from it
        self.warm, self.temporal_weight, self.fast_blend = dial(cfg)
        self.regions: Regions | None = None  # --mask
        self.frame_regions: FrameRegions | None = None  # this frame's
        self.ready: dict[int, np.ndarray] = {}  # fast outputs computed ahead, by frame index
        # A painted pass's keyframe: each later frame is also held to it (None: no anchor).
        self.anchor: Anchor | None = None

    def close(self) -> None:
        """End what the engine started (the compiled fast network's worker processes)."""
        self.engine.close()

    def take_ahead(self, index: int, image: np.ndarray) -> None:
        """Frame ``index``'s network picture, computed ahead (``ahead``) on another thread."""
        self.ready[index] = image

    def resume_at(self, ref_loss: float) -> None:
        """A resumed render's reference loss (its last fresh frame's), for the early stop."""
        self.ref_loss = ref_loss

    def hold_styles(self) -> None:
        """Keep the styles set by ``begin_pass`` throughout (no style keyframes)."""
        self.schedule = None

    def hold_temporal_weight(self, weight: float) -> None:
        """The temporal term's weight from now on, whatever --consistency's dial said."""
        self.temporal_weight = weight

    def begin_pass(self, p: PassStart) -> None:
        """A new chain from a painted keyframe: the history forgotten, no early stop (no fresh
        frame to compare with), the pass's styles and regions, the keyframe as the frame before
        the first, and its anchor."""
        self.hist.reset()
        self.ref_loss = None
        self.engine.set_styles(p.styles, p.weights)
        self.engine.set_region_styles(p.region_styles)
        self.engine.set_regions(None)  # (an earlier pass's partial painting is not this one's)
        self.regions = p.regions
        self.anchor = None
        self.push(p.source, p.start)
        self.anchor = p.anchor

    @property
    def runs_ahead(self) -> bool:
        """Whether the engine's frames can run ahead of the frame order, on the flow stage's
        threads: a network's need no earlier output (only the blend does), except with regions,
        whose masks may follow each frame's flow."""
        return not self.engine.optimises and self.regions is None

    def ahead(self, src: np.ndarray, when: float | None) -> tuple[np.ndarray, float]:
        """The engine's frame at ``when`` seconds and the seconds it took, with the style
        keyframes' blend and strength at that time (thread-safe: nothing is changed)."""
        t0 = time.perf_counter()
        out = self.engine.ahead(src, self._keys_at(when) if when is not None else None)
        return out, time.perf_counter() - t0

    def gaps(self) -> list[int]:
        """Earlier frames whose flow each frame needs: 1 always (init, scene cuts), more for long-term terms."""
        t = self.cfg.temporal
        return sorted({1} | (set(t.frames) if self.temporal_weight > 0 else set()))

    def _pair(self, a: np.ndarray, b: np.ndarray) -> FramePair:
        t = time.perf_counter()
        p = flow_pair(a, b, self.params)
        self.stages.flow += time.perf_counter() - t
        return p

    def push(self, src: np.ndarray, out: np.ndarray) -> None:
        if self.anchor is not None:
            prev = self.hist.get(1)
            self.anchor.advance(src, None if prev is None else prev[0], self._pair)
        self.hist.push(src, out)

    def full(self, index: int, src: np.ndarray, cut: bool = False) -> tuple[np.ndarray, int, float]:
        """First frame and scene cuts: the engine's fresh frame (full iterations, or the network,
        or the network refined)."""
        if not self.engine.optimises:
            return self._network(index, src), 0, float("nan")
        init = self.first_init
        if cut and isinstance(init, np.ndarray):
            # --init-image is a picture for the first frame; a new shot starts from its own content
            # (--init noise stays noise: it is a look, applied to every fresh start).
            init = "content"
        res = self.engine.fresh(src, init, self.cfg.optim.seed + index, self.callback)
        self.ref_loss = res.loss
        return res.image, res.iterations, res.loss

    def direct(self, when: float) -> None:
        """Set the engines to the styles and strength of the keyframes at ``when`` (seconds of the
        source's timeline). Not a scene cut: the warm start carries on."""
        keys = self._keys_at(when)
        if keys is None:
            return
        self.engine.set_keys(*keys)

    def _keys_at(self, when: float) -> tuple[np.ndarray, float] | None:
        """The style keyframes' weights and strength at ``when`` (None without keyframes)."""
        sc = self.schedule
        if sc is None or not sc.keyed:
            return None
        t = when - self.start_time
        return sc.weights(t), sc.strength_at(t)

    def _set_regions(self, index: int, src: np.ndarray, flow_back: np.ndarray | None) -> None:
        if self.regions is None:
            return
        self.frame_regions = self.regions.frame(index, src.shape[:2], flow_back)
        self.engine.set_regions(self.frame_regions)

    def _network(self, index: int, src: np.ndarray) -> np.ndarray:
        """A network engine's frame: computed ahead, or now."""
        ready = self.ready.pop(index, None)
        if ready is not None:
            return ready
        t = time.perf_counter()
        out = self.engine.fresh(src, "content", self.cfg.optim.seed + index, None).image
        self.stages.model += time.perf_counter() - t
        return out

    def frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair] | None = None,
              when: float | None = None) -> FrameResult:
        """Stylize frame ``index`` (at ``when`` seconds, for style keyframes); ``pairs`` are
        precomputed flows to earlier frames (by gap)."""
        t0 = time.perf_counter()
        if when is not None:
            self.direct(when)
        try:
            res = self._frame(index, src, pairs or {})
        except DivergedError as exc:
            # Finished frames stay in the work folder; this one is never written as finished.
            raise DivergedError(f"frame {index}: {exc}") from None
        return dataclasses.replace(res, seconds=time.perf_counter() - t0)

    def _frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair]) -> FrameResult:
        t = self.cfg.temporal
        prev = self.hist.get(1)
        if prev is None:
            self._set_regions(index, src, None)
            img, n, loss = self.full(index, src)
            return FrameResult(img, n, loss, False, ref_loss=self.ref_loss)
        prev_src, prev_out = prev
        p1 = pairs.get(1) or self._pair(src, prev_src)
        cut = p1.reliable < t.scene_cut
        self._set_regions(index, src, None if cut else p1.back)
        if cut:
            self.hist.reset()
            self.anchor = None  # (a new shot: the painting is not in it)
            img, n, loss = self.full(index, src, cut=True)
            return FrameResult(img, n, loss, True, ref_loss=self.ref_loss)
        if not self.engine.optimises:
            # Feed-forward frames flicker; reliable pixels follow the warped previous output.
            new = self._network(index, src)
            tb = time.perf_counter()
            w = self.fast_blend
            warm = WarmStart(warp(prev_out, p1.back) if w > 0 else prev_out, 0, ready=new, reliable=p1.mask, follow=w)
            new = self.engine.later(src, warm, self.cfg.optim.seed + index, None).image
            self.stages.blend += time.perf_counter() - tb
            return FrameResult(new, 0, float("nan"), False)
        if self.warm == 0.0:
            # --consistency 0: every frame starts fresh, as the first did (the look boils).
            img, n, loss = self.full(index, src, cut=True)
            return FrameResult(img, n, loss, False, ref_loss=self.ref_loss)
        iterations = self.cfg.optim.iterations_later
        if t.init_later == "content" and t.consistency is None:
            init: np.ndarray = src
        elif t.init_later == "prev" and t.consistency is None:
            init = prev_out
        else:
            # Ruder et al. initialise with the warped previous output; where the flow is not
            # reliable (disocclusions) the current content is a better start than smeared paint,
            # in the previous output's colours: raw content, lighter than paint and only partly
            # repainted in the later frames' few iterations, made a long shot drift towards it
            # (scripts/bench_drift.py and bench_consistency.py; docs/benchmarks.md).
            # A consistency below 0.5 gives the warped output less weight and the frame more of
            # the first frame's iterations.
            init = blend(warp(prev_out, p1.back), _in_colours_of(src, prev_out), p1.mask, self.warm)
            iterations = round(iterations + (1.0 - self.warm) * max(self.cfg.optim.iterations - iterations, 0))
        terms: list[TemporalTerm] = []
        if self.temporal_weight > 0:
            covered = np.zeros(p1.mask.shape, np.float32)
            for gap in sorted(set(t.frames)):
                earlier = self.hist.get(gap)
                if earlier is None:
                    continue
                pk = p1 if gap == 1 else (pairs.get(gap) or self._pair(src, earlier[0]))
                # Long-term terms only cover pixels the closer frames could not (Ruder's c_long).
                mask = np.clip(pk.mask - covered, 0.0, 1.0)
                covered = np.maximum(covered, pk.mask)
                terms.append(TemporalTerm(warp(earlier[1], pk.back).astype(np.float32) / 255.0, mask,
                                          self.temporal_weight))
        content = src
        if self.anchor is not None:
            # Beyond Ruder et al.: a chain from a painting is also held to the painting itself,
            # carried by one flow (temporal.paint.Anchor), so that what each step's warp blurs or
            # the content pulls away does not add up along the chain.
            carried, held = self.anchor.term(src, p1.back, p1.mask, self._pair)
            if self.anchor.start:
                init = blend(carried, init, held)
            if self.anchor.content:
                # (not where a region keeps the content: that is the frame's, not the painting's)
                keep = self.frame_regions.keep if self.frame_regions is not None else None
                content = blend(carried, src, held if keep is None else held * (1.0 - keep))
            if self.temporal_weight > 0:
                terms.append(TemporalTerm(carried.astype(np.float32) / 255.0, held, self.temporal_weight))
        ratio = self.cfg.optim.stop_loss_ratio
        # Stop once the frame is as stylized as the first one (content, style and TV: the
        # stylizer leaves the temporal term out of the comparison, as the first frame has none).
        stop = self.ref_loss * ratio if ratio > 0 and self.ref_loss is not None else None
        res = self.engine.later(content, WarmStart(init, iterations, terms, stop, self.cfg.optim.coarse_later),
                                self.cfg.optim.seed + index, self.callback)
        return FrameResult(res.image, res.iterations, res.loss, False)


def _in_colours_of(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``src`` with each channel's mean moved to ``ref``'s and its spread scaled towards ``ref``'s,
    by 0.5x to 2x only: a flat previous output (a fade from black) must not flatten the content."""
    a = src.reshape(-1, 3).astype(np.float32)
    b = ref.reshape(-1, 3).astype(np.float32)
    scale = np.clip(b.std(0) / (a.std(0) + 1e-6), 0.5, 2.0)
    out = (a - a.mean(0)) * scale + b.mean(0)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(src.shape)


def dial(cfg: Config) -> tuple[float, float, float]:
    """``--consistency``'s settings: the warm start's weight on reliable pixels, the temporal
    weight and the fast engine's flow blend (without it: 1, --temporal-weight, --fast-blend).

    0 to 0.5 moves the warm start from none (each frame fresh) to the full warped previous
    output, the default; 0.5 to 1 adds the temporal loss, up to twice Ruder et al.'s balance (60)."""
    c = cfg.temporal.consistency
    if c is None:
        return 1.0, cfg.temporal.weight, cfg.fast.blend
    return min(1.0, 2.0 * c), 60.0 * max(0.0, 2.0 * c - 1.0), 0.9 * c


def save_frame(store: WorkDir, index: int, img: np.ndarray, cut: bool, ref: float | None) -> None:
    """Persist a finished frame with its markers; the PNG comes last, as it marks the frame done."""
    if cut:
        store.mark_cut(index)
    if ref is not None:
        store.save_ref_loss(index, ref)
    store.save(index, img)


def stylize_or_restore(vs: VideoStylizer, store: WorkDir, index: int, src: np.ndarray,
                       pairs: dict[int, FramePair] | None = None,
                       stages: StageTimes | None = None,
                       when: float | None = None) -> tuple[np.ndarray, FrameResult | None]:
    """Frame ``index`` from ``store`` when an earlier run finished it, restoring the warm-start
    state that run left (scene-cut reset, reference loss); else stylized now (the caller saves
    it, with ``save_frame``). Either way it joins the warm-start history. The result is None
    for restored frames."""
    stages = stages or StageTimes()
    t0 = time.perf_counter()
    res: FrameResult | None = None
    if store.has(index):
        img = store.load(index)
        if store.is_cut(index):
            vs.hist.reset()
        ref = store.ref_loss(index)
        if ref is not None:
            vs.ref_loss = ref
    else:
        res = vs.frame(index, src, pairs, when)
        img = res.image
        t0 = time.perf_counter()  # (the io stage: restoring; a new frame is saved by the caller)
    stages.io += time.perf_counter() - t0
    vs.push(src, img)
    return img, res


def ahead_workers(cfg: Config, on_gpu: bool = False) -> int:
    """Frames whose fast-engine output is computed at once, ahead of the frame order, on the
    flow stage's threads (0: none, the network runs in order on the main thread: other engines,
    regions, --no-stage-threads). ``flow.workers``, or for 0 up to 4, one per core; each call
    gets an equal share of the cores (single-threaded calls at once beat one call on every core:
    docs/benchmarks.md, the fast engine). With the network on a GPU (``on_gpu``: its calls take
    turns there) the flow is the work: up to 8, half the cores."""
    if not runs_ahead(cfg) or not cfg.render.stage_threads:
        return 0
    cores = os.cpu_count() or 1
    return cfg.flow.workers or (max(1, min(8, cores // 2)) if on_gpu else max(1, min(4, cores)))


def build_video_stylizer(cfg: Config, styles: list[np.ndarray], reporter: Reporter,
                         stylizer: Stylizer | None = None, info: VideoInfo | None = None,
                         ahead: bool = False) -> VideoStylizer:
    """The engines a video render needs (no VGG for --method fast) around one VideoStylizer,
    whose first frame starts from --init (an --init-image at the stylized size); ``info`` (the
    source's frame rate and first timestamp) places style keyframes. ``ahead``: the caller runs
    the fast engine's network ahead on ``ahead_workers`` threads (each call then gets its share
    of the cores; else every call gets all of them)."""
    engine = build_engine(cfg, styles, reporter.notice, stylizer, ahead_workers(cfg) if ahead else 0)
    vs = VideoStylizer(cfg, engine)
    s = cfg.style
    vs.schedule = schedule(s.images, s.blend, s.transitions, s.strength, float(info.fps) if info else 0.0)
    vs.regions = build_regions(cfg)
    vs.start_time = info.start_time if info else 0.0
    vs.callback = reporter.iterate
    init = first_init(cfg)
    vs.first_init = prepare_content(init, 0, "init image") if isinstance(init, np.ndarray) else init
    return vs
