"""Who may call the gateway: API keys (compared in constant time, never
logged, required on every route but the health probes and the demo's static
files when the server has any), and which web pages may open streams."""

from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.frontdoors.dialect import bearer_token

from .errors import openai_error

PUBLIC_PATHS = ("/healthz", "/readyz")


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


class Origins:
    """Which web pages may open a stream (the upgrade's ``Origin`` header).

    Without keys, any page a user opens could otherwise stream to a gateway
    on their machine and read the transcripts. Allowed: clients that send
    no Origin (they are not browsers), the gateway's own origin (its demo),
    and the configured ones ("*": any).
    """

    def __init__(self, allowed: tuple[str, ...]):
        self.any = "*" in allowed
        self.allowed = {o.rstrip("/").lower() for o in allowed if o != "*"}

    def permit(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.any:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        return host is not None and urlsplit(origin).netloc == host.lower()


def origin_refused(origin: str) -> JSONResponse:
    return openai_error(
        403, f"pages from {origin} may not open streams on this server (see --allowed-origins)", code="origin_not_allowed"
    )


# A key in a query string (?api_key=, ?token=, ?key=) would land in the access log.
_SECRET_QUERY = re.compile(r"([?&](?:api_key|apikey|key|token|access_token)=)[^&\s\"]*", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Masks key-like query parameters in uvicorn's log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1<redacted>", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET_QUERY.sub(r"\1<redacted>", record.msg)
        return True


def redact_secrets_in_logs() -> None:
    """Install ``RedactSecrets`` on uvicorn's loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
