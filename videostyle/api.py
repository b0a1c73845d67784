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
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

import numpy as np

from videostyle import config as C
from videostyle.errors import ConfigError, VideostyleError
from videostyle.estimate import Estimate, Estimating
from videostyle.events import EventReporter
from videostyle.io.limits import MAX_PIXELS
from videostyle.metrics import TemporalReport
from videostyle.render.batch import BatchPlan, Outcome
from videostyle.render.stream import StyledFrame
from videostyle.report import RenderResult, Reporter

if TYPE_CHECKING:
    from PIL.Image import Image

    from videostyle.render.spec import RenderSpec

    from videostyle.gatys.stylizer import Stylizer

Config = C.Config  # the settings (``settings`` makes one)

__all__ = ["BatchPlan", "Config", "Engine", "Estimate", "Outcome", "RenderResult", "StyledFrame", "TemporalReport",
           "VideostyleError", "estimate", "evaluate", "frames", "optimises", "plan_batch", "propose_keyframes", "render",
           "run_batch", "settings", "stylize"]

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
        cfg = C.load(Path(base))
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
           overwrite: bool = False, restart: bool = False, stream: BinaryIO | None = None, fmt: str | None = None,
           resumable: bool = True, config: C.Config | str | os.PathLike[str] | None = None,
           **values: Any) -> RenderResult:
    """Render ``input`` (a video, an image sequence or an image) into ``output`` (default: beside
    the input, named after it and the style). A video render keeps its finished frames in a work
    folder beside the output until it ends: called again after an interrupt, it resumes
    (``restart=True`` starts over). ``reporter``: a Reporter for the typed events instead of
    ``on_event``'s records.

    ``stream``: a binary file (a pipe, such as standard output) that the video is written into
    instead of ``output``, in container ``fmt`` (``matroska``, ``mpegts`` or ``nut``: one a pipe
    can carry). ``resumable=False``: no work folder, the frames go into the output as they are
    made and an interrupted render starts over (for an input that will not be there again, such
    as standard input kept in a temporary file); a ``stream`` implies it."""
    from videostyle.engines import render_spec

    spec = render_spec(_config(config, style, values))
    return _render(Path(input), output, spec, reporter or _reporter(on_event), engine.stylizer if engine else None,
                   overwrite=overwrite, restart=restart, stream=stream, fmt=fmt, resumable=resumable)


def _render(inp: Path, output: str | os.PathLike[str] | None, spec: RenderSpec, rep: Reporter,
            stylizer: Stylizer | None, *, overwrite: bool, restart: bool, stream: BinaryIO | None = None,
            fmt: str | None = None, resumable: bool = True) -> RenderResult:
    """``render`` once its settings are translated (a batch's jobs come with their spec)."""
    from videostyle.io.images import is_image_path
    from videostyle.io.sequence import is_sequence
    from videostyle.render.output import default_output

    image = is_image_path(inp) and not is_sequence(inp)
    styles = list(spec.engine.styles.keys.images)
    if stream is not None or not resumable:
        from videostyle.render.pipeline import render_pipe

        if stream is not None and not fmt:
            raise ConfigError("a stream needs its container: fmt=\"matroska\" (or mpegts, nut)")
        target = None if stream is not None else (Path(output) if output is not None else
                                                  default_output(inp, styles, image))
        return render_pipe(inp, target, spec, rep, stream=stream, fmt=fmt, overwrite=overwrite, stylizer=stylizer)
    out = Path(output) if output is not None else default_output(inp, styles, image)
    if image:
        from videostyle.render.pipeline import render_image

        return render_image(inp, out, spec, rep, stylizer, overwrite=overwrite)
    if spec.workers > 1:
        from videostyle.render.parallel import render_parallel

        return render_parallel(inp, out, spec, rep, restart=restart, overwrite=overwrite)
    from videostyle.factory import chains_for

    k, stylizer = chains_for(spec, inp, stylizer)
    if k > 1:
        from videostyle.render.chains import render_chains

        return render_chains(inp, out, spec, k, rep, restart=restart, overwrite=overwrite, stylizer=stylizer)
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


def plan_batch(jobs: str | os.PathLike[str], **values: Any) -> BatchPlan:
    """The renders a YAML batch file (``jobs``) asks for, each with its input, output, styles and
    settings, ``values`` over every job's (as on the command line); nothing is rendered."""
    from videostyle.render import batch

    return batch.plan(jobs, C.flatten(values, "videostyle") if values else None)


def run_batch(plan: BatchPlan, *, overwrite: bool = False, fail_fast: bool = False, restart: bool = False,
              reporter: Callable[[], Reporter] | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Render a batch's renders in order (an existing output skipped unless ``overwrite``), one
    failure recorded and the rest still run (``fail_fast``: stop at it). Jobs with ``workers`` above 1
    run their segments on Ray together; videos with ``chains`` above 1 and the same settings share
    one batch on the device. ``reporter``: makes each render's Reporter;
    ``on_outcome``: called with each render's Outcome as it ends."""
    from videostyle.io.images import is_image_path
    from videostyle.render import batch
    from videostyle.render.shared import run_shared, shares

    make = reporter or (lambda: _Notices())
    done = on_outcome or (lambda o: None)

    def render_one(r: batch.Render) -> tuple[int, float]:
        r.output.parent.mkdir(parents=True, exist_ok=True)
        res = _render(r.input, r.output, r.spec, make(), None, overwrite=True, restart=restart)
        return res.frames, res.seconds

    if any(r.spec.workers > 1 and not is_image_path(r.input) for r in plan.renders):
        from videostyle.render.parallel import run_batch as on_ray

        address = next((r.spec.ray_address for r in plan.renders if r.spec.ray_address), None)
        return on_ray(plan.renders, render_one, overwrite=overwrite, fail_fast=fail_fast, restart=restart,
                      address=address, make_reporter=make, on_outcome=done)
    if any(shares(r) for r in plan.renders):
        return run_shared(plan.renders, render_one, overwrite=overwrite, fail_fast=fail_fast, restart=restart,
                          make_reporter=make, on_outcome=done)
    return batch.run(plan, render_one, overwrite=overwrite, fail_fast=fail_fast, on_outcome=done)


def evaluate(stylized: str | os.PathLike[str], source: str | os.PathLike[str], *, gaps: Sequence[int] = (1,),
             config: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> TemporalReport:
    """How steady a stylized video is against its source: the temporal error at each frame gap
    (the flow from the settings), and with style images in the settings the mean style and
    content losses per frame (``losses``; left empty, with ``note`` saying why, when the network's
    weights are not on this machine). ``start``/``duration``/``max_frames`` pick the span the
    stylized video was rendered from."""
    from videostyle.engines import build_stylizer, flow_params, load_styles, span
    from videostyle.errors import WeightsError
    from videostyle.metrics import frame_losses, temporal_error

    cfg = settings(config, **values)
    if any(g < 1 for g in gaps):
        raise ConfigError(f"gaps {', '.join(map(str, gaps))}: gaps must be positive integers")
    for p in (stylized, source):
        if not Path(p).exists():
            raise VideostyleError(f"input {p} does not exist")
    rep = temporal_error(stylized, source, gaps=sorted(set(gaps)), params=flow_params(cfg), span=span(cfg))
    if cfg.style.images:
        try:
            st = build_stylizer(cfg, load_styles(cfg), notice=lambda m: None, download=False)
            rep.losses = frame_losses(stylized, source, st, span(cfg))
        except WeightsError:
            rep.note = "style/content losses need the VGG-19 weights (see README: Weights)"
    return rep


def propose_keyframes(input: str | os.PathLike[str], folder: str | os.PathLike[str], *, threshold: float = 2.0,
                      every: int = 0, overwrite: bool = False) -> list[tuple[int, Path]]:
    """The frames of a clip worth painting over: the first, each scene cut, and each frame where
    the flow since the last proposal has revealed or changed ``threshold`` frames' worth of pixels
    (``every``: at least one every so many frames, 0 for no such rule), written into ``folder``
    at the source's size as ``NNNN.png`` by frame number; returns (frame, file) pairs. Paint over
    them and render with ``paint=["f:N=FILE", ...]``."""
    from videostyle.engines import scan_spec
    from videostyle.render.keyframes import propose_frames

    if threshold <= 0 or every < 0:
        raise ConfigError("threshold must be above 0 and every 0 or more")
    return propose_frames(Path(input), Path(folder), threshold, every, overwrite, scan_spec(C.Config()))


def optimises(config: C.Config | str | os.PathLike[str] | None = None, **values: Any) -> bool:
    """Whether the settings' engine optimises (it has iterations to show and to estimate): the
    Gatys and hybrid engines, not the fast one."""
    from videostyle.engines import uses_vgg

    return uses_vgg(settings(config, **values))


# -- helpers ---------------------------------------------------------------------------------


class _Notices(Reporter):
    """Without ``on_event``: a call's notices go to the ``videostyle`` logger (a warning as a
    warning, which Python shows by default; the rest as info), the other events nowhere."""

    def notice(self, message: str) -> None:
        import logging

        from videostyle.errors import worded

        log = logging.getLogger("videostyle")
        message = worded(message, flags=False)
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
    kind = type(picture).__module__
    if kind.startswith("PIL."):
        return np.asarray(typing.cast(Any, picture).convert("RGB")).copy()
    if kind.startswith("torch"):
        t = typing.cast(Any, picture).detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise ConfigError(f"{what}: a tensor must be (3, H, W) or (1, 3, H, W), not {tuple(typing.cast(Any, picture).shape)}")
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
