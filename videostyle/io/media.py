"""Reading video files through PyAV: probe a file's header, and stream its decoded RGB frames
with repaired timestamps over a span (writing is in ``mux``).

Nothing here holds more than a few frames: decoding streams.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from videostyle.errors import ConfigError, InputError, setting
from videostyle.io import colour, sequence as seqs
from videostyle.io.colour import Picture
from videostyle.io.limits import MAX_PIXELS, check_pixels
from videostyle.io.sequence import Sequence

Warn = Callable[[str], None]

# --strict: give up when more than this fraction of video packets fail to decode (and at least
# this many).
BAD_PACKET_FRACTION = 0.05
BAD_PACKET_MIN = 5
# Otherwise, as the ffmpeg tool does, a packet that does not decode is skipped and its slot holds
# the frame before; a file is refused only when fewer than this fraction of its packets decode.
GOOD_PACKET_FRACTION = 0.1
GOOD_PACKET_CHECK = 20  # packets read before that fraction is judged


class Lost:
    """A packet that did not decode. Its slot is found later, as a gap in the decoded frames'
    timestamps: a frame-threaded decoder reports a packet's error while later packets are
    being sent, so the packet at hand is not the lost one."""


def _damaged(exc: BaseException) -> bool:
    """Whether a decoder's error means this packet is damaged (the next may decode): invalid data,
    or Theora's EPERM for a packet it cannot unpack."""
    return isinstance(exc, av.error.InvalidDataError) or getattr(exc, "errno", None) == errno.EPERM


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    language: str | None
    title: str | None


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # displayed width (after rotation)
    height: int  # displayed height (after rotation)
    rotation: int  # counter-clockwise degrees from the display matrix
    fps: Fraction  # average frame rate
    time_base: Fraction
    frames: int | None  # frame count the header promises, when it does
    duration: float | None  # seconds
    start_time: float  # seconds of the first frame
    video_index: int
    audio: tuple[StreamInfo, ...] = ()
    subtitles: tuple[StreamInfo, ...] = ()
    sequence: Sequence | None = None  # an image sequence's files (None: a video file)
    timecode: str | None = None  # SMPTE timecode of the first frame (a MOV/MXF timecode track)
    reel_name: str | None = None
    creation_time: str | None = None
    picture: Picture = Picture()  # depth, alpha and colour tags of the decoded frames


@dataclass
class Frame:
    index: int  # 0-based index among the rendered frames
    pts: int  # presentation timestamp in ``time_base`` units (repaired when missing or non-increasing)
    time_base: Fraction
    image: np.ndarray  # (H, W, 3) RGB uint8, rotation applied
    alpha: np.ndarray | None = None  # the source's alpha, unchanged (colour.read_alpha), rotation applied

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


def open_input(path: Path) -> Any:
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a video file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(f"input {path} is not a readable video, or is truncated or corrupt "
                         f"({exc.strerror or type(exc).__name__})") from None


def _main_video_stream(container: Any, path: Path) -> Any:
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:  # cover art is not the video
            return s
    held = Counter("cover picture" if s.type == "video" else s.type for s in container.streams)
    what = ", ".join(f"{n} {kind} stream{'s' if n > 1 else ''}" for kind, n in held.items()) or "no streams"
    # (ffmpeg reads some text and noise as subtitles: say what it found)
    raise InputError(f"input {path} has no video stream (read as {container.format.name}: {what}); give a video file")


def _stream_info(s: Any) -> StreamInfo:
    md = dict(s.metadata)
    return StreamInfo(s.index, s.type, s.codec_context.name, md.get("language"), md.get("title"))


def probe(path: str | os.PathLike[str], *, fps: float = 24.0, fill_gaps: str = "refuse",
          max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """Read a video's header: size, rotation, rate, timing and its other streams. An image
    sequence (``sequence.is_sequence``) is resolved into its files, at ``fps`` frames a second.
    A frame size over ``max_pixels`` is refused from the header, before a frame is decoded."""
    p = Path(path)
    if seqs.is_sequence(p):
        return _probe_sequence(p, Fraction(fps).limit_denominator(1001), fill_gaps, max_pixels)
    with open_input(p) as c:
        v = _main_video_stream(c, p)
        cc = v.codec_context
        if not cc.width or not cc.height:
            raise InputError(f"input {p}: the video stream has no frame size (corrupt header?)")
        check_pixels(cc.width, cc.height, max_pixels, "input", p)
        first = next((f for f in _decode(c, v, p, lambda m: None) if not isinstance(f, Lost)), None)
        rotation = int(first.rotation or 0) if first is not None else 0
        w, h = cc.width, cc.height
        if rotation % 180 != 0:
            w, h = h, w
        tb = v.time_base or Fraction(1, 90000)
        start = float(v.start_time * tb) if v.start_time is not None else 0.0
        dur = float(v.duration * tb) if v.duration else (c.duration / 1e6 if c.duration else None)
        fps = v.average_rate or v.guessed_rate or Fraction(25)
        tags = [dict(c.metadata), dict(v.metadata)] + [dict(s.metadata) for s in c.streams if s.type == "data"]
        return VideoInfo(
            path=p, width=w, height=h, rotation=rotation, fps=Fraction(fps), time_base=Fraction(tb),
            frames=int(v.frames) if v.frames else None, duration=dur, start_time=start, video_index=v.index,
            audio=tuple(_stream_info(s) for s in c.streams.audio),
            subtitles=tuple(_stream_info(s) for s in c.streams.subtitles),
            timecode=_tag(tags, "timecode"), reel_name=_tag(tags, "reel_name"),
            # (MXF's demuxer names its Identification's date modification_date.)
            creation_time=_tag(tags, "creation_time") or _tag(tags, "modification_date"),
            picture=colour.of_frame(first) if first is not None else Picture(),
        )


def _tag(tags: list[dict[str, str]], key: str) -> str | None:
    return next((t[key] for t in tags if t.get(key)), None)


def _probe_sequence(p: Path, fps: Fraction, fill_gaps: str, max_pixels: int) -> VideoInfo:
    seq = seqs.resolve(p, fill_gaps)
    w, h, pic = seqs.first_picture(seq, max_pixels)
    n = len(seq.files)
    return VideoInfo(path=p, width=w, height=h, rotation=0, fps=fps, time_base=1 / fps, frames=n,
                     duration=n / float(fps), start_time=0.0, video_index=0, sequence=seq, picture=pic)


def _decode(container: Any, stream: Any, path: Path, warn: Warn, strict: bool = False) -> Iterator[Any]:
    """Decode frames; a packet that does not decode is skipped (``Lost`` marks its slot), and a
    file is refused when too few decode (``strict``: when more than a few do not)."""
    bad = total = 0
    dec = _alpha_decoder(stream)
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            warn(f"warning: {path}: stopped reading at a damaged spot ({exc.strerror or type(exc).__name__})")
            break
        if packet.size == 0 and packet.buffer_ptr:
            # An empty packet from the demuxer (not the null flush packet at the end): Theora's
            # "repeat the previous frame". The decoder refuses it (EINVAL), the ffmpeg tool skips
            # it, and so do we: the previous frame stays up until the next timestamp.
            continue
        total += 1
        try:
            frames = dec.decode(packet) if dec is not None else packet.decode()
        except av.error.FFmpegError as exc:
            if not _damaged(exc):
                raise InputError(f"input {path}: decoding failed ({exc.strerror or type(exc).__name__})") from None
            bad += 1
            if strict and bad >= BAD_PACKET_MIN and bad > BAD_PACKET_FRACTION * total:
                raise InputError(f"input {path} is corrupt: {bad} of {total} video packets failed to decode "
                                 f"({setting('strict')}); leave out {setting('strict')} to skip them as ffmpeg does") from None
            if total >= GOOD_PACKET_CHECK and total - bad < GOOD_PACKET_FRACTION * total:
                raise InputError(f"input {path} is too damaged to render: {total - bad} of the first {total} video "
                                 "packets decode") from None
            yield Lost()
            continue
        yield from frames
    if total and total - bad < GOOD_PACKET_FRACTION * total:
        raise InputError(f"input {path} is too damaged to render: {total - bad} of {total} video packets decode")


def _alpha_decoder(stream: Any) -> Any:
    """libvpx's VP9 decoder for a WebM/Matroska VP9 stream with alpha (``alpha_mode`` 1): FFmpeg's
    own VP9 decoder drops the alpha, which travels beside each frame as block additions."""
    if stream.codec_context.name != "vp9" or stream.metadata.get("alpha_mode") != "1":
        return None
    try:
        return av.CodecContext.create("libvpx-vp9", "r")
    except (av.error.FFmpegError, ValueError):  # a build without libvpx: colour only, as ffmpeg reads it
        return None


def _slots(items: Iterator[Any], step: int) -> Iterator[tuple[int | None, Any]]:
    """(pts, frame) for each decoded frame, and (pts, None) for each lost packet's slot: the
    first gaps of more than one frame step after a loss, or after the last frame."""
    owed = 0
    last: int | None = None
    for item in items:
        if isinstance(item, Lost):
            owed += 1
            continue
        pts = item.pts if item.pts is not None else item.dts
        if last is None:
            owed = 0  # losses before the first frame have no frame to hold: their slots are dropped
        elif owed and pts is not None and pts > last + step:
            k = min(owed, round((pts - last) / step) - 1)
            for j in range(1, k + 1):
                yield last + j * step, None
            owed -= k
        yield pts, item
        if pts is not None:
            last = pts
    if last is not None:
        for j in range(1, owed + 1):
            yield last + j * step, None


def rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation (degrees) to the pixels."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def read_frames(
    path: str | os.PathLike[str],
    *,
    start: float = 0.0,
    duration: float = 0.0,
    max_frames: int = 0,
    skip: int = 0,
    warn: Warn = lambda m: None,
    info: VideoInfo | None = None,
    strict: bool = False,
) -> Iterator[Frame]:
    """Stream RGB frames with repaired, strictly increasing timestamps.

    ``start``/``duration`` (seconds from the file's first frame) and ``max_frames`` choose the
    span; ``skip`` drops that many frames of the span without converting them (resume).
    ``info`` is the file's :func:`probe`, when the caller already has it. A packet that does not
    decode is skipped and its frame's slot shows the frame before (held), as the ffmpeg tool
    shows it; one warning at the end says how many and where. ``strict`` refuses such a file.
    """
    p = Path(path)
    info = info or probe(p)
    if info.sequence is not None:
        for index, pts, img, alpha in seqs.frames(info.sequence, info.fps, info.picture, start=start,
                                                  duration=duration, max_frames=max_frames, skip=skip):
            yield Frame(index, pts, info.time_base, img, alpha)
        return
    with open_input(p) as c:
        v = c.streams[info.video_index]
        v.thread_type = "AUTO"
        tb = Fraction(v.time_base)
        step = max(1, round(1 / (info.fps * tb))) if info.fps else 1
        t0 = info.start_time + start
        t1 = t0 + duration if duration > 0 else None
        if start > 0:
            c.seek(int((t0 - 1.0) / tb) if t0 > 1.0 else int(info.start_time / tb), stream=v, backward=True)
        last: int | None = None
        index = 0
        held: np.ndarray | None = None  # the last good frame's pixels, for a slot that did not decode
        held_alpha: np.ndarray | None = None
        lost: list[float] = []  # seconds of the held slots
        for pts, frame in _slots(_decode(c, v, p, warn, strict), step):
            if frame is None and held is None:
                continue  # nothing to hold before the first good frame: the slot is dropped
            if pts is None:
                pts = (last + step) if last is not None else 0
            elif last is not None and pts <= last:
                pts = last + step
            t = float(pts * tb)
            if t < t0 - 1e-6:
                continue
            if t1 is not None and t >= t1 - 1e-6:
                break
            if max_frames and index >= max_frames:
                break
            last = pts
            if frame is None:
                lost.append(t - info.start_time)
            elif index >= skip - 1:  # (the frame before the span's first: a held slot may need it)
                img, alpha = colour.to_display(frame, info.picture)
                held = rotate(img, info.rotation)
                held_alpha = rotate(alpha, info.rotation) if alpha is not None else None
            if index >= skip:
                yield Frame(index, pts, tb, held, held_alpha)  # type: ignore[arg-type]
            index += 1
        if lost:
            where = ", ".join(f"{x:.2f} s" for x in lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            warn(f"warning: {p}: {len(lost)} frame(s) did not decode and show the frame before them (at {where}); "
                 f"pass {setting('strict')} to refuse such a file")
        whole = not start and not duration and not max_frames
        if whole and info.frames and index < info.frames:
            warn(f"warning: {p}: decoded {index} frames, the header promised {info.frames} (truncated file?)")
        elif whole and not info.frames and info.duration and last is not None:
            end = float(last * tb) - info.start_time + float(1 / info.fps)
            if end < info.duration - 2 / float(info.fps):
                warn(f"warning: {p}: frames end at {end:.2f} s, the header says {info.duration:.2f} s (truncated file?)")


def count_frames(path: str | os.PathLike[str], *, start: float = 0.0, duration: float = 0.0, max_frames: int = 0,
                 info: VideoInfo | None = None) -> int | None:
    """Frames a span will yield, estimated from the header (None when unknown)."""
    info = info or probe(path)
    if max_frames and not duration and not start:
        return min(max_frames, info.frames) if info.frames else max_frames
    if info.duration is None:
        return max_frames or None
    span = (duration or max(info.duration - start, 0.0))
    n = int(round(span * float(info.fps)))
    if info.frames and not start and not duration:
        n = info.frames
    return min(n, max_frames) if max_frames else n


@dataclass(frozen=True)
class Span:
    """The part of a clip a render covers: ``start`` and ``duration`` in seconds from the first
    frame (0 = from the beginning / to the end) and at most ``max_frames`` frames (0 = all)."""

    start: float = 0.0
    duration: float = 0.0
    max_frames: int = 0

    def frames(self, path: str | os.PathLike[str], **kw: Any) -> Iterator[Frame]:
        """The span's frames (keywords as :func:`read_frames`)."""
        return read_frames(path, start=self.start, duration=self.duration, max_frames=self.max_frames, **kw)

    def count(self, path: str | os.PathLike[str], info: VideoInfo | None = None) -> int | None:
        return count_frames(path, start=self.start, duration=self.duration, max_frames=self.max_frames, info=info)

    def check(self, info: VideoInfo) -> None:
        if self.start and info.duration is not None and self.start >= info.duration:
            raise ConfigError(f"{setting('start', self.start)} is past the end of {info.path} ({info.duration:.2f} s)")

    def source_seconds(self, info: VideoInfo) -> tuple[float, float | None]:
        """[t0, t1) of the span in source time (t0 -inf: from the first packet of any stream,
        so audio that starts before the video is kept; t1 None: to the end)."""
        t0 = info.start_time + self.start
        return (t0 if self.start > 0 else float("-inf"), t0 + self.duration if self.duration > 0 else None)

    def shift(self, info: VideoInfo) -> float:
        """Seconds subtracted from source timestamps: a --start cut begins at 0."""
        return info.start_time + self.start if self.start > 0 else 0.0
