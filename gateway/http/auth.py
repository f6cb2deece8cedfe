"""API keys: compared in constant time, never logged, required on every route
but ``/healthz`` and the demo's static files when the server has any."""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.frontdoors.dialect import bearer_token

from .errors import openai_error

PUBLIC_PATHS = ("/healthz",)


class Keys:
    """The server's API keys; none means no authentication."""

    def __init__(self, keys: tuple[str, ...]):
        self._keys = [k.encode() for k in keys if k]

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def valid(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = key.encode()
        # Compare against every key so timing does not reveal which matched.
        matches = [hmac.compare_digest(candidate, k) for k in self._keys]
        return any(matches)


def unauthorized() -> JSONResponse:
    return openai_error(
        401, "missing or invalid API key: send Authorization: Bearer <key>", code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


class AuthMiddleware:
    """401 on every HTTP route but the public ones (streams check their own upgrade)."""

    def __init__(self, app: ASGIApp, keys: Keys, public_prefixes: tuple[str, ...]):
        self.app = app
        self.keys = keys
        self.public_prefixes = public_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys.required:
            path = scope["path"]
            public = path in PUBLIC_PATHS or path == "/" or path.startswith(self.public_prefixes)
            if not public:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                if not self.keys.valid(bearer_token(headers.get("authorization"))):
                    await unauthorized()(scope, receive, send)
                    return
        await self.app(scope, receive, send)
