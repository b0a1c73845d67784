"""The commands: render (a file or a pipe), eval, batch and config show."""

from __future__ import annotations

import argparse
import shlex
import sys
import typing
from pathlib import Path

from videostyle.io.sequence import is_sequence
from videostyle import config as C
from videostyle.errors import ConfigError, InputError, OutputError, VideostyleError


from videostyle.cli.flags import overrides_from_args, resolve_config
from videostyle.cli.progress import make_reporter
from videostyle.io.containers import DEFAULT_EXTENSION
from videostyle.estimate import duration


def _pipe_output(ns: argparse.Namespace) -> str | None:
    """The container for ``-o -`` (None when the output is a file); checks -f."""
    from videostyle.io.containers import PIPE_FORMATS, listed

    if ns.output != "-":
        if ns.format:
            raise ConfigError("-f names the container of -o - (standard output); a file's extension names its own")
        return None
    if not ns.format:
        raise ConfigError(f"-o - writes to standard output: name the container with -f {PIPE_FORMATS[0]} "
                          f"(or {listed(PIPE_FORMATS[1:])})")
    if ns.format not in PIPE_FORMATS:
        raise ConfigError(f"-f {ns.format} needs a seekable output file, not a pipe: use -f {PIPE_FORMATS[0]}")
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


def _reporter(ns: argparse.Namespace) -> typing.Any:
    return make_reporter(ns.quiet, ns.verbose, getattr(ns, "progress", "bar"), getattr(ns, "progress_file", None))


def cmd_render(ns: argparse.Namespace) -> int:
    from videostyle import api
    from videostyle.report import Reporter

    cfg = resolve_config(ns)
    fmt = _pipe_output(ns)
    if ns.input == "-" or fmt is not None:
        return _render_pipe(ns, cfg, fmt)
    res = api.render(Path(ns.input), Path(ns.output) if ns.output else None, config=cfg, reporter=typing.cast(Reporter, _reporter(ns)), restart=ns.restart,
                     overwrite=ns.overwrite)
    if not ns.quiet:
        print(f"wrote {res.output} ({res.frames} frame{'s' if res.frames != 1 else ''}, {res.seconds:.1f} s)")
    return 0


def _render_pipe(ns: argparse.Namespace, cfg: C.Config, fmt: str | None) -> int:
    """``render`` with standard input and/or standard output as the video: no work folder, no
    resume; progress and messages on standard error only."""
    import os
    import tempfile

    from videostyle import api
    from videostyle.report import Reporter

    reporter = _reporter(ns)
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
            res = api.render(inp, None if fmt else Path(ns.output), config=cfg, reporter=typing.cast(Reporter, reporter),
                             stream=sys.stdout.buffer if fmt else None, fmt=fmt, resumable=False,
                             overwrite=ns.overwrite)
        except VideostyleError as err:
            if ns.input == "-":
                raise type(err)(err.text.replace(str(inp), "standard input"), err.exit_code) from None
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

    from videostyle import api

    cfg = resolve_config(ns)
    try:
        gaps = sorted({int(g) for g in str(ns.gaps).split(",") if g.strip()}) if ns.gaps else [1]
    except ValueError:
        raise ConfigError(f"--gaps {ns.gaps}: gaps must be positive integers, e.g. 1,2,4") from None
    if any(g < 1 for g in gaps):
        raise ConfigError(f"--gaps {ns.gaps}: gaps must be positive integers")
    rep = api.evaluate(ns.stylized, ns.source, gaps=gaps, config=cfg)
    note = rep.note
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

    from videostyle import api

    plan = api.plan_batch(ns.jobs, **overrides_from_args(ns))
    if ns.dry_run:
        for i, r in enumerate(plan.renders, 1):
            state = "exists, skip" if r.skip(ns.overwrite) else "render"
            print(f"{i:3d}. [{r.job}] {r.input} + {', '.join(Path(s).name for s in r.styles)} -> {r.output} ({state})")
        print(f"{len(plan.renders)} render(s)")
        return 0

    def on_outcome(o: api.Outcome) -> None:
        if o.status == "failed":
            print(f"videostyle: error: [{o.render.job}] {o.render.input}: {o.message(flags=True)}", file=sys.stderr)

    outcomes = api.run_batch(plan, overwrite=ns.overwrite, fail_fast=ns.fail_fast, restart=ns.restart,
                             reporter=lambda: _reporter(ns), on_outcome=on_outcome)
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
        report = {"batch": str(ns.jobs), "renders": [o.as_dict(flags=True) for o in outcomes],
                  "failed": failed, "not_run": not_run}
        from videostyle.io import durable

        try:
            durable.write_text(ns.report, json.dumps(report, indent=1))
        except OSError as exc:
            raise VideostyleError(f"cannot write report {ns.report}: {exc.strerror or exc}") from None
    return 1 if failed or not_run else 0


def cmd_config_show(ns: argparse.Namespace) -> int:
    cfg = resolve_config(ns)
    sys.stdout.write(C.dump_yaml(cfg))
    return 0


def cmd_preview(ns: argparse.Namespace) -> int:
    from videostyle.io.images import is_image_path
    from videostyle import preview as P

    base = C.apply(C.Config(), C.flatten(P.DEFAULTS), "preview defaults")
    if ns.config:
        base = C.load(ns.config, base)
    cfg = C.apply(base, overrides_from_args(ns), "command line")
    inp = Path(ns.input)
    if not inp.exists() and not is_sequence(inp):
        raise InputError(f"input {inp} does not exist")
    combos = P.variations(cfg, P.parse_vary(ns.vary or []))
    image = is_image_path(inp) and not is_sequence(inp)
    at = 0.0 if image else P.at_seconds(inp, ns.at)
    out = Path(ns.output) if ns.output else inp.with_name(f"{inp.stem.replace('%', '')}_preview.png")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"output {out}: the contact sheet is a .png")
    if out.exists() and not ns.overwrite:
        raise OutputError(f"output {out} exists; pass --overwrite (or -y) to replace it")
    P.preview(inp, out, cfg, combos, at=at, frames=ns.frames, reporter=_reporter(ns))
    if not ns.quiet:
        print(f"wrote {out} ({len(combos)} combination{'s' if len(combos) != 1 else ''}"
              f"{f', {ns.frames} frames each' if ns.frames > 1 else ''})")
    return 0


def cmd_studio(ns: argparse.Namespace) -> int:
    """The local web studio: serve until Ctrl-C or SIGTERM, then stop the renders as the render
    command does (their frames kept, resumable)."""
    import secrets
    import socket
    import webbrowser

    try:
        import uvicorn

        from videostyle.studio.app import create_app
    except ImportError:
        raise ConfigError("the studio needs its extra: pip install -e '.[studio]'") from None
    from videostyle.studio.jobs import Studio

    base = resolve_config(ns)
    folder = Path(ns.folder)
    if ns.max_upload < 1 or ns.max_storage < 0:
        raise ConfigError("--max-upload must be 1 MB or more, and --max-storage 0 (no bound) or more")
    studio = Studio(folder, base, ns.max_upload << 20, ns.max_storage << 20)
    token = secrets.token_urlsafe(24)
    sock = socket.socket(socket.AF_INET6 if ":" in ns.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ns.host, ns.port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {ns.host}:{ns.port} ({exc.strerror}); choose another --port") from None
    sock.listen(64)  # (connections wait for the server from here, so the address printed works at once)
    port = sock.getsockname()[1]
    host = f"[{ns.host}]" if ":" in ns.host else ns.host
    url = f"http://{host}:{port}/?token={token}"
    if ns.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"videostyle: warning: listening on {ns.host}: anyone who can reach it with the token can render "
              "and read this studio's files", file=sys.stderr)
    print(f"videostyle studio: {url}  (folder {folder}; Ctrl-C stops it)", flush=True)
    # (a bounded graceful shutdown: a connection that outlives the event streams' end is cut)
    server = _StudioServer(uvicorn.Config(create_app(studio, token, ns.host), log_level="warning", lifespan="off",
                                          timeout_graceful_shutdown=3), studio)
    if not ns.no_browser:
        webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn raises the signal it stopped on again once it has shut down, to the handler
        # before it (ours, for SIGTERM, or Python's for Ctrl-C): it has been handled here.
        if not server.signal:
            raise
    finally:
        studio.stop()
    kept = [j for j in studio.jobs.values() if j.state == "cancelled"]
    if kept:
        print(f"videostyle: stopped; {len(kept)} render(s) keep their finished frames: run the studio again and "
              "resume, or the command each one shows", file=sys.stderr)
    return {2: 130, 15: 143}.get(server.signal, 0)


class _StudioServer:
    """uvicorn's server, remembering which signal stopped it; the signal also ends the studio's
    event streams and stops its render at once (its frames kept), so the server stops within
    seconds with a page open."""

    def __new__(cls, config: typing.Any, studio: typing.Any) -> typing.Any:
        import uvicorn

        class Server(uvicorn.Server):
            signal = 0

            def handle_exit(self, sig: int, frame: typing.Any) -> None:
                self.signal = sig
                studio.stop_renders()
                super().handle_exit(sig, frame)

        return Server(config)


def cmd_examples(ns: argparse.Namespace) -> int:
    from videostyle.samples import copy_examples

    folder = Path(ns.folder)
    written = copy_examples(folder, ns.overwrite)
    print(f"wrote {len(written)} file(s) into {folder} (samples/ and configs/; SOURCES.md says where each "
          "sample comes from). From there:")
    print("  videostyle render samples/bunny.mp4 --style samples/cafe_terrace.jpg --method fast")
    print("  videostyle render samples/bunny.mp4 --config configs/keyframes-example.yaml --method fast")
    print("  videostyle batch configs/batch-example.yaml --dry-run")
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from videostyle.cli import demo
    from videostyle.samples import CLIP, SAMPLES

    base = resolve_config(ns)
    style = SAMPLES / f"{ns.painting}.jpg"
    folder = Path(ns.folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"bunny_{ns.painting}{DEFAULT_EXTENSION}"
    if out.exists() and not ns.overwrite:
        raise OutputError(f"output {out} exists; pass --overwrite (or -y) to replace it")
    res = demo.fast_render(CLIP, style, out, base, _reporter(ns))
    print(f"wrote {out} ({res.frames} frames with the fast engine in {res.seconds:.1f} s; the clip is Big Buck "
          "Bunny, CC BY 3.0 Blender Foundation)")
    print(f"measuring the optimisation render on this machine: a few iterations of frame 0 at {demo.GATYS_SIZE} px "
          "(a few seconds)", flush=True)
    est = demo.gatys_estimate(CLIP, style, base)
    gatys = folder / f"bunny_{ns.painting}_gatys{DEFAULT_EXTENSION}"
    # (later frames are costed at their whole iteration budget; most stop earlier)
    when = f" (up to about {duration(est.total_seconds)} on this machine)" if est else ""
    print(f"next, the optimisation render{when}:\n  videostyle render {CLIP} --style {style} --size "
          f"{demo.GATYS_SIZE} -o {gatys}")
    return 0


def cmd_keyframes(ns: argparse.Namespace) -> int:
    from videostyle import api

    if ns.threshold <= 0 or ns.every < 0:
        raise ConfigError("--threshold must be above 0 and --every 0 or more")
    written = api.propose_keyframes(ns.input, ns.output, threshold=ns.threshold, every=ns.every,
                                    overwrite=ns.overwrite)
    print(f"wrote {len(written)} frame(s) to paint over into {ns.output}; once painted (same names), render with:")
    print("  videostyle render " + shlex.quote(ns.input) + " " +
          " ".join(f"--paint f:{i}={shlex.quote(str(p))}" for i, p in written))
    return 0

