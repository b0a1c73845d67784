"""What each container holds, in one table: the extensions that name it, the video codecs it
takes, those whose alpha it keeps, and whether it streams to a pipe. The command line, the
studio, the codec choice and the muxer read it; a new container is one entry here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Container:
    name: str  # FFmpeg's name for it (the muxer, and -f)
    extensions: tuple[str, ...]  # the extensions that name it, the usual one first
    codecs: tuple[str, ...]  # the video codecs it takes (the encoders of io.codecs)
    alpha: tuple[str, ...] = ()  # the codecs whose alpha it keeps
    file: bool = True  # an output file may be one
    pipe: bool = False  # streams to a pipe (-o - -f NAME): no index written at the end


TABLE: tuple[Container, ...] = (
    Container("mp4", (".mp4", ".m4v"), ("h264", "hevc", "vp9", "av1")),
    Container("mov", (".mov",), ("h264", "hevc", "prores", "dnxhr"), alpha=("prores",)),
    Container("matroska", (".mkv",), ("h264", "hevc", "vp9", "av1", "prores", "dnxhr"), alpha=("prores", "vp9"),
              pipe=True),
    Container("webm", (".webm",), ("vp9", "av1"), alpha=("vp9",), pipe=True),
    Container("mxf", (".mxf",), ("dnxhr", "prores"), alpha=("prores",)),
    Container("mpegts", (".ts", ".mts", ".m2ts"), ("h264", "hevc"), file=False, pipe=True),
    Container("nut", (".nut",), ("h264", "hevc", "vp9", "av1"), file=False, pipe=True),
    # Read only: what users bring (FFmpeg reads them; the studio takes uploads with these names).
    Container("avi", (".avi",), (), file=False),
    Container("asf", (".wmv", ".asf"), (), file=False),
    Container("ogg", (".ogv", ".ogg"), (), file=False),
    Container("flv", (".flv",), (), file=False),
    Container("3gp", (".3gp",), (), file=False),
)
BY_NAME = {c.name: c for c in TABLE}
BY_EXTENSION = {ext: c for c in TABLE for ext in c.extensions}
OUTPUT_EXTENSIONS = tuple(ext for c in TABLE if c.file for ext in c.extensions)  # an output file's
USUAL_EXTENSIONS = tuple(c.extensions[0] for c in TABLE if c.file)  # (as messages name them)
DEFAULT_EXTENSION = TABLE[0].extensions[0]  # a video render's output without -o
PIPE_FORMATS = tuple(c.name for c in TABLE if c.pipe)
WRITABLE = tuple(c.name for c in TABLE if c.file or c.pipe)
VIDEO_EXTENSIONS = frozenset(BY_EXTENSION)  # every container extension a clip may have


def of_path(path: Path) -> Container | None:
    """The container a file's extension names, or None."""
    return BY_EXTENSION.get(Path(path).suffix.lower())


def listed(names: tuple[str, ...], last: str = "or") -> str:
    """``.mp4, .mkv, .mov or .webm``."""
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else names[0]


def usual(name: str) -> str:
    """The usual extension of the container ``name``: ``.mov``."""
    return BY_NAME[name].extensions[0]


def keeping_alpha(codec: str) -> tuple[str, ...]:
    """The usual extensions of the output files whose container keeps ``codec``'s alpha."""
    return tuple(c.extensions[0] for c in TABLE if c.file and codec in c.alpha)
