"""The one error body of every HTTP answer: OpenAI's ``{"error": {...}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse


def openai_error(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The answer with ``error_body``."""
    body = error_body(status, message, param, code, **extra)
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}`` as OpenAI's clients parse it:
    ``type`` is ``invalid_request_error`` for 4xx, ``server_error`` for 5xx.
    Also what a streamed answer sends when it fails after its 200."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code, **extra}}
