"""Command line: the only module that prints, owns progress bars and exits."""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence

from videostyle import __version__
from videostyle.cli.commands import (cmd_batch, cmd_config_show, cmd_demo, cmd_eval, cmd_examples, cmd_keyframes,
                                     cmd_preview,
                                     cmd_render, cmd_studio)
from videostyle.cli.flags import FLAG_GROUPS, METAVARS, _Parser, add_config_flags, resolve_config
from videostyle.errors import VideostyleError
from videostyle.io import containers

__all__ = ["FLAG_GROUPS", "METAVARS", "build_parser", "main", "resolve_config"]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="videostyle", description="Paint images and videos in the style of an artwork.")
    p.add_argument("--version", action="version", version=f"videostyle {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("render", help="stylize an image or a video",
                       usage="videostyle render INPUT --style IMAGE [-o OUTPUT] [options]",
                       description="Stylize an image or a video. Flags override --config; the everyday "
                                   "options come first, the expert ones last.")
    r.add_argument("input", metavar="INPUT", help="input image or video; - reads a video from standard input")
    r.add_argument("-o", "--output", metavar="OUTPUT", help="output file (default: INPUT_STYLE.png/.mp4 next to the input); - writes "
                   "the video to standard output (with -f)")
    r.add_argument("-f", "--format", metavar="FORMAT", choices=containers.WRITABLE,
                   help=f"container of -o - (a pipe): {containers.listed(containers.PIPE_FORMATS)}")
    r.add_argument("--config", metavar="PATH", help="YAML config file (flags win over it)")
    r.add_argument("--restart", action="store_true", help="discard an interrupted render's progress and start over")
    r.add_argument("-y", "--overwrite", action="store_true", help="replace the output if it exists (default: refuse)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.add_argument("-v", "--verbose", action="store_true", help="show iterations within each frame")
    _progress_flags(r)
    add_config_flags(r)
    r.set_defaults(func=cmd_render)

    _preview_parser(sub)
    _studio_parser(sub)
    _sample_parsers(sub)

    e = sub.add_parser("eval", help="measure flicker (temporal error) of a stylized video",
                       usage="videostyle eval STYLIZED --source SOURCE [--gaps GAPS] [--json] [options]",
                       description="Temporal error of STYLIZED against the motion of SOURCE (flow and masks from "
                                   "the source), at gap 1 and the long-term gaps given. For a render of a span, "
                                   "pass its --start/--duration (or --max-frames): they choose the source's frames.")
    e.add_argument("stylized", metavar="STYLIZED", help="stylized video")
    e.add_argument("--source", metavar="SOURCE", required=True, help="the source video it was made from")
    e.add_argument("--gaps", metavar="GAPS", default="1,4", help="frame gaps to measure, e.g. 1,2,4 (default: 1,4)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--per-frame", action="store_true", help="with --json: include per-frame errors")
    e.add_argument("--config", metavar="PATH", help="YAML config (flow settings, style/model for the losses)")
    add_config_flags(e)
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("batch", help="run the renders of a YAML batch file",
                       usage="videostyle batch JOBS [--dry-run] [--report PATH] [options]",
                       description="Run a batch file's jobs in order (defaults: + jobs:). Flags here override "
                                   "every job.")
    b.add_argument("jobs", metavar="JOBS", help="batch YAML file")
    b.add_argument("--dry-run", action="store_true", help="list the expanded renders and stop")
    b.add_argument("--fail-fast", action="store_true", help="stop at the first failed render")
    b.add_argument("--overwrite", action="store_true", help="re-render outputs that already exist")
    b.add_argument("--report", metavar="PATH", help="write a JSON report of the outcomes here")
    b.add_argument("--restart", action="store_true", help="discard interrupted renders' progress")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _progress_flags(b)
    b.add_argument("-v", "--verbose", action="store_true", help="show iterations within each frame")
    add_config_flags(b)
    b.set_defaults(func=cmd_batch)

    c = sub.add_parser("config", help="show the resolved configuration")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    show = csub.add_parser("show", help="print the resolved config as YAML",
                           usage="videostyle config show [--config PATH] [options]")
    show.add_argument("--config", metavar="PATH", help="YAML config file")
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
        print(f"videostyle: error: {err.on_command_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as exc:
        print(f"videostyle: interrupted{interrupt.by(exc)}", file=sys.stderr)
        return interrupt.exit_code(exc)
    except MemoryError:
        print("videostyle: error: out of memory; lower --size", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def _progress_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", choices=("bar", "json"), default="bar",
                   help="progress as bars, or as one JSON object per event on standard error (for other front ends)")
    p.add_argument("--progress-file", metavar="PATH",
                   help="also append the JSON progress events to PATH (the bars stay on the terminal)")


def _preview_parser(sub: typing.Any) -> None:
    pv = sub.add_parser("preview", help="a contact sheet of one frame (or a strip) under each combination of settings",
                        usage="videostyle preview INPUT --style IMAGE [--at TIME] [--vary SETTING=V1,V2 ...] "
                              "[--frames N] [-o SHEET.png] [options]",
                        description="Render one frame of INPUT (or --frames N from there) under every combination "
                                    "of the --vary values and lay them out as a labelled PNG contact sheet. Runs at "
                                    "--size 256 and --iterations 100 unless told; the fast engine is instant.")
    pv.add_argument("input", metavar="INPUT", help="video, image sequence or image")
    pv.add_argument("--at", metavar="TIME", default="0", help="seconds (3.5) or a frame (f:84) (default: 0)")
    pv.add_argument("--vary", metavar="SETTING=V1,V2", action="append",
                    help="a setting by its flag name and the values to try; repeat for combinations")
    pv.add_argument("--frames", metavar="N", type=int, default=1,
                    help="render N frames from --at (a strip: temporal settings and flicker show)")
    pv.add_argument("-o", "--output", metavar="SHEET.png", help="default: INPUT_preview.png beside the input")
    pv.add_argument("--config", metavar="PATH", help="YAML config file (flags win over it)")
    pv.add_argument("-y", "--overwrite", action="store_true", help="replace the sheet if it exists")
    pv.add_argument("-q", "--quiet", action="store_true", help="no progress")
    pv.add_argument("-v", "--verbose", action="store_true", help="show iterations")
    _progress_flags(pv)
    add_config_flags(pv)
    pv.set_defaults(func=cmd_preview)


def _studio_parser(sub: typing.Any) -> None:
    st = sub.add_parser("studio", help="a local web studio: previews, renders and their progress in the browser",
                        usage="videostyle studio [--folder DIR] [--port N] [--host ADDRESS] [options]",
                        description="Serve the studio on 127.0.0.1 (every request needs the token in the address "
                                    "it prints) and open the browser. Config flags set the studio's defaults.")
    st.add_argument("--folder", metavar="DIR", default="videostyle-studio",
                    help="where uploads, outputs and their work folders go (default: ./videostyle-studio)")
    st.add_argument("--host", metavar="ADDRESS", default="127.0.0.1",
                    help="listen on this address (default 127.0.0.1: this machine only)")
    st.add_argument("--port", metavar="N", type=int, default=0, help="port (default: a free one)")
    st.add_argument("--max-upload", metavar="MB", type=int, default=2048, help="largest upload (default 2048 MB)")
    st.add_argument("--max-storage", metavar="MB", type=int, default=10240,
                    help="all uploads together (default 10240 MB; 0 = no bound): the oldest that no render needs "
                         "are removed to make room")
    st.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    st.add_argument("--config", metavar="PATH", help="YAML config file for the studio's defaults")
    add_config_flags(st)
    st.set_defaults(func=cmd_studio)


def _sample_parsers(sub: typing.Any) -> None:
    from videostyle.samples import PAINTINGS

    d = sub.add_parser("demo", help="render the sample clip in a sample painting with the fast engine, in seconds",
                       usage="videostyle demo [--folder DIR] [--painting NAME] [options]",
                       description="A first render with nothing to bring: the shipped sample clip in a shipped "
                                   "painting with the fast engine; then the optimisation render's command and "
                                   "its estimate on this machine.")
    d.add_argument("--folder", metavar="DIR", default="videostyle-demo", help="where the result goes")
    d.add_argument("--painting", choices=[p.removesuffix(".jpg") for p in PAINTINGS], default="cafe_terrace")
    d.add_argument("-y", "--overwrite", action="store_true", help="replace an earlier demo's result")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    d.add_argument("--config", metavar="PATH", help="YAML config file (flags win over it)")
    add_config_flags(d)
    d.set_defaults(func=cmd_demo)
    k = sub.add_parser("keyframes", help="propose frames to paint over, as PNGs, with the --paint flags that use them",
                       usage="videostyle keyframes INPUT -o DIR [--threshold X] [--every N] [-y]",
                       description="The first frame, each scene cut, and each frame where the flow since the last "
                                   "proposal has revealed or changed --threshold of a frame's area, written as "
                                   "NNNN.png (the frame number) at the source's size, ready to paint over; then the "
                                   "render's --paint flags for them.")
    k.add_argument("input", metavar="INPUT")
    k.add_argument("-o", "--output", metavar="DIR", required=True, help="folder for the frames")
    k.add_argument("--threshold", type=float, default=2.0, metavar="X",
                   help="frames' worth of revealed or changed pixels between proposals (default 2)")
    k.add_argument("--every", type=int, default=0, metavar="N", help="a proposal at least every N frames")
    k.add_argument("-y", "--overwrite", action="store_true", help="replace frames already there")
    k.set_defaults(func=cmd_keyframes)
    x = sub.add_parser("examples", help="copy the sample media and example configs into a folder",
                       usage="videostyle examples DIR [-y]",
                       description="Copy the shipped samples (with their sources and licences) and the example "
                                   "configs, pointed at the copies, into DIR.")
    x.add_argument("folder", metavar="DIR")
    x.add_argument("-y", "--overwrite", action="store_true", help="replace files already there")
    x.set_defaults(func=cmd_examples)
