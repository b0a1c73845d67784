"""The factory: an engine from its frozen spec (``engine.EngineSpec``), the one place where the
engine's name is read, and a video's per-frame policy around an engine, from a render's spec
(``render.spec.RenderSpec``). Takes specs only, never the Config: the builder (``engines``)
translates the Config into them once, and the render jobs hand them here."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from videostyle.engine import Callback, Engine, EngineSpec, Painted, StyleSpec, WarmStart
from videostyle.errors import ConfigError, NO_STYLE, setting
from videostyle.estimate import RenderPlan
from videostyle.fast.engine import FastEngine
from videostyle.gatys.engine import GatysEngine
from videostyle.gatys.specs import GatysSpec
from videostyle.io.images import check_size, fit_size, read_image, resize_image
from videostyle.io.media import VideoInfo
from videostyle.render.policy import PolicySpec, VideoStylizer
from videostyle.render.spec import RenderSpec
from videostyle.report import Reporter
from videostyle.temporal.keyframes import Keys
from videostyle.temporal.regions import FrameRegions, Regions
from videostyle.temporal.regions import style_images as region_style_images

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    import torch

    from videostyle.gatys.features import VGGFeatures
    from videostyle.gatys.stylizer import Stylizer

RANDOM_MODEL_WARNING = f"warning: {setting('model', 'random')} uses untrained VGG weights; the result is not a real stylization"


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


def engine_type(spec: EngineSpec) -> type:
    return ENGINE_TYPES[spec.method]


def random_model_notice(spec: EngineSpec, notice: Callable[[str], None]) -> None:
    if spec.gatys.network.model == "random" and engine_type(spec).optimises:
        notice(RANDOM_MODEL_WARNING)


def load_styles(spec: StyleSpec) -> list[np.ndarray]:
    """The style pictures, read (a render without any is refused)."""
    if not spec.keys.images:
        raise ConfigError(NO_STYLE)
    return [read_image(p, "style image", spec.max_pixels) for p in spec.keys.paths]


def load_region_styles(spec: StyleSpec) -> list[np.ndarray]:
    """The style images --mask MASK=STYLE names, in their slots' order."""
    return [read_image(p, "region style image", spec.max_pixels) for p in region_style_images(spec.masks)]


def build_regions(spec: StyleSpec) -> Regions | None:
    """The render's region masks (None without --mask)."""
    return Regions(spec.masks, spec.mask_feather, spec.mask_follow) if spec.masks else None


def at_start(keys: Keys) -> tuple[list[float], float]:
    """The style blend and strength at time 0 (an image's; a video's until its first keyframe)."""
    sc = keys.at(0.0)
    return [float(w) for w in sc.weights(0.0)], sc.strength_at(0.0)


def new_stylizer(spec: GatysSpec, extractor: VGGFeatures | None = None, device: torch.device | None = None,
                 download: bool = True) -> Stylizer:
    """A stylizer with ``spec``'s network (or ``extractor``), loss and optimiser on its device;
    ``download``: fetch torchvision's weights if the model needs them and they are not cached."""
    import torch

    from videostyle.device import resolve_device
    from videostyle.gatys.features import build_extractor
    from videostyle.gatys.stylizer import Stylizer

    n = spec.network
    if n.threads:
        torch.set_num_threads(n.threads)
    if extractor is None:
        extractor = build_extractor(spec.loss.layers, model=n.model, weights=n.weights, weights_format=n.weights_format,
                                    pooling=n.pooling, seed=spec.optim.seed, download=download)
    return Stylizer(extractor, device=device or resolve_device(n.device), channels_last=n.channels_last,
                    compile=n.compile, **spec.stylizer_settings())


def build_stylizer(spec: EngineSpec, styles: list[np.ndarray], notice: Callable[[str], None],
                   stylizer: Stylizer | None = None, download: bool = True) -> Stylizer:
    """The optimising stylizer set to ``styles``: ``stylizer``'s network when given (configured
    to ``spec``), else a new one."""
    random_model_notice(spec, notice)
    if stylizer is not None:
        stylizer.configure(**spec.gatys.stylizer_settings())
        st = stylizer
    else:
        st = new_stylizer(spec.gatys, download=download)
    weights, strength = at_start(spec.styles.keys)
    st.set_styles(styles, weights)
    st.set_strength(strength)
    st.set_region_styles(load_region_styles(spec.styles))
    st.set_regions([])
    st.notice = notice
    return st


def build_fast(spec: EngineSpec, styles: list[np.ndarray], threads: int = 0, workers: int = 1,
               notice: Callable[[str], None] = lambda m: None) -> FastEngine:
    """The feed-forward engine; ``threads``: each call's CPU threads (0: every core);
    ``workers``: calls that may run at once."""
    from videostyle.fast.network import FastStylizer

    f = spec.fast
    net = FastStylizer(f.device, threads=threads, overlap=f.tile_overlap, tiling=f.tiling, runtime=f.runtime,
                       workers=workers, notice=notice)
    weights, strength = at_start(spec.styles.keys)
    net.set_styles(styles, weights)
    net.region_vecs = [net.style_vector(im) for im in load_region_styles(spec.styles)]
    engine = FastEngine(net, f.strength, spec.styles.preserve_colors)
    engine.strength = strength
    return engine


def build_engine(spec: EngineSpec, styles: list[np.ndarray], notice: Callable[[str], None],
                 stylizer: Stylizer | None = None, ahead: int = 0) -> Engine:
    """The render's engine, set to ``styles`` at time 0; ``stylizer``: a network to reuse;
    ``ahead``: frames the caller runs through the fast network at once, ahead of the frame
    order (each call then gets its share of the cores; 0: every call gets all of them)."""
    kind = engine_type(spec)
    fast = None
    if kind is not GatysEngine:
        fast = build_fast(spec, styles, threads=max(1, (os.cpu_count() or 1) // ahead) if ahead else 0,
                          workers=ahead or 1, notice=notice)
        if kind is FastEngine:
            return fast
    gatys = GatysEngine(build_stylizer(spec, styles, notice, stylizer), spec.gatys.optim.iterations)
    return gatys if fast is None else HybridEngine(gatys, fast, spec.fast.refine_iterations)


def prepare_content(image: np.ndarray, size: int, what: str, upscale: bool = False) -> np.ndarray:
    """``image`` at the stylized size (longer side ``size``; upscaled only with ``upscale``),
    checked for the network."""
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size, upscale)
    check_size(th, tw, what)
    return resize_image(image, (th, tw))


def render_plan(policy: PolicySpec, engine: Engine, frames: int | None, size: tuple[int, int], settle: int = 0,
                resumed: int = 0) -> RenderPlan:
    """What a render with ``engine`` under ``policy`` is about to do, for its estimate."""
    first = engine.refine if isinstance(engine, HybridEngine) else getattr(engine, "iterations", 0)
    return RenderPlan(frames=frames, first_iterations=int(first) if engine.optimises else 0,
                      later_iterations=policy.iterations_later + policy.coarse_later if engine.optimises else 0,
                      size=size, settle_frames=settle, resumed=resumed, device="GPU" if engine.on_gpu else "CPU",
                      early_stop=engine.optimises and policy.stop_loss_ratio > 0)


def runs_ahead(spec: EngineSpec) -> bool:
    """Whether the engine's frames depend on their source alone (the fast engine without
    regions, whose masks may follow each frame's flow), so that they can run ahead."""
    return not engine_type(spec).optimises and not spec.styles.masks


def ahead_workers(spec: RenderSpec, on_gpu: bool = False) -> int:
    """Frames whose fast-engine output is computed at once, ahead of the frame order, on the
    flow stage's threads (0: none, the network runs in order on the main thread: other engines,
    regions, --no-stage-threads). ``flow.workers``, or for 0 up to 4, one per core; each call
    gets an equal share of the cores (single-threaded calls at once beat one call on every core:
    docs/benchmarks.md, the fast engine). With the network on a GPU (``on_gpu``: its calls take
    turns there) the flow is the work: up to 8, half the cores."""
    if not runs_ahead(spec.engine) or not spec.stage_threads:
        return 0
    cores = os.cpu_count() or 1
    return spec.flow_workers or (max(1, min(8, cores // 2)) if on_gpu else max(1, min(4, cores)))


def build_video_stylizer(spec: RenderSpec, styles: list[np.ndarray], reporter: Reporter,
                         stylizer: Stylizer | None = None, info: VideoInfo | None = None,
                         ahead: bool = False, painted: bool = False) -> VideoStylizer:
    """The engines a video render needs (no VGG for --method fast) around one VideoStylizer,
    whose first frame starts from --init (an --init-image at the stylized size); ``info`` (the
    source's frame rate and first timestamp) places style keyframes. ``ahead``: the caller runs
    the fast engine's network ahead on ``ahead_workers`` threads (each call then gets its share
    of the cores; else every call gets all of them). ``painted``: a painted render's policy
    (``RenderSpec.painted``)."""
    engine = build_engine(spec.engine, styles, reporter.notice, stylizer, ahead_workers(spec) if ahead else 0)
    policy = spec.painted if painted else spec.policy_for(info)
    return VideoStylizer(policy, engine, build_regions(spec.engine.styles), reporter.iterate)


def chains_for(spec: RenderSpec, inp: Path, stylizer: Stylizer | None = None) -> tuple[int, Stylizer | None]:
    """How many segments a render of the video ``inp`` optimises together as one batch
    (``render.chains``), and the stylizer it measured the device with (None: none made):
    ``--chains``, or for auto as many as the device gains from (``gatys.throughput``): 1 on a
    CPU, whose convolutions already spread over its cores, and for renders that cannot chain
    (an engine that does not optimise, Ray workers, painted passes, a loop)."""
    if spec.chains > 1 and not engine_type(spec.engine).optimises:
        raise ConfigError(f"{setting('chains', spec.chains)} needs an engine that optimises its frames (gatys or "
                          f"hybrid): the fast engine's frames come from its network, one by one")
    if spec.chains:
        return spec.chains, stylizer
    if not engine_type(spec.engine).optimises or spec.workers > 1 or spec.paintings or spec.loop:
        return 1, stylizer
    from videostyle.device import resolve_device

    device = stylizer.device if stylizer is not None else resolve_device(spec.engine.gatys.network.device)
    if device.type == "cpu":
        return 1, stylizer
    from videostyle.gatys.throughput import auto_chains
    from videostyle.render.output import probe_input

    info = probe_input(inp, spec.output)
    st = stylizer or new_stylizer(spec.engine.gatys)
    hw = fit_size(info.height, info.width, spec.size, spec.upscale)
    return auto_chains(spec, st, hw, spec.span.count(inp, info) or 0), st
