"""The studio's uploads: clips and style images saved under generated names in its own folder,
checked on arrival (a clip must be a video FFmpeg decodes, a style an image), and found again by
id only, so that no path from a request is ever opened."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from videostyle.errors import VideostyleError, in_flags
from videostyle.io import containers
from videostyle.io.images import IMAGE_EXTS, read_image
from videostyle.io.limits import MAX_PIXELS, check_pixels, header_size
from videostyle.io.media import VideoInfo, probe, read_frames

CLIP_EXTS = containers.VIDEO_EXTENSIONS  # (an image is a clip too: rendered as an image)
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
    size: int = 0  # bytes on disk
    added: float = 0.0  # when it arrived (time.time())
    info: VideoInfo | None = field(default=None, compare=False, repr=False)  # a clip's probe, for its frames

    def public(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "width": self.width, "height": self.height,
                "frames": self.frames, "fps": self.fps, "duration": self.duration, "still": self.still,
                "size": self.size}

    def record(self) -> dict[str, object]:
        """What the studio's record keeps of it (its file by name inside the uploads folder)."""
        return {**self.public(), "file": self.path.name, "added": self.added}

    @classmethod
    def from_record(cls, folder: Path, rec: dict[str, Any]) -> Item | None:
        """The upload a record describes, or None when its file is gone or the record is not one."""
        try:
            path = folder / str(rec["file"])
            if path.parent != folder or not re.fullmatch(r"[0-9a-f]{16}\.[a-z0-9]{2,5}", path.name):
                return None
            if not path.is_file():
                return None
            return cls(str(rec["id"]), str(rec["kind"]), display_name(str(rec["name"])), path, int(rec["width"]),
                       int(rec["height"]), rec.get("frames"), rec.get("fps"), rec.get("duration"),
                       bool(rec.get("still")), path.stat().st_size, float(rec.get("added") or 0.0))
        except (KeyError, TypeError, ValueError):
            return None


class Incoming:
    """An upload as it arrives: each piece is counted against the upload limit and the storage
    limit before it is written, so that nothing past either reaches the disk; written to a
    hidden part file, renamed and checked by ``finish``."""

    def __init__(self, uploads: Uploads, name: str, kind: str) -> None:
        if kind not in ("clip", "style"):
            raise UploadError(f"upload kind must be clip or style, not {kind!r}")
        self.uploads, self.kind, self.name = uploads, kind, display_name(name)
        ext = Path(self.name).suffix.lower()
        allowed = CLIP_EXTS | IMAGE_EXTS if kind == "clip" else IMAGE_EXTS
        if ext not in allowed:
            raise UploadError(f"{self.name}: a {kind} must be one of {', '.join(sorted(allowed))}")
        self.id = secrets.token_hex(8)
        self.path = uploads.folder / f"{self.id}{ext}"
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.size = 0
        self.out: BinaryIO | None = open(self.tmp, "xb")

    def write(self, data: bytes) -> None:
        if self.out is None or not data:
            return
        size = self.size + len(data)
        if size > self.uploads.limit:
            raise UploadError(f"{self.name} is larger than the studio's upload limit "
                              f"({self.uploads.limit >> 20} MiB; start it with --max-upload MB)")
        self.uploads.make_room(size)
        self.out.write(data)
        self.size = size

    def finish(self) -> Item:
        """The upload, checked and listed; UploadError (and nothing left on disk) if it is not one."""
        try:
            if self.out is not None:
                self.out.close()
                self.out = None
            if self.size == 0:
                raise UploadError(f"{self.name} is empty")
            self.tmp.replace(self.path)
            item = self.uploads.check(self.id, self.kind, self.name, self.path)
        except BaseException:
            self.abort()
            raise
        item = replace(item, size=self.size, added=time.time())
        self.uploads.add(item)
        return item

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        self.tmp.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


class Uploads:
    """The uploads folder and what is in it. ``storage`` bounds the bytes of all uploads together
    (0: no bound): to make room, the uploads no render needs (``in_use`` names those it does)
    are removed oldest first, each reported to ``removed``; past that, an upload is refused."""

    def __init__(self, folder: Path, limit: int, storage: int = 0, max_pixels: int = MAX_PIXELS, *,
                 in_use: Callable[[], set[str]] = set, removed: Callable[[Item], None] = lambda item: None) -> None:
        self.folder, self.limit, self.storage, self.max_pixels = folder, limit, storage, max_pixels
        self.in_use, self.removed = in_use, removed
        folder.mkdir(parents=True, exist_ok=True)
        self.items: dict[str, Item] = {}
        self.lock = threading.Lock()

    def get(self, item_id: str, kind: str | None = None) -> Item:
        item = self.items.get(item_id)
        if item is None or (kind is not None and item.kind != kind):
            raise UploadError(f"no such {kind or 'upload'}: {item_id!r}")
        return item

    def used(self) -> int:
        return sum(i.size for i in self.items.values())

    def add(self, item: Item) -> None:
        with self.lock:
            self.items[item.id] = item

    def make_room(self, size: int) -> None:
        """Room for an upload of ``size`` bytes within the storage limit: the oldest uploads no
        render needs are removed until it fits; UploadError if it cannot."""
        if not self.storage:
            return
        if size > self.storage:
            raise UploadError(f"the upload is larger than the studio's storage limit ({self.storage >> 20} MiB; "
                              "start it with --max-storage MB)")
        gone = []
        with self.lock:
            needed = set(self.in_use())
            for item in sorted(self.items.values(), key=lambda i: i.added):
                if self.used() + size <= self.storage:
                    break
                if item.id not in needed:
                    del self.items[item.id]
                    gone.append(item)
            full = self.used() + size > self.storage
        for item in gone:
            item.path.unlink(missing_ok=True)
            self.removed(item)
        if full:
            raise UploadError(f"the studio's uploads fill its storage limit ({self.storage >> 20} MiB) with files "
                              "that renders still need: finish or delete those renders, or start it with "
                              "--max-storage MB")

    def begin(self, name: str, kind: str) -> Incoming:
        return Incoming(self, name, kind)

    def save(self, name: str, kind: str, stream: BinaryIO) -> Item:
        """Copy ``stream`` in (at most ``limit`` bytes) under a generated name and check it."""
        incoming = self.begin(name, kind)
        try:
            while chunk := stream.read(CHUNK):
                incoming.write(chunk)
        except BaseException:
            incoming.abort()
            raise
        return incoming.finish()

    def restore(self, records: list[dict[str, Any]]) -> None:
        """The uploads an earlier session listed, where their files are still here."""
        for rec in records:
            item = Item.from_record(self.folder, rec)
            if item is not None:
                self.items[item.id] = item

    def check(self, item_id: str, kind: str, name: str, path: Path) -> Item:
        """The upload at ``path`` as an Item: its size from the header (refused over ``max_pixels``
        before a pixel is decoded), then its first picture decoded."""
        if kind == "style" or path.suffix.lower() in IMAGE_EXTS:
            size = header_size(path)
            if size is not None:
                try:
                    check_pixels(*size, self.max_pixels, name)
                except VideostyleError as exc:
                    raise UploadError(in_flags(exc)) from None
            try:
                img = read_image(path, "image", self.max_pixels)
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
            info = probe(path, max_pixels=self.max_pixels)
            first = next(iter(read_frames(path, max_frames=1, info=info)), None)
        except VideostyleError as exc:
            raise UploadError(f"{name}: {in_flags(exc).replace(f'input {path} ', '')}") from None
        if first is None:
            raise UploadError(f"{name} has no frame that decodes")
        return Item(item_id, kind, name, path, info.width, info.height, info.frames, float(info.fps), info.duration,
                    info=info)

    def frame(self, item: Item, t: float) -> np.ndarray:
        """The clip's frame at ``t`` seconds (the last one when past the end)."""
        if item.kind == "style" or item.still:
            return read_image(item.path, "image", self.max_pixels)
        at = max(0.0, min(t, (item.duration or 0.0) - 1.0 / (item.fps or 24.0)))
        fr = next(iter(read_frames(item.path, start=at, max_frames=1, info=item.info)), None)
        if fr is None:
            fr = next(iter(read_frames(item.path, max_frames=1, info=item.info)), None)
        if fr is None:
            raise UploadError(f"{item.name} has no frame that decodes")
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
