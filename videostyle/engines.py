"""What a render runs, built from its Config in one place: the style images, the optimising
stylizer, the feed-forward engine, the first frame's start, flow parameters, and the content
frame at the stylized size."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from videostyle.config import Config
from videostyle.errors import ConfigError
from videostyle.flow import FlowParams
from videostyle.images import read_image, resize_image
from videostyle.stylize import Stylizer, check_size, fit_size, preserve_colors

RANDOM_MODEL_WARNING = "warning: --model random uses untrained VGG weights; the result is not a real stylization"


def random_model_notice(cfg: Config, notice: Callable[[str], None]) -> None:
    if cfg.model.name == "random" and cfg.fast.method != "fast":
        notice(RANDOM_MODEL_WARNING)


def load_styles(cfg: Config) -> list[np.ndarray]:
    if not cfg.style.images:
        raise ConfigError("no style image given; pass --style IMAGE")
    return [read_image(p, "style image") for p in cfg.style.images]


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
    st = stylizer or Stylizer.from_config(cfg)
    st.set_styles(styles, cfg.style.blend)
    st.notice = notice
    return st


def build_fast(cfg: Config, styles: list[np.ndarray]) -> Any:
    """The feed-forward engine for --method fast/hybrid (None for gatys)."""
    if cfg.fast.method == "gatys":
        return None
    from videostyle.fast import FastStylizer

    dev = "cpu" if cfg.render.device == "cpu" else "auto"
    fast = FastStylizer(dev, overlap=cfg.fast.tile_overlap, tiling=cfg.fast.tiling)
    fast.set_styles(styles, cfg.style.blend)
    return fast


def fast_image(cfg: Config, fast: Any, content: np.ndarray) -> np.ndarray:
    out = fast.stylize(content, cfg.fast.strength)
    if cfg.style.preserve_colors:
        out = preserve_colors(out, content)
    return out


def flow_params(cfg: Config) -> FlowParams:
    """The flow section's settings that the flow computation takes (same names)."""
    return FlowParams(**{f.name: getattr(cfg.flow, f.name) for f in dataclasses.fields(FlowParams)})


def prepare_content(image: np.ndarray, size: int, what: str, upscale: bool = False) -> np.ndarray:
    """``image`` at the stylized size (longer side ``size``; upscaled only with ``upscale``),
    checked for the network."""
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size, upscale)
    check_size(th, tw, what)
    return resize_image(image, (th, tw))
