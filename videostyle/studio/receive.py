"""An upload's body, parsed as it arrives: the multipart form's file part goes straight into the
uploads folder, counted against the limits piece by piece, so that a body without a length
(chunked) is cut at the limit and nothing past it reaches the disk (Starlette's own form parser
spools the whole body to a temporary file first)."""

from __future__ import annotations

import asyncio
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from videostyle.errors import in_flags
from videostyle.studio.media import Incoming, Item, UploadError, Uploads

DRAIN = 256 << 20  # bytes of a refused body read (and dropped) so that the client hears the answer


class Refused(UploadError):
    """An upload refused with an HTTP status (413 for a limit, 400 otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Form:
    """The parser's callbacks: the headers of each part, and the file part's bytes into an Incoming."""

    def __init__(self, uploads: Uploads, kind: str) -> None:
        self.uploads, self.kind = uploads, kind
        self.field, self.value = b"", b""
        self.headers: dict[bytes, bytes] = {}
        self.incoming: Incoming | None = None
        self.writing = False
        self.files = 0

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.headers, self.writing = {}, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        filename = options.get(b"filename")
        if options.get(b"name") != b"file" or filename is None:
            return  # (another field: ignored)
        self.files += 1
        if self.files > 1:
            raise Refused("the upload has more than one file: send one at a time")
        self.incoming = self.uploads.begin(filename.decode("utf-8", "replace") or "upload", self.kind)
        self.writing = True

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing and self.incoming is not None:
            try:
                self.incoming.write(data[start:end])
            except UploadError as exc:
                raise Refused(in_flags(exc), 413) from None

    def part_end(self) -> None:
        self.writing = False


async def _drain(stream: Any, most: int | None = DRAIN) -> None:
    """Read on (dropping it, up to ``most`` bytes; None: to the end) before answering: a server
    that answers and closes while the client still sends leaves the client a broken pipe instead
    of the message."""
    drained = 0
    try:
        async for chunk in stream:
            drained += len(chunk)
            if most is not None and drained > most:
                break
    except Exception:
        pass


async def receive_upload(request: Request, uploads: Uploads, kind: str) -> Item:
    """The request's multipart file, saved and checked; Refused with a status and a message."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > uploads.limit + (1 << 16):
        # A body that says it is over the limit is refused before anything is written, read to its
        # end (the page checks the size before it sends, so this is for other clients).
        await _drain(request.stream(), None)
        raise Refused(f"the upload is larger than the studio's limit ({uploads.limit >> 20} MiB; "
                      "start it with --max-upload MB)", 413)
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise Refused("the upload is not a multipart form with a file")
    form = _Form(uploads, kind)
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    stream = request.stream()
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        if form.incoming is not None:
            form.incoming.abort()
        if not isinstance(exc, Exception):
            raise
        await _drain(stream)
        if isinstance(exc, Refused):
            raise
        if isinstance(exc, UploadError):
            raise Refused(in_flags(exc)) from None
        raise Refused("the upload is not a multipart form with a file") from None
    if form.incoming is None:
        raise Refused("the upload has no file")
    try:
        return await asyncio.to_thread(form.incoming.finish)
    except UploadError as exc:
        raise Refused(in_flags(exc)) from None
