"""The studio's web app (Starlette): one static page and a small JSON API, with progress as
server-sent events. Every request must carry the session's token (``?token=`` or the
``X-Videostyle-Token`` header), else 403; only the page's own files, the uploads and the outputs
are served, each found by id, never by a path from the request."""

from __future__ import annotations

import asyncio
import hmac
import json
from importlib import resources
from typing import Any

import cv2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from videostyle.errors import VideostyleError, in_flags
from videostyle.studio.jobs import Studio
from videostyle.studio.receive import Refused, receive_upload

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
TOKEN_HEADER = "x-videostyle-token"


def _static(name: str) -> bytes:
    return resources.files("videostyle.studio").joinpath("static", name).read_bytes()


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _number(request: Request, name: str, default: Any, kind: Any) -> Any:
    """Query parameter ``name`` as a finite, non-negative ``kind`` (int or float); ValueError
    with a message for anything else."""
    import math

    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"?{name}= must be a {'whole ' if kind is int else ''}number, not {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"?{name}= must be a number of 0 or more, not {raw[:40]!r}")
    return value


class Handlers:
    """The page's and the API's handlers over one studio."""

    def __init__(self, studio: Studio, token: str) -> None:
        self.studio, self.token = studio, token

    def page(self, request: Request) -> Response:
        html = _static("index.html").decode().replace("{{TOKEN}}", self.token)
        return Response(html, media_type="text/html", headers={"Cache-Control": "no-store"})

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", 404)
        return Response(_static(name), media_type=STATIC[name])

    def state(self, request: Request) -> Response:
        return JSONResponse({"upload_limit": self.studio.uploads.limit,
                             "uploads": [i.public() for i in self.studio.uploads.items.values()],
                             "jobs": [j.public() for j in self.studio.jobs.values()], "seq": len(self.studio.events)})

    async def upload(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "")
        if kind not in ("clip", "style"):
            return _error("the upload's kind must be clip or style (?kind=clip or ?kind=style)")
        try:
            item = await receive_upload(request, self.studio.uploads, kind)
        except Refused as exc:
            return _error(in_flags(exc), exc.status)
        self.studio.uploaded(item)
        return JSONResponse(item.public())

    async def frame(self, request: Request) -> Response:
        try:
            t = _number(request, "t", 0.0, float)
        except ValueError as exc:
            return _error(in_flags(exc))
        try:
            item = self.studio.uploads.get(request.path_params["id"])
            img = await asyncio.to_thread(self.studio.uploads.frame, item, t)
        except (VideostyleError, ValueError) as exc:
            return _error(in_flags(exc), 404)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return Response(data.tobytes(), media_type="image/jpeg")

    async def body(self, request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise VideostyleError("the request is not JSON") from None
        if not isinstance(data, dict):
            raise VideostyleError("the request is not a JSON object")
        return data

    async def preview(self, request: Request) -> Response:
        try:
            d = await self.body(request)
            pid = self.studio.preview(str(d.get("clip", "")), list(d.get("styles", [])), float(d.get("t", 0.0)),
                                      dict(d.get("settings", {})))
        except (VideostyleError, ValueError, TypeError) as exc:
            return _error(in_flags(exc))
        return JSONResponse({"id": pid})

    def preview_image(self, request: Request) -> Response:
        try:
            path = self.studio.preview_path(request.path_params["pid"])
        except VideostyleError:
            return PlainTextResponse("not found", 404)
        if not path.is_file():
            return PlainTextResponse("not yet", 404)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def render(self, request: Request) -> Response:
        try:
            d = await self.body(request)
            job = self.studio.render(str(d.get("clip", "")), list(d.get("styles", [])), dict(d.get("settings", {})))
        except (VideostyleError, ValueError, TypeError) as exc:
            return _error(in_flags(exc))
        return JSONResponse(job.public())

    def job_action(self, request: Request) -> Response:
        action = request.path_params["action"]
        try:
            if action == "cancel":
                job = self.studio.cancel(request.path_params["id"])
            elif action == "resume":
                job = self.studio.resume(request.path_params["id"])
            else:
                return PlainTextResponse("not found", 404)
        except VideostyleError as exc:
            return _error(in_flags(exc))
        return JSONResponse(job.public())

    def job_file(self, request: Request) -> Response:
        try:
            job = self.studio.job(request.path_params["id"])
        except VideostyleError:
            return PlainTextResponse("not found", 404)
        what = request.path_params["what"]
        latest = job.output if job.output.suffix == ".png" and job.state == "done" else job.latest
        if what == "latest.png" and latest.is_file():
            return FileResponse(latest, media_type="image/png", headers={"Cache-Control": "no-store"})
        if what == "download" and job.state == "done" and job.output.is_file():
            kind = "image/png" if job.output.suffix == ".png" else "video/mp4"
            return FileResponse(job.output, media_type=kind, filename=job.output.name)
        return PlainTextResponse("not found", 404)

    async def events(self, request: Request) -> Response:
        try:
            start = _number(request, "since", 0, int)
        except ValueError as exc:
            return _error(in_flags(exc))

        async def stream() -> Any:
            seq = start
            yield ": videostyle studio\n\n"
            while not self.studio.stopping.is_set() and not await request.is_disconnected():
                new = self.studio.since(seq)
                for ev in new:
                    yield f"data: {json.dumps(ev)}\n\n"
                seq += len(new)
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def create_app(studio: Studio, token: str, host: str = "127.0.0.1") -> Starlette:
    """The app over ``studio``, answering only requests that carry ``token`` and name a loopback
    host or ``host`` (the address it listens on) in their Host header."""
    h = Handlers(studio, token)
    routes = [
        Route("/", h.page), Route("/static/{name}", h.static), Route("/api/state", h.state),
        Route("/api/upload", h.upload, methods=["POST"]), Route("/api/frame/{id}", h.frame),
        Route("/api/preview", h.preview, methods=["POST"]), Route("/api/preview/{pid}.png", h.preview_image),
        Route("/api/render", h.render, methods=["POST"]),
        Route("/api/jobs/{id}/{action:str}", h.job_action, methods=["POST"]),
        Route("/api/jobs/{id}/{what:str}", h.job_file), Route("/api/events", h.events),
    ]
    app = Starlette(routes=routes)
    # No redirects at all: Starlette builds a trailing-slash redirect's Location from the request's Host.
    app.router.redirect_slashes = False
    return Guard(app, token, host)  # type: ignore[return-value]


# Every response's headers: the page runs only its own script and styles, loads only from the
# studio, is never framed, and sends no Referer (its URLs carry the token).
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                                 b"media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                 b"form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """The host of a Host header, without its port: ``[::1]:8000`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: 403 unless the request carries the session token, 421 unless its Host
    names a loopback address or the one the studio listens on (a DNS-rebinding page holds no
    token, but the check costs nothing), and the security headers on every response."""

    def __init__(self, app: Any, token: str, host: str = "127.0.0.1") -> None:
        self.app, self.token = app, token.encode()
        self.hosts = {*LOOPBACK, host.strip("[]").lower()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if host_name(headers.get("host", b"").decode("latin-1")) not in self.hosts:
            await PlainTextResponse("misdirected request: this studio answers only at the address it printed",
                                    421)(scope, receive, send_with_headers)
            return
        if scope.get("path") == "/favicon.ico":
            await Response(status_code=204)(scope, receive, send_with_headers)  # (browsers ask without the token)
            return
        if not self._ok(scope, headers):
            await PlainTextResponse("forbidden: open the address the studio printed (it carries the token)",
                                    403)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _ok(self, scope: dict[str, Any], headers: dict[str, bytes]) -> bool:
        from urllib.parse import parse_qs

        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0].encode()
        given = headers.get(TOKEN_HEADER, given)
        return hmac.compare_digest(given, self.token)
