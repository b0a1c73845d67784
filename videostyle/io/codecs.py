"""What an output gets: its container (from the extension), the codecs that container takes,
the default codec for a source, the encoded pixel format and colour tags, each encoder's options,
MXF's frame rates, and the container of a render's chunks. Nothing here writes a file
(``mux`` does)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from videostyle.errors import ConfigError, OutputError, setting
from videostyle.io import colour, containers
from videostyle.io.colour import Picture

VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1", "prores": "prores_ks",
                  "dnxhr": "dnxhd"}

# The sample depths each encoder takes (this build's libvpx writes 8 bits only). Which codecs
# keep alpha in which container is the container table's (ProRes 4444; VP9's alpha travels as a
# second picture beside each frame, in Matroska and WebM only).
DEPTHS = {"h264": (8, 10), "hevc": (8, 10, 12), "vp9": (8,), "av1": (8, 10), "prores": (10,), "dnxhr": (8, 10)}
SDR = Picture(primaries=colour.BT709, trc=colour.BT709, matrix=colour.BT709, range=colour.MPEG)

# The frame rates FFmpeg's MXF muxer takes (the broadcast rates and their multiples).
MXF_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "48000/1001", "48", "50",
                                        "60000/1001", "60", "72", "96", "100", "120000/1001", "120"))


def container_format(path: Path) -> str:
    """The container an output file's extension names (one an output may be), else OutputError."""
    found = containers.of_path(path)
    if found is None or not found.file:
        raise OutputError(f"output {path}: unknown video extension {path.suffix!r}; use "
                          f"{containers.listed(containers.USUAL_EXTENSIONS)}")
    return found.name


def check_codec(path: Path, codec: str, fmt: str | None = None) -> None:
    """``codec`` goes into ``path``'s container (or ``fmt``'s, for a pipe)."""
    fmt = fmt or container_format(path)
    allowed = containers.BY_NAME[fmt].codecs
    if codec not in allowed:
        where = f"-f {fmt}" if path.name == "-" else f"{path.suffix} files"
        raise ConfigError(f"{setting('codec', codec)} cannot go into {where}; use one of {', '.join(sorted(allowed))} "
                          f"or another {'format' if path.name == '-' else 'extension'}")


def mxf_rate(fps: Fraction, path: Path) -> Fraction:
    """The MXF rate for a source at ``fps``: the broadcast rate within 0.5% of it (a phone's
    29.98 average is 29.97), as ffmpeg's constant-rate output does; else OutputError."""
    near = min(MXF_RATES, key=lambda r: abs(r - fps))
    if abs(near - fps) <= near * Fraction(5, 1000):
        return near
    raise OutputError(f"output {path}: MXF holds the broadcast frame rates (23.976, 24, 25, 29.97, 30, 50, 59.94, "
                      f"60 ...), not the source's {float(fps):.6g}; write a {containers.usual('mov')} or "
                      f"{containers.usual('matroska')}, or give an image sequence {setting('fps')}")


def fits_codec(codec: str, height: int, width: int) -> bool:
    """Whether ``codec`` encodes frames of this size (DNxHR: at least 256x120)."""
    return codec != "dnxhr" or (width >= 256 and height >= 120)


def chunk_suffix(path: Path) -> str:
    """The container of a render's encoded chunks, muxed into ``path`` at the end: its own,
    except for MXF, whose files do not keep a first timestamp (each chunk would start at 0):
    MOV chunks hold the same codecs with the source's timestamps."""
    found = containers.of_path(path)
    return containers.usual("mov") if found is not None and found.name == "mxf" else path.suffix


def default_codec(fmt: str, source: Picture) -> str:
    """The codec an output gets without --codec: one that keeps the source's alpha and depth
    where the container allows (ProRes in MOV, HEVC Main 10 in MP4 and Matroska, AV1 or VP9 in
    WebM), else H.264; in MXF, the broadcast interchange, an intra-frame codec: DNxHR (HQ, HQX
    for a deep source, 444 for a 4:4:4 one), or ProRes 4444 for alpha."""
    deep = source.depth > 8
    if fmt == "mxf":
        return "prores" if source.alpha else "dnxhr"
    if fmt == "webm":
        return "av1" if deep and not source.alpha else "vp9"
    if source.alpha and fmt in ("mov", "matroska"):
        return "prores" if deep or fmt == "mov" else "vp9"
    if deep:
        return "prores" if fmt == "mov" else "hevc"
    return "h264"


def output_picture(codec: str, fmt: str, source: Picture) -> tuple[str, Picture, tuple[str, ...]]:
    """The output's pixel format and Picture for a ``source`` through ``codec`` into ``fmt``, and
    what it cannot keep (one line each): the source's depth (up to what the encoder takes), its
    alpha, and its colour tags (an untagged or RGB source is tagged BT.709, the matrix it is
    encoded with)."""
    lost = []
    # A 16-bit or float source (image sequences) is written at 10 bits, the depth players decode
    # in hardware; 12 bits only for a 12-bit source.
    want = source.depth if source.depth <= 12 else 10
    depth = max([d for d in DEPTHS[codec] if d <= max(want, 8)] or [min(DEPTHS[codec])])
    if want > 8 and depth == 8:
        lost.append(f"{setting('codec', codec)} writes 8 bits here, so the source's {source.describe()} loses its depth "
                    "(hevc, av1 or prores keep it)")
    alpha = source.alpha and codec in containers.BY_NAME[fmt].alpha
    if source.alpha and not alpha:
        keep = ", ".join(f"{c} in {containers.listed(containers.keeping_alpha(c))}" for c in ("prores", "vp9"))
        lost.append(f"{codec} in {fmt} cannot hold the source's alpha, so the output is colour only ({keep}, "
                    "or a .png, .tif or .exr sequence keeps it)")
    if codec == "prores":
        pix_fmt = "yuva444p10le" if alpha else ("yuv444p10le" if source.chroma == "444" else "yuv422p10le")
    elif codec == "vp9":
        pix_fmt = "yuva420p" if alpha else "yuv420p"
    elif codec == "dnxhr":  # DNxHR HQ (4:2:2, 8 bits), HQX (4:2:2, 10 bits) or 444 (10 bits)
        pix_fmt = "yuv444p10le" if source.chroma == "444" else ("yuv422p10le" if depth > 8 else "yuv422p")
    else:
        pix_fmt = f"yuv420p{depth}le" if depth > 8 else "yuv420p"
    depth = 10 if pix_fmt.endswith("10le") else depth  # (DNxHR 444 is 10 bits whatever the source)
    tagged = not source.linear and (source.primaries, source.trc) != (colour.UNSPECIFIED,) * 2
    pic = Picture(depth=depth, alpha=alpha, chroma=pix_fmt[3 + alpha:6 + alpha],
                  primaries=source.primaries if tagged else SDR.primaries, trc=source.trc if tagged else SDR.trc,
                  matrix=source.matrix if tagged and source.matrix not in (0, colour.UNSPECIFIED) else SDR.matrix,
                  range=source.range if tagged and source.range and not source.chroma == "444" else SDR.range)
    return pix_fmt, pic, tuple(lost)


def video_options(codec: str, crf: int, preset: str, pix_fmt: str = "yuv420p") -> dict[str, str]:
    if codec == "h264":
        return {"crf": str(crf), "preset": preset}
    if codec == "hevc":
        return {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"}
    if codec == "vp9":
        speed = {"ultrafast": "8", "superfast": "7", "veryfast": "6", "faster": "5", "fast": "4", "medium": "3",
                 "slow": "2", "slower": "1", "veryslow": "0"}.get(preset, "3")
        return {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": speed, "row-mt": "1"}
    if codec == "av1":
        speed = {"ultrafast": "12", "superfast": "11", "veryfast": "10", "faster": "9", "fast": "8", "medium": "7",
                 "slow": "5", "slower": "4", "veryslow": "2"}.get(preset, preset if preset.isdigit() else "7")
        return {"crf": str(crf), "preset": speed}
    if codec == "dnxhr":
        return {"profile": "dnxhr_444" if "444" in pix_fmt else ("dnxhr_hqx" if "10" in pix_fmt else "dnxhr_hq")}
    return {"profile": "4" if "444" in pix_fmt else "3"}  # prores_ks 4444 (with its alpha) or 422 HQ
