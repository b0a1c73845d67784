"""Command line: the only module that prints, owns progress bars and exits."""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videostyle import __version__
from videostyle import config as C
from videostyle.errors import ConfigError, VideostyleError
from videostyle.keyframes import split
from videostyle.report import STIterate


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line with exit code 2 (no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:
        hint = ""
        if message.startswith("unrecognized arguments:"):
            bad = next((a for a in message.split(":", 1)[1].split() if a.startswith("--")), None)
            if bad:
                known = [s for a in self._all_actions() for s in a.option_strings if s.startswith("--")]
                hint = C.suggest(bad.split("=")[0], known)
        self.exit(2, f"videostyle: error: {message}{hint} (see {self.prog} --help)\n")

    def _all_actions(self) -> list[argparse.Action]:
        actions = list(self._actions)
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    actions += sp._actions
        return actions


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config field, generated from the dataclasses (the single source of defaults)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for fi in C.FIELDS.values():
        g = groups.setdefault(fi.section, p.add_argument_group(f"{fi.section} options"))
        flag = "--" + fi.flag.replace("_", "-")
        default = fi.default if fi.default != () else "none"
        helptext = f"{fi.help} (default: {default}; config: {fi.path})"
        origin = typing.get_origin(fi.type)
        kw: dict[str, Any] = {"dest": f"cfg::{fi.path}", "default": argparse.SUPPRESS, "help": helptext}
        if fi.type is bool:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif origin is tuple:
            g.add_argument(flag, action="append", metavar="V", **kw)
        else:
            if fi.choices:
                kw["metavar"] = "{" + ",".join(map(str, fi.choices)) + "}"
            g.add_argument(flag, **kw)


def overrides_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """Explicitly given config flags as ``{section.key: value}``."""
    out: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if not key.startswith("cfg::"):
            continue
        path = key[5:]
        fi = C.FIELDS[path]
        if typing.get_origin(fi.type) is tuple and path != "style.images":  # style paths may hold commas
            value = [v for item in value for v in str(item).split(",") if v.strip()]
        out[path] = value
    return out


def resolve_config(ns: argparse.Namespace) -> C.Config:
    cfg = C.Config()
    if getattr(ns, "config", None):
        cfg = C.load(ns.config, cfg)
    return C.apply(cfg, overrides_from_args(ns), "command line")


# ---------------------------------------------------------------- progress


class TqdmReporter:
    """Progress bars: frames (s/frame, ETA) and, at -v, iterations within a frame."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.frames_bar: Any = None
        self.iter_bar: Any = None
        self.level = -1

    def notice(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"videostyle: {message}", file=sys.stderr)

    def begin(self, total: int | None, what: str) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        self.frames_bar = tqdm(total=total, desc=Path(what).name[:30], unit="frame", file=sys.stderr,
                               dynamic_ncols=True, leave=True)

    def iterate(self, it: STIterate) -> None:
        from tqdm import tqdm

        if self.quiet or not self.verbose:
            return
        if self.iter_bar is None or it.i == 1:
            if self.iter_bar is not None:
                self.iter_bar.close()
            lvl = f" L{it.level + 1}/{it.levels}" if it.levels > 1 else ""
            self.iter_bar = tqdm(total=it.iterations, desc=f"  iter {it.size[1]}x{it.size[0]}{lvl}", unit="it",
                                 file=sys.stderr, leave=False, dynamic_ncols=True)
        self.iter_bar.update(1)
        self.iter_bar.set_postfix(loss=f"{it.loss:.4g}", refresh=False)

    def frame(self, done: Any) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is None:
            return
        if done.restarted:
            self.notice(f"frame {done.index}: scene cut, restarted from the content with full iterations")
        self.frames_bar.update(1)
        if done.resumed or done.loss != done.loss:  # resumed / parallel / fast frames: no optimiser stats
            return
        post = {"it": done.iterations, "loss": f"{done.loss:.4g}"}
        if done.seconds:
            post["s/frame"] = f"{done.seconds:.2f}"
        self.frames_bar.set_postfix(post, refresh=True)

    def end(self) -> None:
        if self.iter_bar is not None:
            self.iter_bar.close()
            self.iter_bar = None
        if self.frames_bar is not None:
            self.frames_bar.close()
            self.frames_bar = None


# ---------------------------------------------------------------- commands


def default_output(inp: Path, cfg: C.Config, image: bool) -> Path:
    style = Path(split(cfg.style.images[0])[0]).stem if cfg.style.images else "styled"
    ext = ".png" if image else ".mp4"
    return inp.with_name(f"{inp.stem}_{style}{ext}")


def _pipe_output(ns: argparse.Namespace) -> str | None:
    """The container for ``-o -`` (None when the output is a file); checks -f."""
    from videostyle.mux import PIPE_FORMATS

    if ns.output != "-":
        if ns.format:
            raise ConfigError("-f names the container of -o - (standard output); a file's extension names its own")
        return None
    if not ns.format:
        raise ConfigError("-o - writes to standard output: name the container with -f matroska (or webm, mpegts, nut)")
    if ns.format not in PIPE_FORMATS:
        raise ConfigError(f"-f {ns.format} needs a seekable output file, not a pipe: use -f matroska")
    if sys.stdout.isatty():
        raise ConfigError("-o -: standard output is a terminal; pipe it into a player or a file")
    return str(ns.format)


def _spool_stdin(folder: Path) -> Path:
    """Standard input copied into ``folder`` in 1 MiB pieces (the decoder, the audio carrier and
    the frame count each read the input, which a pipe allows once)."""
    import shutil

    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("input -: standard input is a terminal; pipe a video in (e.g. ffmpeg ... -f matroska - |)")
    path = folder / "stdin"
    with open(path, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
    if path.stat().st_size == 0:
        raise VideostyleError("input -: standard input was empty; pipe a video in")
    return path


def cmd_render(ns: argparse.Namespace) -> int:
    from videostyle.images import is_image_path
    from videostyle.pipeline import render_image
    from videostyle.report import Reporter

    cfg = resolve_config(ns)
    fmt = _pipe_output(ns)
    if ns.input == "-" or fmt is not None:
        return _render_pipe(ns, cfg, fmt)
    inp = Path(ns.input)
    image = is_image_path(inp)
    out = Path(ns.output) if ns.output else default_output(inp, cfg, image)
    reporter = TqdmReporter(ns.quiet, ns.verbose)
    if image:
        res = render_image(inp, out, cfg, typing.cast(Reporter, reporter), overwrite=ns.overwrite)
    elif cfg.render.workers > 1:
        from videostyle.parallel import render_parallel

        res = render_parallel(inp, out, cfg, typing.cast(Reporter, reporter), restart=ns.restart,
                              overwrite=ns.overwrite)
    else:
        from videostyle.pipeline import render_video

        res = render_video(inp, out, cfg, typing.cast(Reporter, reporter), restart=ns.restart,
                           overwrite=ns.overwrite)
    if not ns.quiet:
        print(f"wrote {res.output} ({res.frames} frame{'s' if res.frames != 1 else ''}, {res.seconds:.1f} s)")
    return 0


def _render_pipe(ns: argparse.Namespace, cfg: C.Config, fmt: str | None) -> int:
    """``render`` with standard input and/or standard output as the video: no work folder, no
    resume; progress and messages on standard error only."""
    import os
    import tempfile

    from videostyle.pipeline import render_pipe
    from videostyle.report import Reporter

    reporter = TqdmReporter(ns.quiet, ns.verbose)
    if ns.output is None and ns.input == "-":
        raise ConfigError("input -: give the output with -o FILE, or -o - -f matroska for standard output")
    reporter.notice("note: a pipe has no work folder: an interrupted render starts over (no resume)")
    with tempfile.TemporaryDirectory(prefix="videostyle-") as tmp:
        if ns.input == "-":
            if not ns.quiet:
                reporter.notice("reading the video from standard input")
            inp = _spool_stdin(Path(tmp))
        else:
            inp = Path(ns.input)
        try:
            res = render_pipe(inp, None if fmt else Path(ns.output), cfg, typing.cast(Reporter, reporter),
                              stream=sys.stdout.buffer if fmt else None, fmt=fmt, overwrite=ns.overwrite)
        except VideostyleError as err:
            if ns.input == "-":
                raise type(err)(str(err).replace(str(inp), "standard input"), err.exit_code) from None
            raise
        finally:
            if fmt:
                try:
                    sys.stdout.flush()
                except BrokenPipeError:
                    # Python would complain at exit while flushing a closed pipe: point it at nothing.
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if not ns.quiet:
        where = "standard output" if fmt else res.output
        print(f"wrote {where} ({res.frames} frame{'s' if res.frames != 1 else ''}, {res.seconds:.1f} s)",
              file=sys.stderr)
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    from videostyle.errors import WeightsError
    from videostyle.metrics import frame_losses, temporal_error
    from videostyle.engines import flow_params
    from videostyle.output import span

    cfg = resolve_config(ns)
    gaps = sorted({int(g) for g in str(ns.gaps).split(",") if g.strip()}) if ns.gaps else [1]
    if any(g < 1 for g in gaps):
        raise ConfigError(f"--gaps {ns.gaps}: gaps must be positive integers")
    for p in (ns.stylized, ns.source):
        if not Path(p).exists():
            raise VideostyleError(f"input {p} does not exist")
    rep = temporal_error(ns.stylized, ns.source, gaps=gaps, params=flow_params(cfg), span=span(cfg))
    note = ""
    if cfg.style.images:
        from videostyle.features import build_extractor
        from videostyle.engines import at_start
        from videostyle.images import read_image
        from videostyle.keyframes import style_paths
        from videostyle.stylize import Stylizer

        try:
            layers = set(cfg.style.content_layers) | set(cfg.style.style_layers)
            ext = build_extractor(layers, model=cfg.model.name, weights=cfg.model.weights,
                                  weights_format=cfg.model.weights_format, download=False)
            st = Stylizer.from_config(cfg, extractor=ext)
            weights, strength = at_start(cfg)
            st.set_styles([read_image(p, "style image") for p in style_paths(cfg.style.images)], weights)
            st.set_strength(strength)
            rep.losses = frame_losses(ns.stylized, ns.source, st, span(cfg))
        except WeightsError:
            note = "style/content losses need the VGG-19 weights (see README: Weights)"
    if ns.json:
        print(json.dumps(rep.as_dict() if ns.per_frame else {k: v for k, v in rep.as_dict().items() if k != "per_frame"},
                         indent=1))
        return 0
    print(f"{Path(ns.stylized).name}: {rep.frames} frames at {rep.size[1]}x{rep.size[0]}, "
          f"reliable fraction {rep.reliable:.3f}")
    for g in rep.gaps:
        label = "temporal error" if g == 1 else f"long-term error (gap {g})"
        print(f"  {label:28s} {rep.error[g]:.6f}")
    for k, v in rep.losses.items():
        print(f"  mean {k} loss per frame{'':7s} {v:.6g}")
    if note:
        print(f"  ({note})")
    if rep.source_left:
        print("  (the source has frames after the stylized video's last: if it was rendered with --start, "
              "--duration or --max-frames, pass the same here, else frames are compared with the wrong ones)")
    return 0


def cmd_batch(ns: argparse.Namespace) -> int:
    import json

    from videostyle import batch
    from videostyle.images import is_image_path
    from videostyle.pipeline import render_image, render_video
    from videostyle.report import Reporter

    overrides = overrides_from_args(ns)
    plan = batch.plan(ns.jobs, overrides)
    if ns.dry_run:
        for i, r in enumerate(plan.renders, 1):
            state = "exists, skip" if r.skip(ns.overwrite) else "render"
            print(f"{i:3d}. [{r.job}] {r.input} + {', '.join(Path(s).name for s in r.styles)} -> {r.output} ({state})")
        print(f"{len(plan.renders)} render(s)")
        return 0

    def render_one(r: batch.Render) -> tuple[int, float]:
        reporter = typing.cast(Reporter, TqdmReporter(ns.quiet, ns.verbose))
        r.output.parent.mkdir(parents=True, exist_ok=True)
        if is_image_path(r.input):
            res = render_image(r.input, r.output, r.cfg, reporter)
        else:
            res = render_video(r.input, r.output, r.cfg, reporter, restart=ns.restart)
        return res.frames, res.seconds

    def on_outcome(o: batch.Outcome) -> None:
        if o.status == "failed":
            print(f"videostyle: error: [{o.render.job}] {o.render.input}: {o.error}", file=sys.stderr)

    if any(r.cfg.render.workers > 1 and not is_image_path(r.input) for r in plan.renders):
        from videostyle.parallel import run_batch

        address = next((r.cfg.render.ray_address for r in plan.renders if r.cfg.render.ray_address), None)
        outcomes = run_batch(plan.renders, render_one, overwrite=ns.overwrite, fail_fast=ns.fail_fast,
                             restart=ns.restart, address=address,
                             make_reporter=lambda: typing.cast(Reporter, TqdmReporter(ns.quiet, ns.verbose)),
                             on_outcome=on_outcome)
    else:
        outcomes = batch.run(plan, render_one, overwrite=ns.overwrite, fail_fast=ns.fail_fast,
                             on_outcome=on_outcome)
    rows = [("job", "status", "frames", "seconds", "output")]
    rows += [(o.render.job, o.status, str(o.frames), f"{o.seconds:.1f}", str(o.render.output)) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    failed = sum(o.status == "failed" for o in outcomes)
    not_run = len(plan.renders) - len(outcomes)
    print(f"{sum(o.status == 'ok' for o in outcomes)} ok, {failed} failed, "
          f"{sum(o.status == 'skipped' for o in outcomes)} skipped" + (f", {not_run} not run" if not_run else ""))
    if ns.report:
        report = {"batch": str(ns.jobs), "renders": [o.as_dict() for o in outcomes],
                  "failed": failed, "not_run": not_run}
        tmp = Path(ns.report).with_name(f".{Path(ns.report).name}.tmp")
        try:
            tmp.write_text(json.dumps(report, indent=1))
            tmp.replace(ns.report)
        except OSError as exc:
            raise VideostyleError(f"cannot write report {ns.report}: {exc.strerror or exc}") from None
    return 1 if failed or not_run else 0


def cmd_config_show(ns: argparse.Namespace) -> int:
    cfg = resolve_config(ns)
    sys.stdout.write(C.dump_yaml(cfg))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="videostyle", description="Paint images and videos in the style of an artwork.")
    p.add_argument("--version", action="version", version=f"videostyle {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("render", help="stylize an image or a video",
                       description="Stylize an image or a video. Flags override --config.")
    r.add_argument("input", help="input image or video; - reads a video from standard input")
    r.add_argument("-o", "--output", help="output file (default: INPUT_STYLE.png/.mp4 next to the input); - writes "
                   "the video to standard output (with -f)")
    r.add_argument("-f", "--format", choices=("matroska", "webm", "mpegts", "nut", "mp4", "mov"),
                   help="container of -o - (a pipe): matroska, webm, mpegts or nut")
    r.add_argument("--config", help="YAML config file (flags win over it)")
    r.add_argument("--restart", action="store_true", help="discard an interrupted render's progress and start over")
    r.add_argument("-y", "--overwrite", action="store_true", help="replace the output if it exists (default: refuse)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.add_argument("-v", "--verbose", action="store_true", help="show iterations within each frame")
    add_config_flags(r)
    r.set_defaults(func=cmd_render)

    e = sub.add_parser("eval", help="measure flicker (temporal error) of a stylized video",
                       description="Temporal error of STYLIZED against the motion of SOURCE (flow and masks from "
                                   "the source), at gap 1 and the long-term gaps given. For a render of a span, "
                                   "pass its --start/--duration (or --max-frames): they choose the source's frames.")
    e.add_argument("stylized", help="stylized video")
    e.add_argument("--source", required=True, help="the source video it was made from")
    e.add_argument("--gaps", default="1,4", help="frame gaps to measure, e.g. 1,2,4 (default: 1,4)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--per-frame", action="store_true", help="with --json: include per-frame errors")
    e.add_argument("--config", help="YAML config (flow settings, style/model for the losses)")
    add_config_flags(e)
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("batch", help="run the renders of a YAML batch file",
                       description="Run a batch file's jobs in order (defaults: + jobs:). Flags here override "
                                   "every job.")
    b.add_argument("jobs", help="batch YAML file")
    b.add_argument("--dry-run", action="store_true", help="list the expanded renders and stop")
    b.add_argument("--fail-fast", action="store_true", help="stop at the first failed render")
    b.add_argument("--overwrite", action="store_true", help="re-render outputs that already exist")
    b.add_argument("--report", help="write a JSON report of the outcomes here")
    b.add_argument("--restart", action="store_true", help="discard interrupted renders' progress")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.add_argument("-v", "--verbose", action="store_true", help="show iterations within each frame")
    add_config_flags(b)
    b.set_defaults(func=cmd_batch)

    c = sub.add_parser("config", help="show the resolved configuration")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    show = csub.add_parser("show", help="print the resolved config as YAML")
    show.add_argument("--config", help="YAML config file")
    add_config_flags(show)
    show.set_defaults(func=cmd_config_show)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from videostyle import interrupt

    parser = build_parser()
    ns = parser.parse_args(argv)
    interrupt.install()  # SIGTERM / SIGHUP stop a render the way Ctrl-C does
    try:
        return int(ns.func(ns))
    except VideostyleError as err:
        print(f"videostyle: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as exc:
        print(f"videostyle: interrupted{interrupt.by(exc)}", file=sys.stderr)
        return interrupt.exit_code(exc)
    except MemoryError:
        print("videostyle: error: out of memory; lower --size", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
