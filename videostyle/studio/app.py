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

from videostyle.errors import VideostyleError
from videostyle.studio.jobs import Studio
from videostyle.studio.media import UploadError

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
TOKEN_HEADER = "x-videostyle-token"


def _static(name: str) -> bytes:
    return resources.files("videostyle.studio").joinpath("static", name).read_bytes()


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
        length = int(request.headers.get("content-length") or 0)
        if length > self.studio.uploads.limit + (1 << 16):
            # Read the body to its end (keeping none of it) before answering: a server that answers
            # and closes while the client is still sending leaves the client a broken pipe instead of
            # this message. The page checks the size before it sends, so this is for other clients.
            async for _ in request.stream():
                pass
            return _error(f"the upload is larger than the studio's limit ({self.studio.uploads.limit >> 20} MiB; "
                          "start it with --max-upload MB)", 413)
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception:
            return _error("the upload is not a multipart form with a file")
        f = form.get("file")
        if f is None or isinstance(f, str):
            return _error("the upload has no file")
        try:
            item = await asyncio.to_thread(self.studio.uploads.save, f.filename or "upload", kind, f.file)
        except UploadError as exc:
            return _error(str(exc), 413 if "upload limit" in str(exc) else 400)
        finally:
            await f.close()
        self.studio.publish({"type": "upload", "item": item.public()})
        return JSONResponse(item.public())

    async def frame(self, request: Request) -> Response:
        try:
            item = self.studio.uploads.get(request.path_params["id"])
            t = float(request.query_params.get("t", "0"))
            img = await asyncio.to_thread(self.studio.uploads.frame, item, t)
        except (VideostyleError, ValueError) as exc:
            return _error(str(exc), 404)
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
            return _error(str(exc))
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
            return _error(str(exc))
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
            return _error(str(exc))
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
        start = int(request.query_params.get("since", "0") or 0)

        async def stream() -> Any:
            seq = start
            yield ": videostyle studio\n\n"
            while not await request.is_disconnected():
                new = self.studio.since(seq)
                for ev in new:
                    yield f"data: {json.dumps(ev)}\n\n"
                seq += len(new)
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def create_app(studio: Studio, token: str) -> Starlette:
    """The app over ``studio``, answering only requests that carry ``token``."""
    h = Handlers(studio, token)
    routes = [
        Route("/", h.page), Route("/static/{name}", h.static), Route("/api/state", h.state),
        Route("/api/upload", h.upload, methods=["POST"]), Route("/api/frame/{id}", h.frame),
        Route("/api/preview", h.preview, methods=["POST"]), Route("/api/preview/{pid}.png", h.preview_image),
        Route("/api/render", h.render, methods=["POST"]),
        Route("/api/jobs/{id}/{action:str}", h.job_action, methods=["POST"]),
        Route("/api/jobs/{id}/{what:str}", h.job_file), Route("/api/events", h.events),
    ]
    return TokenGuard(Starlette(routes=routes), token)  # type: ignore[return-value]


class TokenGuard:
    """ASGI middleware: 403 unless the request carries the session token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/favicon.ico":
            await Response(status_code=204)(scope, receive, send)  # (browsers ask without the token)
            return
        if scope["type"] == "http" and not self._ok(scope):
            await PlainTextResponse("forbidden: open the address the studio printed (it carries the token)",
                                    403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _ok(self, scope: dict[str, Any]) -> bool:
        from urllib.parse import parse_qs

        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0].encode()
        for k, v in scope.get("headers", []):
            if k.decode("latin-1").lower() == TOKEN_HEADER:
                given = v
        return hmac.compare_digest(given, self.token)
