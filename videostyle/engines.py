"""What a render runs, built from its Config in one place: the style images, the optimising
stylizer, the feed-forward engine, the first frame's start, flow parameters, and the content
frame at the stylized size."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from videostyle.config import Config
from videostyle.errors import ConfigError
from videostyle.flow import FlowParams
from videostyle.images import check_size, fit_size, preserve_colors, read_image, resize_image
from videostyle.keyframes import schedule, style_paths
from videostyle.regions import FrameRegions, Regions, composite
from videostyle.regions import style_images as region_style_images

if TYPE_CHECKING:  # the Gatys engine (torch) is imported only when a render uses it
    from videostyle.stylize import Stylizer

RANDOM_MODEL_WARNING = "warning: --model random uses untrained VGG weights; the result is not a real stylization"


def random_model_notice(cfg: Config, notice: Callable[[str], None]) -> None:
    if cfg.model.name == "random" and cfg.fast.method != "fast":
        notice(RANDOM_MODEL_WARNING)


def load_styles(cfg: Config) -> list[np.ndarray]:
    if not cfg.style.images:
        raise ConfigError("no style image given; pass --style IMAGE")
    return [read_image(p, "style image") for p in style_paths(cfg.style.images)]


def first_init(cfg: Config) -> str | np.ndarray:
    """The first frame's (or an image's) start: ``content``, ``noise``, or the --init-image picture."""
    if cfg.optim.init != "image":
        return cfg.optim.init
    if not cfg.optim.init_image:
        raise ConfigError("--init image needs --init-image PATH")
    return read_image(cfg.optim.init_image, "init image")


def build_stylizer(cfg: Config, styles: list[np.ndarray], notice: Callable[[str], None],
                   stylizer: Stylizer | None = None) -> Stylizer:
    """The optimising stylizer set to ``styles``: ``stylizer``'s network when given (configured
    to ``cfg``), else a new one."""
    random_model_notice(cfg, notice)
    if stylizer is not None:
        stylizer.configure(cfg)
    from videostyle.stylize import Stylizer

    st = stylizer or Stylizer.from_config(cfg)
    weights, strength = at_start(cfg)
    st.set_styles(styles, weights)
    st.set_strength(strength)
    st.set_region_styles(load_region_styles(cfg))
    st.set_regions([])
    st.notice = notice
    return st


def load_region_styles(cfg: Config) -> list[np.ndarray]:
    """The style images --mask MASK=STYLE names, in their slots' order."""
    return [read_image(p, "region style image") for p in region_style_images(cfg.style.masks)]


def build_regions(cfg: Config) -> Regions | None:
    """The render's region masks (None without --mask)."""
    s = cfg.style
    return Regions(s.masks, s.mask_feather, s.mask_follow) if s.masks else None


def build_fast(cfg: Config, styles: list[np.ndarray], threads: int = 0, workers: int = 1,
               notice: Callable[[str], None] = lambda m: None) -> Any:
    """The feed-forward engine for --method fast/hybrid (None for gatys); ``threads``: each
    call's CPU threads (0: every core); ``workers``: calls that may run at once."""
    if cfg.fast.method == "gatys":
        return None
    from videostyle.fast import FastStylizer

    fast = FastStylizer(cfg.render.device, threads=threads, overlap=cfg.fast.tile_overlap, tiling=cfg.fast.tiling,
                        runtime=cfg.fast.runtime, workers=workers, notice=notice)
    fast.set_styles(styles, at_start(cfg)[0])
    fast.region_vecs = [fast.style_vector(im) for im in load_region_styles(cfg)]
    return fast


def at_start(cfg: Config) -> tuple[list[float], float]:
    """The style blend and strength at time 0 (an image's; a video's until its first keyframe)."""
    s = cfg.style
    sc = schedule(s.images, s.blend, s.transitions, s.strength, 0.0)
    return [float(w) for w in sc.weights(0.0)], sc.strength_at(0.0)


def fast_image(cfg: Config, fast: Any, content: np.ndarray, strength: float | None = None,
               regions: FrameRegions | None = None, vec: np.ndarray | None = None) -> np.ndarray:
    """The fast engine's frame at ``strength`` (default: --fast-strength times --style-strength
    at time 0, up to 1) with the style vector ``vec`` (default: the engine's current blend);
    with ``regions``, each region's own output (the content where a mask keeps it), blended by
    the feathered masks."""
    if strength is None:
        strength = min(1.0, cfg.fast.strength * at_start(cfg)[1])
    if regions is None:
        out = fast.stylize(content, strength, vec)
    else:
        layers = [(fast.stylize(content, strength, None if slot is None else fast.region_vecs[slot]), m)
                  for m, slot in regions.styled if m.any()]
        if regions.keep is not None:
            layers.append((content.astype(np.float32) / 255.0, regions.keep))
        out = composite(layers)
    if cfg.style.preserve_colors:
        out = preserve_colors(out, content)
    return out


def flow_params(cfg: Config) -> FlowParams:
    """The flow section's settings that the flow computation takes (same names)."""
    return FlowParams(**{f.name: getattr(cfg.flow, f.name) for f in dataclasses.fields(FlowParams)})


def render_flow_params(cfg: Config) -> FlowParams:
    """The flow a render computes: the flow section's, except for the fast engine's blend
    (``fast.flow``), which needs less precision than the optimiser's warm start."""
    p = flow_params(cfg)
    if cfg.fast.method != "fast" or cfg.fast.flow == "flow":
        return p
    if cfg.fast.flow == "lite":
        # One flow at half size, judged by colour: the blend only needs to know where the warped
        # previous output can be trusted, not the motion to a pixel (bench_fast.py --tables stages).
        # Two Farneback iterations a level instead of three: 12 against 16 ms a frame pair at
        # 640x360 on one core, with the same temporal error (0.00114 / 0.00110 by the eval and
        # DIS judges, against 0.00113 / 0.00110, 120 frames of the bunny clip).
        return dataclasses.replace(p, method="farneback", scale=0.5, check="photometric", flow_iterations=2)
    return dataclasses.replace(p, method="dis", scale=0.5 if cfg.fast.flow == "dis-half" else p.scale)


def prepare_content(image: np.ndarray, size: int, what: str, upscale: bool = False) -> np.ndarray:
    """``image`` at the stylized size (longer side ``size``; upscaled only with ``upscale``),
    checked for the network."""
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size, upscale)
    check_size(th, tw, what)
    return resize_image(image, (th, tw))
