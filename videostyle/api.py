"""videostyle's public API: stylize a picture, render a video into a file, or stream a video's
stylized frames, with any setting of the config as a keyword argument (the YAML keys' flat
names: ``size``, ``iterations``, ``method``, ``style_weight`` ...; unknown ones fail with a
"did you mean").

    import videostyle as vs
    img = vs.stylize("photo.jpg", style="starry.jpg", size=256, iterations=100)     # a PIL image
    vs.render("clip.mp4", "out.mp4", style=["a.jpg", "b.jpg"], method="fast", on_event=print)
    for frame in vs.frames("clip.mp4", style="starry.jpg", method="fast"):
        frame.image                                                                   # RGB uint8

Pictures (content and styles) are accepted as paths, PIL images, numpy arrays (H, W, 3) or
torch tensors (3, H, W), uint8 or floats in [0, 1]. ``engine=vs.Engine(...)`` keeps the loaded
network across calls. ``on_event`` receives each event of a render as a plain dict, the records
``--progress json`` writes, in the same order. Ctrl-C (a notebook's interrupt) stops a call with
its engines closed; a video render keeps its finished frames and resumes when called again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from videostyle import config as C
from videostyle.errors import ConfigError, VideostyleError
from videostyle.estimate import Estimate, Estimating
from videostyle.events import EventReporter
from videostyle.io.limits import MAX_PIXELS
from videostyle.render.stream import StyledFrame
from videostyle.report import RenderResult, Reporter

if TYPE_CHECKING:
    from PIL.Image import Image

    from videostyle.gatys.stylizer import Stylizer

Config = C.Config  # the settings (``settings`` makes one)

__all__ = ["Config", "Engine", "Estimate", "RenderResult", "StyledFrame", "VideostyleError", "estimate", "frames", "render",
           "settings", "stylize"]

# A picture as the API takes it: a file's path, a PIL image, an array or a tensor.
Picture = Union[str, os.PathLike, "Image", np.ndarray, Any]
Styles = Union[Picture, Sequence[Picture]]
OnEvent = Callable[[dict[str, Any]], None]


def settings(base: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> C.Config:
    """The Config that ``values`` (flat YAML names: ``size=256``) make over ``base`` (a Config, a
    YAML file's path, or the defaults); an unknown name fails with a "did you mean"."""
    if base is None:
        cfg = C.Config()
    elif isinstance(base, C.Config):
        cfg = base
    else:
        cfg = C.load(base)
    return C.apply(cfg, C.flatten(values, "videostyle"), "videostyle") if values else cfg


class Engine:
    """A loaded feature network (VGG-19 on its device, with the settings' model and device),
    reused by every call it is passed to: ``vs.stylize(img, style=..., engine=engine)``. With
    ``method="fast"`` there is nothing to keep: the fast engine's network is small and loads with
    each call."""

    def __init__(self, config: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> None:
        from videostyle.engines import new_stylizer, uses_vgg

        self.config = settings(config, **values)
        self.stylizer: Stylizer | None = new_stylizer(self.config) if uses_vgg(self.config) else None

    def __repr__(self) -> str:
        where = str(self.stylizer.device) if self.stylizer is not None else "none loaded"
        return f"videostyle.Engine(model={self.config.model.name!r}, device={where!r})"


def stylize(content: Picture, style: Styles = None, *, engine: Engine | None = None,
            on_event: OnEvent | None = None, reporter: Reporter | None = None, init: Picture | None = None,
            config: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> Image:
    """``content`` painted in ``style`` (one picture or several, blended by ``style_blend``), as
    a PIL image at the stylized size (``size``: its longer side), or the content's with
    ``output_size="source"``. ``init``: a picture to start the optimisation from (an earlier
    result, to go on from it), resized to the stylized size; default: the ``init`` setting.
    ``reporter``: a Reporter for the typed events instead of ``on_event``'s records."""
    from PIL import Image

    from videostyle.render.pipeline import stylize_image

    from videostyle.engines import render_spec
    from videostyle.factory import prepare_content
    from videostyle.io.images import resize_image

    cfg = _config(config, style, values)
    picture = as_array(content, "content", cfg.render.max_pixels)
    start = None
    if init is not None:
        shape = prepare_content(picture, cfg.optim.size, "content", cfg.optim.upscale).shape[:2]
        start = resize_image(as_array(init, "init"), shape)
    still = stylize_image(picture, render_spec(cfg), reporter or _reporter(on_event), what="content",
                          stylizer=engine.stylizer if engine else None, init=start)
    return Image.fromarray(still.image)


def render(input: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, style: Styles = None, *,
           engine: Engine | None = None, on_event: OnEvent | None = None, reporter: Reporter | None = None,
           overwrite: bool = False, restart: bool = False, config: C.Config | str | os.PathLike[str] | None = None,
           **values: Any) -> RenderResult:
    """Render ``input`` (a video, an image sequence or an image) into ``output`` (default: beside
    the input, named after it and the style). A video render keeps its finished frames in a work
    folder beside the output until it ends: called again after an interrupt, it resumes
    (``restart=True`` starts over). ``reporter``: a Reporter for the typed events instead of
    ``on_event``'s records."""
    from videostyle.engines import render_spec
    from videostyle.io.images import is_image_path
    from videostyle.io.sequence import is_sequence
    from videostyle.render.output import default_output

    inp = Path(input)
    cfg = _config(config, style, values)
    image = is_image_path(inp) and not is_sequence(inp)
    out = Path(output) if output is not None else default_output(inp, list(cfg.style.images), image)
    rep = reporter or _reporter(on_event)
    stylizer = engine.stylizer if engine else None
    spec = render_spec(cfg)
    if image:
        from videostyle.render.pipeline import render_image

        return render_image(inp, out, spec, rep, stylizer, overwrite=overwrite)
    if spec.workers > 1:
        from videostyle.render.parallel import render_parallel

        return render_parallel(inp, out, spec, rep, restart=restart, overwrite=overwrite)
    from videostyle.render.pipeline import render_video

    return render_video(inp, out, spec, rep, restart=restart, overwrite=overwrite, stylizer=stylizer)


def frames(input: str | os.PathLike[str], style: Styles = None, *, engine: Engine | None = None,
           on_event: OnEvent | None = None, config: C.Config | str | os.PathLike[str] | None = None,
           **values: Any) -> Iterator[StyledFrame]:
    """``input``'s frames stylized, in order, each as it is made (a StyledFrame: ``image``,
    ``index``, ``time``, ``to_pil()``). Nothing is written; leaving the loop early stops the
    render and closes its engines."""
    from videostyle.engines import render_spec
    from videostyle.render.stream import stream_frames

    spec = render_spec(_config(config, style, values))
    yield from stream_frames(Path(input), spec, _reporter(on_event), stylizer=engine.stylizer if engine else None)


def estimate(input: str | os.PathLike[str], style: Styles = None, *,
             config: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> Estimate | None:
    """What a render of the video ``input`` would take on this machine, as its first estimate says
    it (``Estimate``: ``total_seconds``, ``line()``), from a few measured iterations of its first
    frame; nothing is written. None for the fast engine (it has no iterations to measure)."""
    from videostyle.engines import render_spec
    from videostyle.render.pipeline import estimate_video

    return estimate_video(Path(input), render_spec(_config(config, style, values)))


# -- helpers ---------------------------------------------------------------------------------


class _Notices(Reporter):
    """Without ``on_event``: a call's notices go to the ``videostyle`` logger (a warning as a
    warning, which Python shows by default; the rest as info), the other events nowhere."""

    def notice(self, message: str) -> None:
        import logging

        log = logging.getLogger("videostyle")
        if message.startswith("warning") or "diverged" in message:
            log.warning(message.removeprefix("warning: "))
        else:
            log.info(message)


def _reporter(on_event: OnEvent | None) -> Reporter:
    return Estimating(EventReporter(on_event)) if on_event is not None else _Notices()


def _config(base: C.Config | str | os.PathLike[str] | None, style: Styles, values: dict[str, Any]) -> C.Config:
    """The call's Config: ``values`` over ``base``, with the styles as paths (a picture given as
    such is kept as a PNG file, so that the render reads it as it reads any style)."""
    if "style" in values or "styles" in values:
        raise ConfigError("give the style as the style argument: style=\"starry.jpg\" or style=[a, b]")
    if style is not None:
        values = {**values, "style": _style_paths(style)}
    cfg = settings(base, **values)
    if not cfg.style.images and base is None:
        raise ConfigError("no style given: pass style=\"starry.jpg\" (a path, a PIL image, an array or a tensor)")
    return cfg


def _style_paths(style: Styles) -> list[str]:
    """The styles as paths: a path as given; a picture written once, losslessly, under a name
    made from its pixels in the cache folder, so that the same picture is the same style (a
    render's work folder, which checks its settings on a resume, sees the same path)."""
    import hashlib

    from videostyle.device import cache_dir
    from videostyle.io.images import write_image

    items = list(style) if isinstance(style, (list, tuple)) else [style]
    paths = []
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            paths.append(os.fspath(item))
            continue
        a = as_array(item, f"style {k + 1}")
        digest = hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).hexdigest()[:20]
        path = cache_dir() / "styles" / f"{digest}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, a)
        paths.append(str(path))
    return paths


def as_array(picture: Picture, what: str = "picture", max_pixels: int | None = None) -> np.ndarray:
    """``picture`` as (H, W, 3) RGB uint8: a file's path (read, its size checked from its header
    against ``max_pixels``, default the setting's), a PIL image, a numpy array or a torch tensor;
    (H, W) grey and (H, W, 4) with alpha are made RGB, floats taken as [0, 1]."""
    if isinstance(picture, (str, os.PathLike)):
        from videostyle.io.images import read_image

        return read_image(picture, what, max_pixels or MAX_PIXELS)
    if type(picture).__module__.startswith("PIL."):
        return np.asarray(picture.convert("RGB")).copy()
    if type(picture).__module__.startswith("torch"):
        t = picture.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise ConfigError(f"{what}: a tensor must be (3, H, W) or (1, 3, H, W), not {tuple(picture.shape)}")
        picture = t.permute(1, 2, 0).numpy()
    if not isinstance(picture, np.ndarray):
        raise ConfigError(f"{what}: expected a path, a PIL image, a numpy array or a tensor, not "
                          f"{type(picture).__name__}")
    a = picture
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ConfigError(f"{what}: an array must be (H, W), (H, W, 3) or (H, W, 4), not {picture.shape}")
    a = a[..., :3] if a.shape[2] == 4 else (np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ConfigError(f"{what}: an array must be uint8 or floats in [0, 1], not {a.dtype}")
        a = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)
