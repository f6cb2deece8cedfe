"""Limits on what a request may make the server read."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import observability as metrics
from .errors import openai_error


class UploadLimit:
    """413 for a body larger than the configured upload size.

    A declared Content-Length over the limit is refused before the body is
    read; a body without one (chunked) is counted as it arrives. FastAPI turns
    any error raised while it parses a form into a 400 ("error parsing the
    body"), so the refusal is made here, on the way out: once the limit is
    crossed, whatever response the app starts is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST" and "/audio/" in scope["path"]):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0
        exceeded = refused = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def refuse() -> None:
            nonlocal refused
            if not refused:
                refused = True
                await too_large(self.max_bytes)(scope, receive, send)

        async def guarded(message: Message) -> None:
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await refuse()  # the app's own answer to the aborted body is dropped

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            await refuse()


class _TooLarge(Exception):
    pass


def too_large(max_bytes: int) -> JSONResponse:
    metrics.batch_requests.labels("413").inc()
    return openai_error(413, f"the upload is larger than the limit of {max_bytes / 1e6:g} MB", "file", "file_too_large")
