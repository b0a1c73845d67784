"""The studio's uploads: clips and style images saved under generated names in its own folder,
checked on arrival (a clip must be a video FFmpeg decodes, a style an image), and found again by
id only, so that no path from a request is ever opened."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from videostyle.errors import VideostyleError
from videostyle.io.images import read_image
from videostyle.io.media import VideoInfo, probe, read_frames

CLIP_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".ogv", ".ogg", ".m4v", ".mxf", ".ts", ".mts"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif")
CHUNK = 1 << 20


class UploadError(VideostyleError):
    """An upload the studio does not take: the message is shown in the page."""


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # "clip" or "style"
    name: str  # the name it was uploaded under (shown, never used as a path)
    path: Path
    width: int
    height: int
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    still: bool = False  # an image given as the content (rendered as an image)
    info: VideoInfo | None = field(default=None, compare=False, repr=False)  # a clip's probe, for its frames

    def public(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "width": self.width, "height": self.height,
                "frames": self.frames, "fps": self.fps, "duration": self.duration, "still": self.still}


class Uploads:
    """The uploads folder and what is in it."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        folder.mkdir(parents=True, exist_ok=True)
        self.items: dict[str, Item] = {}
        self.lock = threading.Lock()

    def get(self, item_id: str, kind: str | None = None) -> Item:
        item = self.items.get(item_id)
        if item is None or (kind is not None and item.kind != kind):
            raise UploadError(f"no such {kind or 'upload'}: {item_id!r}")
        return item

    def save(self, name: str, kind: str, stream: BinaryIO) -> Item:
        """Copy ``stream`` in (at most ``limit`` bytes) under a generated name and check it."""
        if kind not in ("clip", "style"):
            raise UploadError(f"upload kind must be clip or style, not {kind!r}")
        name = display_name(name)
        ext = Path(name).suffix.lower()
        allowed = CLIP_EXTS | IMAGE_EXTS if kind == "clip" else IMAGE_EXTS
        if ext not in allowed:
            raise UploadError(f"{name}: a {kind} must be one of {', '.join(sorted(allowed))}")
        item_id = secrets.token_hex(8)
        path = self.folder / f"{item_id}{ext}"
        tmp = path.with_name(f".{path.name}.part")
        size = 0
        try:
            with open(tmp, "xb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.limit:
                        raise UploadError(f"{name} is larger than the studio's upload limit "
                                          f"({self.limit // (1 << 20)} MiB; start it with --max-upload MB)")
                    out.write(chunk)
            if size == 0:
                raise UploadError(f"{name} is empty")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        try:
            item = self._check(item_id, kind, name, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        with self.lock:
            self.items[item_id] = item
        return item

    def _check(self, item_id: str, kind: str, name: str, path: Path) -> Item:
        if kind == "style" or path.suffix.lower() in IMAGE_EXTS:
            try:
                img = read_image(path, "image")
            except VideostyleError:
                raise UploadError(f"{name} is not a readable image") from None
            return Item(item_id, kind, name, path, img.shape[1], img.shape[0], still=kind == "clip")
        try:
            with av.open(str(path), metadata_errors="ignore") as c:
                fmt = c.format.name
        except av.error.FFmpegError:
            raise UploadError(f"{name} is not a readable video, or is truncated or corrupt") from None
        if fmt.split(",")[0] in IMAGE_FORMATS:
            raise UploadError(f"{name} is a still image, not a video: upload it as a style, or a real clip")
        try:
            info = probe(path)
            first = next(iter(read_frames(path, max_frames=1, info=info)), None)
        except VideostyleError as exc:
            raise UploadError(f"{name}: {exc}") from None
        if first is None:
            raise UploadError(f"{name} has no frame that decodes")
        return Item(item_id, kind, name, path, info.width, info.height, info.frames, float(info.fps), info.duration,
                    info=info)

    def frame(self, item: Item, t: float) -> np.ndarray:
        """The clip's frame at ``t`` seconds (the last one when past the end)."""
        if item.kind == "style" or item.still:
            return read_image(item.path, "image")
        at = max(0.0, min(t, (item.duration or 0.0) - 1.0 / (item.fps or 24.0)))
        fr = next(iter(read_frames(item.path, start=at, max_frames=1, info=item.info)), None)
        if fr is None:
            fr = next(iter(read_frames(item.path, max_frames=1, info=item.info)))
        return fr.image


NAME_LENGTH = 80  # characters of an uploaded name kept for display


def display_name(name: str) -> str:
    """An uploaded file's name as the studio shows it: without control or format characters
    (newlines, bidirectional overrides), at most ``NAME_LENGTH`` characters with its extension
    kept. Only ever shown, as text (slashes and all); files are stored under generated names."""
    import unicodedata

    clean = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip() or "upload"
    if len(clean) > NAME_LENGTH:
        stem, dot, ext = clean.rpartition(".")
        ext = dot + ext if dot and len(ext) <= 8 else ""
        clean = clean[:NAME_LENGTH - len(ext) - 1] + "…" + ext
    return clean
