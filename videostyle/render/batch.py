"""Batch renders from a YAML file: ``defaults:`` and ``jobs:``; inputs x styles expand to renders.

A job takes every config key (nested ``optim: {iterations: 50}`` or flat ``iterations: 50``), plus:

* ``input`` / ``inputs``: a path, glob, or list of them (relative to the batch file);
* ``styles``: a list; each entry (a path, or a list of paths to blend) is its own render.
  ``style`` is the plain config key: one render with all its images blended;
* ``output``: a pattern, default ``{input_dir}/stylized/{input_stem}_{style_stem}{ext}`` with
  ``{ext}`` ``.png`` for images and ``.mp4`` for videos; also ``{job}`` and ``{n}``. The default
  writes into a folder of its own, so a rerun's ``clips/*.mp4`` does not take the last run's
  outputs for new inputs;
* ``name``: shown in the summary; ``config``: a YAML config file applied first.
"""

from __future__ import annotations

import functools
import glob
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videostyle import config as C
from videostyle.engines import render_spec
from videostyle.errors import ConfigError, RenderInterrupted, VideostyleError, setting, worded
from videostyle.io import containers
from videostyle.io.images import is_image_path
from videostyle.render.spec import RenderSpec
from videostyle.temporal.keyframes import split

EXISTS = f"output exists (use {setting('overwrite')})"
JOB_KEYS = ("name", "input", "inputs", "styles", "output", "config")
# Beside the inputs, in a folder of their own: an input glob never picks them up.
DEFAULT_OUTPUT = "{input_dir}/stylized/{input_stem}_{style_stem}{ext}"


@dataclass(frozen=True)
class Render:
    job: str
    input: Path
    output: Path
    cfg: C.Config
    styles: tuple[str, ...]

    @functools.cached_property
    def spec(self) -> RenderSpec:
        """The job's render spec (the one translation of its Config)."""
        return render_spec(self.cfg)

    def skip(self, overwrite: bool) -> bool:
        """A batch leaves an existing output alone unless told to overwrite it."""
        return self.output.exists() and not overwrite


@dataclass
class Outcome:
    render: Render
    status: str  # ok | failed | skipped
    frames: int = 0
    seconds: float = 0.0
    text: str = ""  # why it failed or was skipped, its settings marked (``errors.setting``)

    @property
    def error(self) -> str:
        """Why it failed or was skipped, in the API's words."""
        return worded(self.text, flags=False)

    def message(self, flags: bool = False) -> str:
        """Why it failed or was skipped, naming settings as keywords (``flags``: as flags)."""
        return worded(self.text, flags)

    def as_dict(self, flags: bool = False) -> dict[str, Any]:
        return {"job": self.render.job, "input": str(self.render.input), "output": str(self.render.output),
                "styles": list(self.render.styles), "status": self.status, "frames": self.frames,
                "seconds": round(self.seconds, 3), "error": self.message(flags)}


@dataclass
class BatchPlan:
    renders: list[Render] = field(default_factory=list)


def _as_list(value: Any, what: str, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, list):
        return value
    raise ConfigError(f"{where}: {what} must be a path or a list of paths, got {value!r}")


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(str(p)))
    return Path(os.path.normpath(q if q.is_absolute() else base / q))


def _resolve_style(base: Path, spec: str) -> str:
    """A style path relative to the batch file, its keyframe time (@TIME) kept."""
    path, at = split(spec)
    return str(_resolve(base, path)) + (spec[len(path):] if at is not None else "")


def _stem(styles: tuple[str, ...]) -> str:
    return "+".join(Path(split(s)[0]).stem for s in styles) if styles else "styled"


def plan(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> BatchPlan:
    """Read a batch file and expand it into renders (validating every job's config)."""
    bpath = Path(path).resolve()  # (through links: a linked configs folder keeps its paths)
    defaults, jobs = _read(bpath)
    out = BatchPlan()
    globs: list[tuple[str, Path]] = []  # (job, input pattern)
    for i, job in enumerate(jobs):
        where = f"{bpath}: jobs[{i}]"
        if not isinstance(job, dict):
            raise ConfigError(f"{where} must be a mapping")
        merged = {**defaults, **job}
        for sec in C.SECTIONS:  # merge nested sections key by key
            if isinstance(defaults.get(sec), dict) and isinstance(job.get(sec), dict):
                merged[sec] = {**defaults[sec], **job[sec]}
        flat = C.flatten(merged, where, extra=JOB_KEYS)
        name = str(flat.pop("name", f"job{i + 1}"))
        named = f"{where} ({name})"
        inputs = _as_list(flat.pop("input", None), "input", where) + _as_list(flat.pop("inputs", None), "inputs", where)
        styles_key = flat.pop("styles", None)
        if isinstance(styles_key, list) and styles_key and all(isinstance(s, dict) for s in styles_key):
            flat.update(C.keyframe_list(styles_key, f"{where}: "))  # style keyframes: one render
            styles_key = None
        pattern = str(flat.pop("output", DEFAULT_OUTPUT))
        cfg = _job_config(flat, bpath.parent, where, overrides)
        files = _input_files(inputs, bpath.parent, named, lambda p: globs.append((name, p)))
        style_sets = _style_sets(styles_key, "style.images" in flat, cfg, bpath.parent, named)
        for f in files:
            for styles in style_sets:
                target = _output_path(pattern, f, styles, name, len(out.renders), named)
                rcfg = C.apply(cfg, {"style.images": list(styles)})
                out.renders.append(Render(name, f, _resolve(bpath.parent, target), rcfg, styles))
    check_outputs(out.renders, globs, bpath)
    return out


def _read(bpath: Path) -> tuple[dict[str, Any], list[Any]]:
    """The batch file's ``defaults`` and ``jobs``."""
    data = C.read_yaml(bpath)
    for key in data:
        if key not in ("defaults", "jobs"):
            raise ConfigError(f"{bpath}: unknown top-level key {key}" + C.suggest(str(key), ["defaults", "jobs"]))
    defaults = data.get("defaults") or {}
    jobs = data.get("jobs")
    if not isinstance(defaults, dict):
        raise ConfigError(f"{bpath}: defaults must be a mapping of settings")
    if not isinstance(jobs, list) or not jobs:
        raise ConfigError(f"{bpath}: jobs must be a non-empty list")
    return defaults, jobs


def _job_config(flat: dict[str, Any], base: Path, where: str, overrides: Mapping[str, Any] | None) -> C.Config:
    """A job's settings: its config file, then its own keys (paths relative to the batch file),
    then the command line's."""
    cfg = C.Config()
    if "config" in flat:
        cfg = C.load(_resolve(base, flat.pop("config")), cfg)
    if "style.images" in flat:
        flat["style.images"] = [_resolve_style(base, s) for s in _as_list(flat["style.images"], "style", where)]
    if "style.masks" in flat:
        flat["style.masks"] = ["=".join(str(_resolve(base, part)) for part in str(m).split("=", 1))
                               for m in _as_list(flat["style.masks"], "mask", where)]
    for key in ("optim.init_image", "model.weights"):
        if flat.get(key):
            flat[key] = str(_resolve(base, flat[key]))
    cfg = C.apply(cfg, flat, where)
    return C.apply(cfg, overrides, "command line") if overrides else cfg


def _input_files(inputs: list[Any], base: Path, where: str, on_glob: Callable[[Path], None]) -> list[Path]:
    """The files a job's inputs name, globs expanded (each glob also goes to ``on_glob``)."""
    if not inputs:
        raise ConfigError(f"{where}: no input; add input: PATH")
    files: list[Path] = []
    for item in inputs:
        p = _resolve(base, str(item))
        if not glob.has_magic(str(p)):
            files.append(p)
            continue
        on_glob(p)
        matches = sorted(Path(m) for m in glob.glob(str(p)))
        if not matches:
            raise ConfigError(f"{where}: input pattern {item} matches no file")
        files += matches
    return files


def _style_sets(styles_key: Any, has_style: bool, cfg: C.Config, base: Path, where: str) -> list[tuple[str, ...]]:
    """One render per entry of ``styles`` (an entry may be a list: blended), else one with ``style``."""
    if styles_key is None:
        sets = [tuple(cfg.style.images)]
    else:
        if cfg.style.images and has_style:
            raise ConfigError(f"{where}: use either style (one blended render) or styles (one render each)")
        sets = [tuple(_resolve_style(base, str(x)) for x in (s if isinstance(s, list) else [s]))
                for s in _as_list(styles_key, "styles", where)]
    if any(not s for s in sets):
        raise ConfigError(f"{where}: no style; add style: PATH or styles: [...]")
    return sets


def _output_path(pattern: str, f: Path, styles: tuple[str, ...], job: str, n: int, where: str) -> str:
    ext = ".png" if is_image_path(f) else containers.DEFAULT_EXTENSION
    try:
        return pattern.format(input_stem=f.stem, input_dir=str(f.parent), style_stem=_stem(styles), job=job, n=n,
                              ext=ext)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{where}: bad output pattern {pattern!r} ({exc}); use "
                          "{input_stem}, {input_dir}, {style_stem}, {job}, {n}, {ext}") from None


def check_outputs(renders: list[Render], globs: list[tuple[str, Path]], where: Path) -> None:
    """Refuse, before anything renders, a plan whose outputs would clobber each other or its
    inputs, or be taken for new inputs by the next run of the same batch."""
    first: dict[Path, Render] = {}
    inputs = {Path(os.path.abspath(r.input)): r for r in renders}
    for r in renders:
        o = Path(os.path.abspath(r.output))
        if o in first:
            a = first[o]
            raise ConfigError(f"{where}: jobs {a.job} ({a.input.name}) and {r.job} ({r.input.name}) both write {o}; "
                              "give one of them an output pattern of its own (e.g. with {style_stem} or {job})")
        first[o] = r
        if o in inputs:
            raise ConfigError(f"{where}: job {r.job} writes {o}, which job {inputs[o].job} reads as its input; "
                              "write the outputs to another folder")
        for job, pattern in globs:
            if o.match(str(pattern)):
                raise ConfigError(f"{where}: job {r.job}'s output {o} matches job {job}'s input pattern {pattern}, so a "
                                  "rerun would stylize it again; write the outputs to another folder (the default "
                                  "output: is {input_dir}/stylized/...)")


def attempt(r: Render, render_one: Callable[[Render], tuple[int, float]]) -> Outcome:
    """Run one render; any error becomes a failed outcome (Ctrl-C still stops the batch)."""
    t0 = time.perf_counter()
    try:
        frames, _ = render_one(r)
        return Outcome(r, "ok", frames, time.perf_counter() - t0)
    except RenderInterrupted:
        raise  # Ctrl-C / SIGTERM stop the whole batch, not just this render
    except VideostyleError as err:
        return Outcome(r, "failed", seconds=time.perf_counter() - t0, text=err.text)
    except Exception as err:  # noqa: BLE001 - one broken job must not stop the batch
        return Outcome(r, "failed", seconds=time.perf_counter() - t0, text=f"{type(err).__name__}: {err}")


def run(
    batch: BatchPlan,
    render_one: Callable[[Render], tuple[int, float]],
    *,
    overwrite: bool = False,
    fail_fast: bool = False,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
    rendered: Callable[[int], Outcome | None] = lambda i: None,
) -> list[Outcome]:
    """Run renders in order; a failing render is recorded and the rest still run. ``rendered(i)``:
    render ``i``'s outcome where it was rendered another way (with others: ``render.shared``)."""
    outcomes: list[Outcome] = []
    for i, r in enumerate(batch.renders):
        o = rendered(i)
        if o is None:
            o = Outcome(r, "skipped", text=EXISTS) if r.skip(overwrite) else attempt(r, render_one)
        outcomes.append(o)
        on_outcome(o)
        if fail_fast and o.status == "failed":
            break
    return outcomes
