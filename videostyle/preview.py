"""``videostyle preview``: one frame (or a short strip) under each combination of settings, laid
out as a labelled contact sheet, so that a setting is chosen by eye before the render.

A variation is a set of config overrides (``--vary style-weight=0.3,1,3 --vary consistency=0.5,1``
gives the six combinations). A single frame goes through the engine as an image render does; a
strip (``frames`` > 1) is a real video render of that many frames from the chosen time, written
as PNG frames into a temporary folder, so temporal settings and flicker show as they will.

A front end, as the command line and the studio are: it renders through the public API
(``vs.settings``, ``vs.stylize``, ``vs.render``), and its errors name its command's options.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from videostyle import api
from videostyle.errors import ConfigError, InputError
from videostyle.io import durable
from videostyle.io.images import fit_size, is_image_path, read_image
from videostyle.io.media import Span, probe, read_frames
from videostyle.io.sequence import is_sequence
from videostyle.report import Reporter, STIterate
from videostyle.temporal.keyframes import parse_time

# A Gatys preview runs at this size and this many iterations unless told (the command line's
# flags, the studio's own): a setting is judged by eye, in seconds to a minute.
PREVIEW_SIZE, PREVIEW_ITERATIONS = 256, 100
DEFAULTS = {"size": PREVIEW_SIZE, "iterations": PREVIEW_ITERATIONS, "settle": 0.0}  # (settings, by flat name)
TILE = 256  # the longest side of a tile on the sheet (a strip's frames: STRIP_TILE)
STRIP_TILE = 160
LABEL = 22  # pixels of the label band above each row


@dataclass(frozen=True)
class Variation:
    """One combination: its label ("style-weight=0.3 consistency=1") and its settings (flat names)."""

    label: str
    overrides: tuple[tuple[str, Any], ...]


def parse_vary(specs: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """``["style-weight=0.3,1,3"]`` -> ``[("style-weight", "style_weight", ["0.3", "1", "3"])]``;
    an unknown setting fails with a "did you mean"."""
    out = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        key = name.strip().lstrip("-").replace("-", "_")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not vals:
            raise ConfigError(f"--vary {spec!r}: write SETTING=V1,V2,... (e.g. --vary style-weight=0.3,1,3)")
        try:
            api.settings(**{key: vals[0]})
        except ConfigError as err:
            raise ConfigError(f"--vary {name}: {err.text.removeprefix('videostyle: ')}") from None
        out.append((name.strip().lstrip("-"), key, vals))
    return out


def variations(cfg: api.Config, vary: Sequence[tuple[str, str, list[str]]]) -> list[tuple[Variation, api.Config]]:
    """Every combination of the varied values, each with its settings (checked as the command line's are)."""
    if not vary:
        return [(Variation("as given", ()), cfg)]
    out = []
    for combo in itertools.product(*[[(name, key, v) for v in vals] for name, key, vals in vary]):
        overrides = tuple((key, v) for _, key, v in combo)
        label = " ".join(f"{name}={v}" for name, _, v in combo)
        try:
            varied = api.settings(cfg, **dict(overrides))
        except ConfigError as err:
            raise ConfigError(f"--vary {label}: {err.text.removeprefix('videostyle: ')}") from None
        out.append((Variation(label, overrides), varied))
    return out


def at_seconds(inp: Path, at: str) -> float:
    """``--at``: seconds, or ``f:N`` (a frame number of the source)."""
    t = parse_time(at)
    if t is None:
        raise ConfigError(f"--at {at!r}: give seconds (3.5) or a frame (f:84)")
    return t.resolve(float(probe(inp).fps)) if t.frame is not None else t.resolve(0.0)


def preview(inp: Path, out: Path, cfg: api.Config, combos: list[tuple[Variation, api.Config]], *, at: float = 0.0,
            frames: int = 1, reporter: Reporter | None = None) -> Path:
    """Render each combination at ``at`` seconds (``frames`` of them) and write the sheet to ``out``."""
    reporter = reporter or Reporter()
    image = is_image_path(inp) and not is_sequence(inp)
    if image and frames > 1:
        raise ConfigError("--frames renders a strip of a video; an image previews one frame")
    if not image:
        info = probe(inp, fps=cfg.render.fps, fill_gaps=cfg.render.fill_gaps, max_pixels=cfg.render.max_pixels)
        if info.duration is not None and at >= info.duration:
            raise ConfigError(f"--at {at:g} is past the end of {inp} ({info.duration:.2f} s)")
    rows = []
    for k, (var, vcfg) in enumerate(combos, 1):
        reporter.notice(f"preview {k}/{len(combos)}: {var.label}")
        if image:
            tiles = [_one(read_image(inp, "input image", cfg.render.max_pixels), vcfg, reporter)]
        elif frames == 1:
            fr = next(iter(Span(at, 0.0, 1).frames(inp, info=info)), None)
            if fr is None:
                raise InputError(f"input {inp} has no frame at {at:g} s")
            tiles = [_one(fr.image, vcfg, reporter)]
        else:
            tiles = _strip(inp, vcfg, at, frames, reporter)
        rows.append((var.label, tiles))
    sheet = contact_sheet(rows, STRIP_TILE if frames > 1 else TILE,
                          [f"{at + i / float(info.fps):.2f} s" for i in range(frames)] if not image else None)
    durable.write_bytes(out, _png(sheet))
    return out


class _Within(Reporter):
    """One tile's render inside the sheet's: its notes and iterations go on, its begin, frame and
    end do not (the sheet is one job to the bars)."""

    def __init__(self, outer: Reporter) -> None:
        self.outer = outer

    def notice(self, message: str) -> None:
        self.outer.notice(message)

    def iterate(self, it: STIterate) -> None:
        self.outer.iterate(it)


def _one(content_full: np.ndarray, cfg: api.Config, reporter: Reporter) -> np.ndarray:
    return np.asarray(api.stylize(content_full, config=cfg, reporter=_Within(reporter)))


def _strip(inp: Path, cfg: api.Config, at: float, frames: int, reporter: Reporter) -> list[np.ndarray]:
    cfg = api.settings(cfg, start=at, duration=0.0, max_frames=frames)
    with tempfile.TemporaryDirectory(prefix="videostyle-preview-") as tmp:
        pattern = Path(tmp) / "%04d.png"
        api.render(inp, pattern, config=cfg, reporter=reporter, restart=True, overwrite=True)
        return [f.image for f in read_frames(pattern)]


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], tile: int,
                  columns: list[str] | None = None) -> np.ndarray:
    """Rows of tiles (each fitted into ``tile`` px), a label band above each, and the columns'
    headings (a strip's times) on top."""
    fit: Callable[[np.ndarray], np.ndarray] = lambda im: _fit(im, tile)  # noqa: E731
    rows = [(label, [fit(t) for t in tiles]) for label, tiles in rows]
    th = max(t.shape[0] for _, tiles in rows for t in tiles)
    tw = max(t.shape[1] for _, tiles in rows for t in tiles)
    ncol = max(len(tiles) for _, tiles in rows)
    head = LABEL if columns and ncol > 1 else 0
    sheet = np.full((head + len(rows) * (th + LABEL), ncol * tw, 3), 255, np.uint8)
    if head:
        for c, text in enumerate(columns[:ncol]):  # type: ignore[index]
            _text(sheet, text, c * tw + 4, head - 6)
    for r, (label, tiles) in enumerate(rows):
        y = head + r * (th + LABEL)
        _text(sheet, label, 4, y + LABEL - 6)
        for c, t in enumerate(tiles):
            sheet[y + LABEL:y + LABEL + t.shape[0], c * tw:c * tw + t.shape[1]] = t
    return sheet


def _fit(im: np.ndarray, side: int) -> np.ndarray:
    h, w = fit_size(im.shape[0], im.shape[1], side)
    return im if (h, w) == im.shape[:2] else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)


def _text(img: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def _png(img: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError("cannot encode the contact sheet")
    return data.tobytes()

