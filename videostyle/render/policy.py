"""The per-frame policy of a video render, and its only home: which frames start fresh (the
first, scene cuts) and with how many iterations, how later frames warm-start from the previous
output warped by optical flow, which temporal terms they get, and when they stop.

The policy is built from its frozen spec (``PolicySpec``, which the builder, ``engines.policy``,
translates from the Config once) and an engine handed in. It keeps its state to itself: the jobs
that drive it (a file, a pipe, a segment, the settle pass, a painted pass) do so through its
methods, a step per frame (``frame`` then ``push``) and ``snapshot``/``restore`` for resume and
the settle pass; a painted pass hands over its ``PassStart``."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from videostyle.engine import Engine, TemporalTerm, WarmStart
from videostyle.errors import DivergedError
from videostyle.report import StageTimes, STIterate
from videostyle.temporal.flow import FlowParams, FramePair, blend, warp
from videostyle.temporal.flow import pair as flow_pair
from videostyle.temporal.keyframes import Schedule
from videostyle.temporal.paint import Anchor
from videostyle.temporal.regions import FrameRegions, Regions


@dataclass(frozen=True)
class PolicySpec:
    """What the per-frame policy does, from the Config (``engines.policy``)."""

    flow: FlowParams
    seed: int = 0
    iterations: int = 300  # a fresh frame's (the first, scene cuts); also the top of --consistency's dial
    iterations_later: int = 20  # a later frame's budget
    init_later: str = "warped"  # content | prev | warped
    mixed: bool = False  # --consistency set: the warm start blends the warped output by ``warm``
    warm: float = 1.0  # the warm start's weight on reliable pixels (0: every frame fresh)
    temporal_weight: float = 0.0
    fast_blend: float = 0.0  # the fast engine's flow blend
    long_term: tuple[int, ...] = (1,)  # earlier frames (gaps) with a temporal term
    scene_cut: float = 0.0  # below this share of reliable flow, a frame starts fresh
    stop_loss_ratio: float = 0.0  # later frames stop at this x the last fresh frame's loss (0: off)
    coarse_later: int = 0
    first_init: str | np.ndarray = field(default="content", compare=False)  # content, noise, or a picture
    schedule: Schedule | None = None  # style keyframes (None: one style blend throughout)
    start_time: float = 0.0  # the source's first timestamp: keyframe times count from it
    settle_seconds: float = 0.0  # the start rendered again backwards (render.settle; 0 with --loop)


# A painted pass's temporal weight when the settings give none (Ruder et al.'s balance): a chain
# from a painting is held to it (``engines.painted_policy``, ``RenderSpec.painted``).
PAINTED_TEMPORAL_WEIGHT = 30.0


@dataclass(frozen=True)
class PolicyState:
    """What a policy carries from frame to frame (``snapshot``/``restore``): the reference loss
    later frames stop at, and the warm-start history (source, output) pairs, oldest first."""

    ref_loss: float | None
    history: tuple[tuple[np.ndarray, np.ndarray], ...]


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
    Built from its spec and an engine handed in; its jobs drive it through its methods (``frame``,
    ``push``, ``snapshot``/``restore``, ``begin_pass``, ``resume_at``),
    never by setting its state."""

    def __init__(self, spec: PolicySpec, engine: Engine, regions: Regions | None = None,
                 on_iterate: Callable[[STIterate], None] | None = None) -> None:
        self._spec = spec
        self._engine = engine
        self._hist = _History(depth=max(max(spec.long_term, default=1), 1))
        self._on_iterate = on_iterate
        self._stages = StageTimes()
        self._ref_loss: float | None = None  # final loss of the last full-iteration frame
        self._regions = regions  # --mask
        self._frame_regions: FrameRegions | None = None  # this frame's
        self._ready: dict[int, np.ndarray] = {}  # fast outputs computed ahead, by frame index
        # A painted pass's keyframe: each later frame is also held to it (None: no anchor).
        self._anchor: Anchor | None = None

    # -- what the jobs read ----------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def stages(self) -> StageTimes:
        """The seconds the policy spent on flow, the network and the blend (added to as it runs)."""
        return self._stages

    @property
    def regions(self) -> Regions | None:
        return self._regions

    @property
    def on_iterate(self) -> Callable[[STIterate], None] | None:
        return self._on_iterate

    @property
    def runs_ahead(self) -> bool:
        """Whether the engine's frames can run ahead of the frame order, on the flow stage's
        threads: a network's need no earlier output (only the blend does), except with regions,
        whose masks may follow each frame's flow."""
        return not self._engine.optimises and self._regions is None

    def gaps(self) -> list[int]:
        """Earlier frames whose flow each frame needs: 1 always (init, scene cuts), more for long-term terms."""
        return sorted({1} | (set(self._spec.long_term) if self._spec.temporal_weight > 0 else set()))

    # -- how the jobs drive it ---------------------------------------------------------------

    def close(self) -> None:
        """End what the engine started (the compiled fast network's worker processes)."""
        self._engine.close()

    def snapshot(self) -> PolicyState:
        """What the next frame's warm start and stop depend on (``restore`` puts it back)."""
        return PolicyState(self._ref_loss, tuple(self._hist.pairs))

    def restore(self, state: PolicyState) -> None:
        """Back to ``state``: a resumed render's (its last fresh frame's loss, an empty history
        after a scene cut), or the settle pass's return to where the forward pass was."""
        self._ref_loss = state.ref_loss
        self._hist.reset()
        for src, out in state.history:
            self._hist.push(src, out)

    def take_ahead(self, index: int, image: np.ndarray) -> None:
        """Frame ``index``'s network picture, computed ahead (``ahead``) on another thread."""
        self._ready[index] = image

    def resume_at(self, ref_loss: float) -> None:
        """A resumed render's reference loss (its last fresh frame's), for the early stop."""
        self._ref_loss = ref_loss

    def begin_pass(self, p: PassStart) -> None:
        """A new chain from a painted keyframe: the history forgotten, no early stop (no fresh
        frame to compare with), the pass's styles and regions, the keyframe as the frame before
        the first, and its anchor."""
        self._hist.reset()
        self._ref_loss = None
        self._engine.set_styles(p.styles, p.weights)
        self._engine.set_region_styles(p.region_styles)
        self._engine.set_regions(None)  # (an earlier pass's partial painting is not this one's)
        self._regions = p.regions
        self._anchor = None
        self.push(p.source, p.start)
        self._anchor = p.anchor

    def ahead(self, src: np.ndarray, when: float | None) -> tuple[np.ndarray, float]:
        """The engine's frame at ``when`` seconds and the seconds it took, with the style
        keyframes' blend and strength at that time (thread-safe: nothing is changed)."""
        t0 = time.perf_counter()
        out = self._engine.ahead(src, self._keys_at(when) if when is not None else None)
        return out, time.perf_counter() - t0

    def push(self, src: np.ndarray, out: np.ndarray) -> None:
        """Frame ``src``'s output, the one the next frame warm-starts from."""
        if self._anchor is not None:
            prev = self._hist.get(1)
            self._anchor.advance(src, None if prev is None else prev[0], self._pair)
        self._hist.push(src, out)

    def frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair] | None = None,
              when: float | None = None) -> FrameResult:
        """Stylize frame ``index`` (at ``when`` seconds, for style keyframes); ``pairs`` are
        precomputed flows to earlier frames (by gap)."""
        t0 = time.perf_counter()
        if when is not None:
            self._direct(when)
        try:
            res = self._frame(index, src, pairs or {})
        except DivergedError as exc:
            # Finished frames stay in the work folder; this one is never written as finished.
            raise DivergedError(f"frame {index}: {exc}") from None
        return dataclasses.replace(res, seconds=time.perf_counter() - t0)

    # -- inside ------------------------------------------------------------------------------

    def _pair(self, a: np.ndarray, b: np.ndarray) -> FramePair:
        t = time.perf_counter()
        p = flow_pair(a, b, self._spec.flow)
        self._stages.flow += time.perf_counter() - t
        return p

    def _full(self, index: int, src: np.ndarray, cut: bool = False) -> tuple[np.ndarray, int, float]:
        """First frame and scene cuts: the engine's fresh frame (full iterations, or the network,
        or the network refined)."""
        if not self._engine.optimises:
            return self._network(index, src), 0, float("nan")
        init = self._spec.first_init
        if cut and isinstance(init, np.ndarray):
            # --init-image is a picture for the first frame; a new shot starts from its own content
            # (--init noise stays noise: it is a look, applied to every fresh start).
            init = "content"
        res = self._engine.fresh(src, init, self._spec.seed + index, self._on_iterate)
        self._ref_loss = res.loss
        return res.image, res.iterations, res.loss

    def _direct(self, when: float) -> None:
        """Set the engines to the styles and strength of the keyframes at ``when`` (seconds of the
        source's timeline). Not a scene cut: the warm start carries on."""
        keys = self._keys_at(when)
        if keys is None:
            return
        self._engine.set_keys(*keys)

    def _keys_at(self, when: float) -> tuple[np.ndarray, float] | None:
        """The style keyframes' weights and strength at ``when`` (None without keyframes)."""
        sc = self._spec.schedule
        if sc is None or not sc.keyed:
            return None
        t = when - self._spec.start_time
        return sc.weights(t), sc.strength_at(t)

    def _set_regions(self, index: int, src: np.ndarray, flow_back: np.ndarray | None) -> None:
        if self._regions is None:
            return
        self._frame_regions = self._regions.frame(index, src.shape[:2], flow_back)
        self._engine.set_regions(self._frame_regions)

    def _network(self, index: int, src: np.ndarray) -> np.ndarray:
        """A network engine's frame: computed ahead, or now."""
        ready = self._ready.pop(index, None)
        if ready is not None:
            return ready
        t = time.perf_counter()
        out = self._engine.fresh(src, "content", self._spec.seed + index, None).image
        self._stages.model += time.perf_counter() - t
        return out

    def _frame(self, index: int, src: np.ndarray, pairs: dict[int, FramePair]) -> FrameResult:
        sp = self._spec
        prev = self._hist.get(1)
        if prev is None:
            self._set_regions(index, src, None)
            img, n, loss = self._full(index, src)
            return FrameResult(img, n, loss, False, ref_loss=self._ref_loss)
        prev_src, prev_out = prev
        p1 = pairs.get(1) or self._pair(src, prev_src)
        cut = p1.reliable < sp.scene_cut
        self._set_regions(index, src, None if cut else p1.back)
        if cut:
            self._hist.reset()
            self._anchor = None  # (a new shot: the painting is not in it)
            img, n, loss = self._full(index, src, cut=True)
            return FrameResult(img, n, loss, True, ref_loss=self._ref_loss)
        if not self._engine.optimises:
            return self._blended(index, src, prev_out, p1)
        if sp.warm == 0.0:
            # --consistency 0: every frame starts fresh, as the first did (the look boils).
            img, n, loss = self._full(index, src, cut=True)
            return FrameResult(img, n, loss, False, ref_loss=self._ref_loss)
        init, iterations = self._warm_start(src, prev_out, p1)
        terms = self._temporal_terms(src, p1, pairs)
        content = src
        if self._anchor is not None:
            # Beyond Ruder et al.: a chain from a painting is also held to the painting itself,
            # carried by one flow (temporal.paint.Anchor), so that what each step's warp blurs or
            # the content pulls away does not add up along the chain.
            carried, held = self._anchor.term(src, p1.back, p1.mask, self._pair)
            if self._anchor.start:
                init = blend(carried, init, held)
            if self._anchor.content:
                # (not where a region keeps the content: that is the frame's, not the painting's)
                keep = self._frame_regions.keep if self._frame_regions is not None else None
                content = blend(carried, src, held if keep is None else held * (1.0 - keep))
            if self._spec.temporal_weight > 0:
                terms.append(TemporalTerm(carried.astype(np.float32) / 255.0, held, self._spec.temporal_weight))
        ratio = sp.stop_loss_ratio
        # Stop once the frame is as stylized as the first one (content, style and TV: the
        # stylizer leaves the temporal term out of the comparison, as the first frame has none).
        stop = self._ref_loss * ratio if ratio > 0 and self._ref_loss is not None else None
        res = self._engine.later(content, WarmStart(init, iterations, terms, stop, sp.coarse_later),
                                 sp.seed + index, self._on_iterate)
        return FrameResult(res.image, res.iterations, res.loss, False)

    def _blended(self, index: int, src: np.ndarray, prev_out: np.ndarray, p1: FramePair) -> FrameResult:
        """A network's later frame: feed-forward frames flicker, so reliable pixels follow the
        warped previous output."""
        new = self._network(index, src)
        tb = time.perf_counter()
        w = self._spec.fast_blend
        warm = WarmStart(warp(prev_out, p1.back) if w > 0 else prev_out, 0, ready=new, reliable=p1.mask, follow=w)
        new = self._engine.later(src, warm, self._spec.seed + index, None).image
        self._stages.blend += time.perf_counter() - tb
        return FrameResult(new, 0, float("nan"), False)

    def _warm_start(self, src: np.ndarray, prev_out: np.ndarray, p1: FramePair) -> tuple[np.ndarray, int]:
        """A later frame's starting image and its iteration budget."""
        sp = self._spec
        iterations = sp.iterations_later
        if sp.init_later == "content" and not sp.mixed:
            return src, iterations
        if sp.init_later == "prev" and not sp.mixed:
            return prev_out, iterations
        # Ruder et al. initialise with the warped previous output; where the flow is not
        # reliable (disocclusions) the current content is a better start than smeared paint,
        # in the previous output's colours: raw content, lighter than paint and only partly
        # repainted in the later frames' few iterations, made a long shot drift towards it
        # (docs/benchmarks.md, drift and consistency).
        # A consistency below 0.5 gives the warped output less weight and the frame more of
        # the first frame's iterations.
        init = blend(warp(prev_out, p1.back), _in_colours_of(src, prev_out), p1.mask, sp.warm)
        return init, round(iterations + (1.0 - sp.warm) * max(sp.iterations - iterations, 0))

    def _temporal_terms(self, src: np.ndarray, p1: FramePair, pairs: dict[int, FramePair]) -> list[TemporalTerm]:
        """Ruder et al.'s short- and long-term temporal terms."""
        terms: list[TemporalTerm] = []
        if self._spec.temporal_weight <= 0:
            return terms
        covered = np.zeros(p1.mask.shape, np.float32)
        for gap in sorted(set(self._spec.long_term)):
            earlier = self._hist.get(gap)
            if earlier is None:
                continue
            pk = p1 if gap == 1 else (pairs.get(gap) or self._pair(src, earlier[0]))
            # Long-term terms only cover pixels the closer frames could not (Ruder's c_long).
            mask = np.clip(pk.mask - covered, 0.0, 1.0)
            covered = np.maximum(covered, pk.mask)
            terms.append(TemporalTerm(warp(earlier[1], pk.back).astype(np.float32) / 255.0, mask,
                                      self._spec.temporal_weight))
        return terms


def _in_colours_of(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``src`` with each channel's mean moved to ``ref``'s and its spread scaled towards ``ref``'s,
    by 0.5x to 2x only: a flat previous output (a fade from black) must not flatten the content."""
    a = src.reshape(-1, 3).astype(np.float32)
    b = ref.reshape(-1, 3).astype(np.float32)
    scale = np.clip(b.std(0) / (a.std(0) + 1e-6), 0.5, 2.0)
    out = (a - a.mean(0)) * scale + b.mean(0)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(src.shape)
