"""The builder: the one module that reads the engine's name (``fast.method``) and turns the Config
into an engine, with the style images, regions, the first frame's start and the flow a render of
that engine computes, and into the per-frame policy's frozen spec (``policy``) and the policy
itself around an engine (``build_video_stylizer``). Everything downstream asks the engine
(``engine.Engine``) and the policy (``render.policy.VideoStylizer``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from videostyle.config import Config, to_dict
from videostyle.engine import Callback, Engine, Painted, WarmStart
from videostyle.errors import ConfigError, NO_STYLE, setting
from videostyle.estimate import RenderPlan
from videostyle.fast.engine import FastEngine
from videostyle.gatys.engine import GatysEngine
from videostyle.io.images import check_size, fit_size, read_image, resize_image
from videostyle.io import sequence
from videostyle.io.media import Span, VideoInfo
from videostyle.io.workdir import file_digest
from videostyle.render.output import OutputSpec
from videostyle.render.policy import PAINTED_TEMPORAL_WEIGHT, PolicySpec, VideoStylizer
from videostyle.render.scan import ScanSpec
from videostyle.report import Reporter
from videostyle.temporal.flow import FlowParams
from videostyle.temporal.keyframes import schedule, style_paths
from videostyle.temporal.regions import FrameRegions, Regions
from videostyle.temporal.regions import style_images as region_style_images

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    import torch

    from videostyle.gatys.features import VGGFeatures
    from videostyle.gatys.stylizer import Stylizer

RANDOM_MODEL_WARNING = "warning: --model random uses untrained VGG weights; the result is not a real stylization"


class HybridEngine:
    """The fast network's frame as the optimiser's start: a fresh frame takes ``fast.refine_iterations``
    from it instead of the full iterations from the content; later frames are the Gatys engine's."""

    optimises: ClassVar[bool] = True

    def __init__(self, gatys: GatysEngine, fast: FastEngine, refine_iterations: int) -> None:
        self.gatys, self.fast, self.refine = gatys, fast, refine_iterations
        self.on_gpu = gatys.on_gpu

    def set_keys(self, weights: Sequence[float], strength: float) -> None:
        self.gatys.set_keys(weights, strength)
        self.fast.set_keys(weights, strength)

    def set_styles(self, images: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        self.gatys.set_styles(images, weights)
        self.fast.set_styles(images, weights)

    def set_region_styles(self, images: Sequence[np.ndarray]) -> None:
        self.gatys.set_region_styles(images)
        self.fast.set_region_styles(images)

    def set_regions(self, regions: FrameRegions | None) -> None:
        self.gatys.set_regions(regions)

    def fresh(self, src: np.ndarray, init: str | np.ndarray, seed: int, callback: Callback | None) -> Painted:
        # The fast engine's frame (as a fast render's) is the start of a short optimisation:
        # the Gatys engine's later frame, from it, without temporal terms.
        start = self.fast.fresh(src, "content", seed, None).image
        return self.gatys.later(src, WarmStart(start, self.refine), seed, callback)

    def later(self, src: np.ndarray, warm: WarmStart, seed: int, callback: Callback | None) -> Painted:
        return self.gatys.later(src, warm, seed, callback)

    def ahead(self, src: np.ndarray, keys: tuple[np.ndarray, float] | None) -> np.ndarray | None:
        return self.gatys.ahead(src, keys)

    def close(self) -> None:
        self.fast.close()


# The engine types by name: the only place the name is compared.
ENGINE_TYPES: dict[str, type] = {"gatys": GatysEngine, "fast": FastEngine, "hybrid": HybridEngine}


def engine_type(cfg: Config) -> type:
    return ENGINE_TYPES[cfg.fast.method]


def uses_vgg(cfg: Config) -> bool:
    """Whether the render optimises on VGG-19 (the engines that optimise: all but the fast one)."""
    return engine_type(cfg).optimises


def runs_ahead(cfg: Config) -> bool:
    """Whether the engine's frames depend on their source alone (the fast engine without
    regions, whose masks may follow each frame's flow), so that they can run ahead."""
    return not engine_type(cfg).optimises and not cfg.style.masks


def random_model_notice(cfg: Config, notice: Callable[[str], None]) -> None:
    if cfg.model.name == "random" and uses_vgg(cfg):
        notice(RANDOM_MODEL_WARNING)


def load_styles(cfg: Config) -> list[np.ndarray]:
    if not cfg.style.images:
        raise ConfigError(NO_STYLE)
    return [read_image(p, "style image", cfg.render.max_pixels) for p in style_paths(cfg.style.images)]


def first_init(cfg: Config) -> str | np.ndarray:
    """The first frame's (or an image's) start: ``content``, ``noise``, or the --init-image picture."""
    if cfg.optim.init != "image":
        return cfg.optim.init
    if not cfg.optim.init_image:
        raise ConfigError(f"{setting('init', 'image')} needs {setting('init_image', 'PATH')}")
    return read_image(cfg.optim.init_image, "init image", cfg.render.max_pixels)


def stylizer_settings(cfg: Config) -> dict[str, object]:
    """The stylizer's arguments that ``cfg`` sets besides its network and device: the one place
    where the config is translated for the Gatys engine."""
    from videostyle.gatys.losses import LossSpec
    from videostyle.gatys.stylizer import OptimSpec

    s, o = cfg.style, cfg.optim
    loss = LossSpec(tuple(s.content_layers), tuple(s.style_layers),
                    tuple(s.layer_weights) or tuple(1.0 for _ in s.style_layers),
                    s.content_weight, s.style_weight, s.tv_weight)
    optim = OptimSpec(o.optimizer, o.iterations, o.lr, o.init, o.seed, o.pyramid_levels, o.pyramid_scale,
                      o.tolerance, o.tolerance_window, o.fixed_tile, o.tile_margin)
    return {"loss": loss, "optim": optim, "precision": cfg.render.precision, "cuda_graphs": cfg.render.cuda_graphs,
            "memory_gb": cfg.render.memory, "style_scale": s.scale, "stroke_side": s.stroke_side,
            "preserve_colors": s.preserve_colors}


def new_stylizer(cfg: Config, extractor: VGGFeatures | None = None, device: torch.device | None = None,
                 download: bool = True) -> Stylizer:
    """A stylizer with ``cfg``'s network (or ``extractor``), loss and optimiser on its device;
    ``download``: fetch torchvision's weights if the model needs them and they are not cached."""
    import torch

    from videostyle.device import resolve_device
    from videostyle.gatys.features import build_extractor
    from videostyle.gatys.stylizer import Stylizer

    if cfg.render.threads:
        torch.set_num_threads(cfg.render.threads)
    settings = stylizer_settings(cfg)
    if extractor is None:
        m = cfg.model
        extractor = build_extractor(settings["loss"].layers, model=m.name, weights=m.weights,  # type: ignore[attr-defined]
                                    weights_format=m.weights_format, pooling=m.pooling,  # type: ignore[arg-type]
                                    seed=cfg.optim.seed, download=download)
    r = cfg.render
    return Stylizer(extractor, device=device or resolve_device(r.device), channels_last=r.channels_last, compile=r.compile,
                    **settings)  # type: ignore[arg-type]


def configure(st: Stylizer, cfg: Config) -> Stylizer:
    """``cfg``'s loss, optimiser and precision on ``st``'s network and device (one network,
    several renders: benchmarks, batches)."""
    st.configure(**stylizer_settings(cfg))  # type: ignore[arg-type]
    return st


def build_stylizer(cfg: Config, styles: list[np.ndarray], notice: Callable[[str], None],
                   stylizer: Stylizer | None = None, download: bool = True) -> Stylizer:
    """The optimising stylizer set to ``styles``: ``stylizer``'s network when given (configured
    to ``cfg``), else a new one."""
    random_model_notice(cfg, notice)
    st = configure(stylizer, cfg) if stylizer is not None else new_stylizer(cfg, download=download)
    weights, strength = at_start(cfg)
    st.set_styles(styles, weights)
    st.set_strength(strength)
    st.set_region_styles(load_region_styles(cfg))
    st.set_regions([])
    st.notice = notice
    return st


def load_region_styles(cfg: Config) -> list[np.ndarray]:
    """The style images --mask MASK=STYLE names, in their slots' order."""
    return [read_image(p, "region style image", cfg.render.max_pixels) for p in region_style_images(cfg.style.masks)]


def build_regions(cfg: Config) -> Regions | None:
    """The render's region masks (None without --mask)."""
    s = cfg.style
    return Regions(s.masks, s.mask_feather, s.mask_follow) if s.masks else None


def build_fast(cfg: Config, styles: list[np.ndarray], threads: int = 0, workers: int = 1,
               notice: Callable[[str], None] = lambda m: None) -> FastEngine:
    """The feed-forward engine; ``threads``: each call's CPU threads (0: every core);
    ``workers``: calls that may run at once."""
    from videostyle.fast.network import FastStylizer

    net = FastStylizer(cfg.render.device, threads=threads, overlap=cfg.fast.tile_overlap, tiling=cfg.fast.tiling,
                       runtime=cfg.fast.runtime, workers=workers, notice=notice)
    weights, strength = at_start(cfg)
    net.set_styles(styles, weights)
    net.region_vecs = [net.style_vector(im) for im in load_region_styles(cfg)]
    engine = FastEngine(net, cfg.fast.strength, cfg.style.preserve_colors)
    engine.strength = strength
    return engine


def build_engine(cfg: Config, styles: list[np.ndarray], notice: Callable[[str], None],
                 stylizer: Stylizer | None = None, ahead: int = 0) -> Engine:
    """The render's engine, set to ``styles`` at time 0; ``stylizer``: a network to reuse;
    ``ahead``: frames the caller runs through the fast network at once, ahead of the frame
    order (each call then gets its share of the cores; 0: every call gets all of them)."""
    kind = engine_type(cfg)
    fast = None
    if kind is not GatysEngine:
        fast = build_fast(cfg, styles, threads=max(1, (os.cpu_count() or 1) // ahead) if ahead else 0,
                          workers=ahead or 1, notice=notice)
        if kind is FastEngine:
            return fast
    gatys = GatysEngine(build_stylizer(cfg, styles, notice, stylizer), cfg.optim.iterations)
    return gatys if fast is None else HybridEngine(gatys, fast, cfg.fast.refine_iterations)


def at_start(cfg: Config) -> tuple[list[float], float]:
    """The style blend and strength at time 0 (an image's; a video's until its first keyframe)."""
    s = cfg.style
    sc = schedule(s.images, s.blend, s.transitions, s.strength, 0.0)
    return [float(w) for w in sc.weights(0.0)], sc.strength_at(0.0)


def flow_params(cfg: Config) -> FlowParams:
    """The flow section's settings that the flow computation takes (same names)."""
    return FlowParams(**{f.name: getattr(cfg.flow, f.name) for f in dataclasses.fields(FlowParams)})


def render_flow_params(cfg: Config) -> FlowParams:
    """The flow a render computes: the flow section's, except for the fast engine's blend
    (``fast.flow``), which needs less precision than the optimiser's warm start."""
    p = flow_params(cfg)
    if engine_type(cfg).optimises or cfg.fast.flow == "flow":
        return p
    if cfg.fast.flow == "lite":
        # One flow at half size, judged by colour: the blend only needs to know where the warped
        # previous output can be trusted, not the motion to a pixel; two Farneback iterations a
        # level instead of three keep the same temporal error (docs/benchmarks.md, the fast engine).
        return dataclasses.replace(p, method="farneback", scale=0.5, check="photometric", flow_iterations=2)
    return dataclasses.replace(p, method="dis", scale=0.5 if cfg.fast.flow == "dis-half" else p.scale)


def prepare_content(image: np.ndarray, size: int, what: str, upscale: bool = False) -> np.ndarray:
    """``image`` at the stylized size (longer side ``size``; upscaled only with ``upscale``),
    checked for the network."""
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size, upscale)
    check_size(th, tw, what)
    return resize_image(image, (th, tw))


def render_plan(cfg: Config, engine: Engine, frames: int | None, size: tuple[int, int], settle: int = 0,
                resumed: int = 0) -> RenderPlan:
    """What a render with ``engine`` is about to do, for its estimate."""
    first = engine.refine if isinstance(engine, HybridEngine) else getattr(engine, "iterations", 0)
    return RenderPlan(frames=frames, first_iterations=int(first) if engine.optimises else 0,
                      later_iterations=cfg.optim.iterations_later + cfg.optim.coarse_later if engine.optimises else 0,
                      size=size, settle_frames=settle, resumed=resumed, device="GPU" if engine.on_gpu else "CPU",
                      early_stop=engine.optimises and cfg.optim.stop_loss_ratio > 0)


def dial(cfg: Config) -> tuple[float, float, float]:
    """``--consistency``'s settings: the warm start's weight on reliable pixels, the temporal
    weight and the fast engine's flow blend (without it: 1, --temporal-weight, --fast-blend).

    0 to 0.5 moves the warm start from none (each frame fresh) to the full warped previous
    output, the default; 0.5 to 1 adds the temporal loss, up to twice Ruder et al.'s balance (60)."""
    c = cfg.temporal.consistency
    if c is None:
        return 1.0, cfg.temporal.weight, cfg.fast.blend
    return min(1.0, 2.0 * c), 60.0 * max(0.0, 2.0 * c - 1.0), 0.9 * c


def settle_seconds(cfg: Config) -> float:
    """The start rendered again backwards (``render.settle``): none with --loop, which settles
    frame 0 from the last frame instead."""
    return 0.0 if cfg.temporal.loop else cfg.temporal.settle


def policy(cfg: Config, info: VideoInfo | None = None) -> PolicySpec:
    """The per-frame policy's spec; ``info`` (the source's frame rate and first timestamp)
    places style keyframes."""
    warm, weight, fast_blend = dial(cfg)
    o, t, s = cfg.optim, cfg.temporal, cfg.style
    init = first_init(cfg)
    return PolicySpec(
        flow=render_flow_params(cfg), seed=o.seed, iterations=o.iterations, iterations_later=o.iterations_later,
        init_later=t.init_later, mixed=t.consistency is not None, warm=warm, temporal_weight=weight,
        fast_blend=fast_blend, long_term=tuple(t.frames), scene_cut=t.scene_cut, stop_loss_ratio=o.stop_loss_ratio,
        coarse_later=o.coarse_later,
        first_init=prepare_content(init, 0, "init image") if isinstance(init, np.ndarray) else init,
        schedule=schedule(s.images, s.blend, s.transitions, s.strength, float(info.fps) if info else 0.0),
        start_time=info.start_time if info else 0.0, settle_seconds=settle_seconds(cfg))


def painted_policy(cfg: Config, info: VideoInfo | None = None) -> PolicySpec:
    """A painted render's policy: the styles are each pass's (``PassStart``), not keyframes', and a
    chain from a painting has a temporal term even where the settings give none."""
    spec = dataclasses.replace(policy(cfg, info), schedule=None)
    if cfg.temporal.consistency is None and cfg.temporal.weight == 0:
        spec = dataclasses.replace(spec, temporal_weight=PAINTED_TEMPORAL_WEIGHT)
    return spec


def scan_spec(cfg: Config) -> ScanSpec:
    """How a render's span is scanned (``render.scan``)."""
    return ScanSpec(render_flow_params(cfg), cfg.temporal.scene_cut, cfg.render.strict, cfg.optim.size,
                    cfg.optim.upscale)


def span(cfg: Config) -> Span:
    """The part of the input a render covers."""
    r = cfg.render
    return Span(r.start, r.duration, r.max_frames)


def output_spec(cfg: Config) -> OutputSpec:
    """What a video render's output asks of its input and how it is written (``render.output``)."""
    e, r = cfg.encode, cfg.render
    return OutputSpec(span(cfg), cfg.optim.size, cfg.optim.upscale, e.codec, e.crf, e.preset, e.even, e.output_size,
                      e.start_number, bool(cfg.temporal.loop), r.audio, r.hdr, r.fps, r.fill_gaps, r.max_pixels)


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
                         ahead: bool = False, spec: PolicySpec | None = None) -> VideoStylizer:
    """The engines a video render needs (no VGG for --method fast) around one VideoStylizer,
    whose first frame starts from --init (an --init-image at the stylized size); ``info`` (the
    source's frame rate and first timestamp) places style keyframes. ``ahead``: the caller runs
    the fast engine's network ahead on ``ahead_workers`` threads (each call then gets its share
    of the cores; else every call gets all of them). ``spec``: the policy's, when not the
    Config's (``painted_policy``)."""
    engine = build_engine(cfg, styles, reporter.notice, stylizer, ahead_workers(cfg) if ahead else 0)
    return VideoStylizer(spec or policy(cfg, info), engine, build_regions(cfg), reporter.iterate)


def render_settings(cfg: Config, inp: Path, info: VideoInfo) -> dict[str, Any]:
    """Everything that determines the stylized frames and their encoding (for resume); not
    progress or scheduling options. ``info``: the input's probe (an image sequence's files)."""
    d = to_dict(cfg)
    # Encode settings stay in: the work folder holds frames encoded with them.
    # Options that change neither the frames nor their encoding stay out (a resume may change them).
    d["render"] = {k: v for k, v in d["render"].items() if k not in ("preview_every", "stage_threads", "ray_address")}
    d["flow"] = {k: v for k, v in d["flow"].items() if k != "workers"}
    d["input"] = {"path": str(inp.resolve()),
                  "digest": sequence.digest(info.sequence) if info.sequence else file_digest(inp, full=False)}
    d["styles"] = [file_digest(p) for p in style_paths(cfg.style.images)]
    weights = cfg.model.weights or os.environ.get("VIDEOSTYLE_WEIGHTS")
    if weights and Path(weights).is_file():
        st = Path(weights).stat()
        d["weights"] = {"path": str(Path(weights).resolve()), "size": st.st_size, "mtime": st.st_mtime}
    return d
