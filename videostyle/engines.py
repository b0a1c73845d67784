"""The builder: the one module that translates the Config, once, into the frozen specs the
rest of the package runs on: an engine's (``engine_spec``: its name, styles, the optimiser's and
the network's settings), a render job's (``render_spec``: the engine's, the per-frame policy's,
the output's, the scan's, the work folder's record), and the flow's. The factory
(``factory``) builds engines and the policy from those specs; the Config-taking helpers here
(``new_stylizer``, ``build_stylizer``, ``load_styles``, ...) are the front ends' shortcuts to it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from videostyle import factory
from videostyle.config import Config, to_dict
from videostyle.engine import EngineSpec, FastSpec, StyleSpec
from videostyle.errors import ConfigError, setting
from videostyle.gatys.specs import GatysSpec, LossSpec, NetworkSpec, OptimSpec
from videostyle.io.images import read_image
from videostyle.io.media import Span
from videostyle.render.output import OutputSpec
from videostyle.render.policy import PAINTED_TEMPORAL_WEIGHT, PolicySpec
from videostyle.render.scan import ScanSpec
from videostyle.render.spec import RenderSpec
from videostyle.temporal.flow import FlowParams
from videostyle.temporal.keyframes import Keys

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    import torch

    from videostyle.gatys.features import VGGFeatures
    from videostyle.gatys.stylizer import Stylizer


def engine_spec(cfg: Config) -> EngineSpec:
    """What the render's engine is built from (``factory.build_engine``)."""
    s, o, r, f, m = cfg.style, cfg.optim, cfg.render, cfg.fast, cfg.model
    loss = LossSpec(tuple(s.content_layers), tuple(s.style_layers),
                    tuple(s.layer_weights) or tuple(1.0 for _ in s.style_layers),
                    s.content_weight, s.style_weight, s.tv_weight)
    optim = OptimSpec(o.optimizer, o.iterations, o.lr, o.init, o.seed, o.pyramid_levels, o.pyramid_scale,
                      o.tolerance, o.tolerance_window, o.fixed_tile, o.tile_margin)
    network = NetworkSpec(m.name, m.weights, m.weights_format, m.pooling, r.device, r.threads, r.channels_last, r.compile)
    gatys = GatysSpec(loss, optim, network, r.precision, r.cuda_graphs, r.memory, s.scale, s.stroke_side,
                      s.preserve_colors)
    styles = StyleSpec(Keys(tuple(s.images), tuple(s.blend), tuple(s.transitions), tuple(s.strength)), tuple(s.masks),
                       s.mask_feather, s.mask_follow, s.preserve_colors, r.max_pixels)
    fast = FastSpec(r.device, f.runtime, f.tiling, f.tile_overlap, f.strength, f.refine_iterations)
    return EngineSpec(cfg.fast.method, styles, gatys, fast)


def uses_vgg(cfg: Config) -> bool:
    """Whether the render optimises on VGG-19 (the engines that optimise: all but the fast one)."""
    return factory.engine_type(engine_spec(cfg)).optimises


def load_styles(cfg: Config) -> list[np.ndarray]:
    return factory.load_styles(engine_spec(cfg).styles)


def first_init(cfg: Config) -> str | np.ndarray:
    """The first frame's (or an image's) start: ``content``, ``noise``, or the --init-image picture."""
    if cfg.optim.init != "image":
        return cfg.optim.init
    if not cfg.optim.init_image:
        raise ConfigError(f"{setting('init', 'image')} needs {setting('init_image', 'PATH')}")
    return read_image(cfg.optim.init_image, "init image", cfg.render.max_pixels)


def stylizer_settings(cfg: Config) -> dict[str, object]:
    """The stylizer's arguments that ``cfg`` sets besides its network and device."""
    return engine_spec(cfg).gatys.stylizer_settings()


def new_stylizer(cfg: Config, extractor: VGGFeatures | None = None, device: torch.device | None = None,
                 download: bool = True) -> Stylizer:
    """A stylizer with ``cfg``'s network (or ``extractor``), loss and optimiser on its device;
    ``download``: fetch torchvision's weights if the model needs them and they are not cached."""
    return factory.new_stylizer(engine_spec(cfg).gatys, extractor, device, download)


def configure(st: Stylizer, cfg: Config) -> Stylizer:
    """``cfg``'s loss, optimiser and precision on ``st``'s network and device (one network,
    several renders: benchmarks, batches)."""
    st.configure(**stylizer_settings(cfg))  # type: ignore[arg-type]
    return st


def build_stylizer(cfg: Config, styles: list[np.ndarray], notice: Callable[[str], None],
                   stylizer: Stylizer | None = None, download: bool = True) -> Stylizer:
    """The optimising stylizer set to ``styles``: ``stylizer``'s network when given (configured
    to ``cfg``), else a new one."""
    return factory.build_stylizer(engine_spec(cfg), styles, notice, stylizer, download)


def flow_params(cfg: Config) -> FlowParams:
    """The flow section's settings that the flow computation takes (same names)."""
    return FlowParams(**{f.name: getattr(cfg.flow, f.name) for f in dataclasses.fields(FlowParams)})


def render_flow_params(cfg: Config) -> FlowParams:
    """The flow a render computes: the flow section's, except for the fast engine's blend
    (``fast.flow``), which needs less precision than the optimiser's warm start."""
    p = flow_params(cfg)
    if uses_vgg(cfg) or cfg.fast.flow == "flow":
        return p
    if cfg.fast.flow == "lite":
        # One flow at half size, judged by colour: the blend only needs to know where the warped
        # previous output can be trusted, not the motion to a pixel; two Farneback iterations a
        # level instead of three keep the same temporal error (docs/benchmarks.md, the fast engine).
        return dataclasses.replace(p, method="farneback", scale=0.5, check="photometric", flow_iterations=2)
    return dataclasses.replace(p, method="dis", scale=0.5 if cfg.fast.flow == "dis-half" else p.scale)


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


def policy(cfg: Config) -> PolicySpec:
    """The per-frame policy's spec, its style keyframes not yet placed on a source
    (``RenderSpec.policy_for``)."""
    warm, weight, fast_blend = dial(cfg)
    o, t = cfg.optim, cfg.temporal
    init = first_init(cfg)
    return PolicySpec(
        flow=render_flow_params(cfg), seed=o.seed, iterations=o.iterations, iterations_later=o.iterations_later,
        init_later=t.init_later, mixed=t.consistency is not None, warm=warm, temporal_weight=weight,
        fast_blend=fast_blend, long_term=tuple(t.frames), scene_cut=t.scene_cut, stop_loss_ratio=o.stop_loss_ratio,
        coarse_later=o.coarse_later,
        first_init=factory.prepare_content(init, 0, "init image") if isinstance(init, np.ndarray) else init,
        settle_seconds=settle_seconds(cfg))


def painted_policy(cfg: Config, spec: PolicySpec | None = None) -> PolicySpec:
    """A painted render's policy (from ``spec``, the plain one, when made already): the styles are
    each pass's (``PassStart``), not keyframes', and a chain from a painting has a temporal term
    even where the settings give none."""
    spec = spec or policy(cfg)
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


def _settings(cfg: Config) -> str:
    """The settings a resume compares (``render.spec.record``), as JSON: encode settings stay in
    (the work folder holds frames encoded with them); options that change neither the frames nor
    their encoding stay out (a resume may change them)."""
    d = to_dict(cfg)
    d["render"] = {k: v for k, v in d["render"].items() if k not in ("preview_every", "stage_threads", "ray_address")}
    d["flow"] = {k: v for k, v in d["flow"].items() if k != "workers"}
    return json.dumps(d, sort_keys=True)


def render_spec(cfg: Config) -> RenderSpec:
    """A render job's spec: the one translation of the Config a render makes."""
    r, s = cfg.render, cfg.style
    plain = policy(cfg)
    return RenderSpec(engine_spec(cfg), plain, output_spec(cfg), scan_spec(cfg), _settings(cfg),
                      painted_policy(cfg, plain) if s.paintings else None, tuple(s.paintings), s.paint_style_weight,
                      cfg.temporal.loop, r.chunk_frames, r.preview_every, r.stage_threads, cfg.flow.workers, r.workers,
                      r.fixed_chains, r.overlap, r.threads, r.ray_address)
