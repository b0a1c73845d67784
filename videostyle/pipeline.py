"""Render jobs: read inputs, drive the stylizer, write outputs. Reports through a Reporter."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videostyle.config import Config
from videostyle.errors import ConfigError, InputError, OutputError
from videostyle.images import is_image_path, read_image, write_image
from videostyle.stylize import STIterate, Stylizer, check_size, fit_size, resize, to_numpy, to_tensor, to_uint8


@dataclass(frozen=True)
class FrameDone:
    """A finished frame, as reported to progress sinks."""

    index: int  # 0-based frame index in the render
    total: int | None  # frames expected (None when unknown)
    iterations: int  # optimiser iterations used
    seconds: float  # wall time of this frame's stylization
    loss: float  # final total loss
    restarted: bool = False  # scene cut: restarted from content with full iterations
    resumed: bool = False  # taken from an earlier interrupted run


class Reporter:
    """Progress sink; the default ignores everything. The CLI subclasses it with tqdm bars."""

    def notice(self, message: str) -> None:
        """A one-line warning or note for the user."""

    def begin(self, total: int | None, what: str) -> None:
        """A render of ``total`` frames (None when unknown) starts."""

    def iterate(self, it: STIterate) -> None:
        """One optimiser iteration finished."""

    def frame(self, done: FrameDone) -> None:
        """One frame finished."""

    def end(self) -> None:
        """The render finished or stopped."""


@dataclass(frozen=True)
class RenderResult:
    output: Path
    frames: int
    seconds: float
    iterations: list[int]


def check_output(inp: Path, out: Path) -> None:
    if out.resolve() == inp.resolve():
        raise OutputError(f"output {out} is the input file; choose another output path with -o")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist; create it or choose another -o")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable; choose another -o")
    if out.is_dir():
        raise OutputError(f"output {out} is a directory; give a file name with -o")


def random_model_notice(cfg: Config, reporter: Reporter) -> None:
    if cfg.model.name == "random":
        reporter.notice("warning: --model random uses untrained VGG weights; the result is not a real stylization")


def load_styles(cfg: Config) -> list[np.ndarray]:
    if not cfg.style.images:
        raise ConfigError("no style image given; pass --style IMAGE")
    return [read_image(p, "style image") for p in cfg.style.images]


def build_stylizer(cfg: Config, reporter: Reporter, stylizer: Stylizer | None = None) -> Stylizer:
    styles = load_styles(cfg)  # before the (slow) model load, so bad paths fail fast
    random_model_notice(cfg, reporter)
    st = stylizer or Stylizer(cfg)
    st.set_styles(styles, cfg.style.blend)
    return st


def prepare_content(image: np.ndarray, size: int, what: str) -> np.ndarray:
    h, w = image.shape[:2]
    th, tw = fit_size(h, w, size)
    check_size(th, tw, what)
    if (th, tw) == (h, w):
        return image
    return to_uint8(to_numpy(resize(to_tensor(image), (th, tw))))


def render_image(inp: str | os.PathLike[str], out: str | os.PathLike[str], cfg: Config,
                 reporter: Reporter | None = None, stylizer: Stylizer | None = None) -> RenderResult:
    """Stylize one image file into ``out``."""
    reporter = reporter or Reporter()
    inp, out = Path(inp), Path(out)
    content_full = read_image(inp, "input image")
    if not is_image_path(out):
        raise OutputError(f"output {out}: an image input needs an image output (.png or .jpg)")
    check_output(inp, out)
    content = prepare_content(content_full, cfg.optim.size, f"input image {inp}")
    st = build_stylizer(cfg, reporter, stylizer)
    init: str | np.ndarray = cfg.optim.init
    if cfg.optim.init == "image":
        if not cfg.optim.init_image:
            raise ConfigError("--init image needs --init-image PATH")
        init = read_image(cfg.optim.init_image, "init image")
    reporter.begin(1, str(inp))
    t0 = time.perf_counter()
    res = st.stylize(content, init, callback=reporter.iterate)
    if not np.isfinite(res.loss):
        raise InputError(f"optimisation of {inp} diverged (loss {res.loss}); lower the style weight or use --optimizer adam")
    image = to_uint8(res.image)
    if cfg.encode.output_size == "source" and image.shape[:2] != content_full.shape[:2]:
        image = to_uint8(to_numpy(resize(to_tensor(image), content_full.shape[:2])))
    write_image(out, image)
    secs = time.perf_counter() - t0
    reporter.frame(FrameDone(0, 1, res.iterations, secs, res.loss))
    reporter.end()
    return RenderResult(out, 1, secs, [res.iterations])
