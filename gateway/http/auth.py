"""Who may call the gateway, and what each caller may see.

API keys (compared in constant time, never logged) are required on every
route but the health probes and the demo's static files when the server has
any. A key is a tenant: it sees only the sessions opened with it, unless it
is an admin key (``--admin-key``), which sees every session. Which web pages
may open streams (``Origins``) and which names the server answers to
(``Hosts``: DNS rebinding) are checked here too. ``exposure_refusal`` keeps
a gateway from starting anonymous on a network by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.frontdoors.dialect import bearer_token

from .errors import openai_error

PUBLIC_PATHS = ("/healthz", "/readyz")


TELEPHONY_TENANT = "telephony"  # calls a signature proved (no key): seen by admin keys only


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as far as sessions go: ``tenant`` None means the
    server has no keys (everyone sees everything, as documented)."""

    tenant: str | None
    admin: bool = False

    def sees(self, owner: str | None) -> bool:
        return self.admin or self.tenant is None or owner == self.tenant


class Keys:
    """The server's API keys and admin keys; none means no authentication."""

    def __init__(self, keys: tuple[str, ...], admin_keys: tuple[str, ...] = ()):
        self._keys = [k.encode() for k in keys if k]
        self._admin = [k.encode() for k in admin_keys if k]

    @property
    def required(self) -> bool:
        return bool(self._keys or self._admin)

    def valid(self, key: str | None) -> bool:
        return self._matches(key, self._keys + self._admin)

    def is_admin(self, key: str | None) -> bool:
        return self._matches(key, self._admin)

    @staticmethod
    def _matches(key: str | None, keys: list[bytes]) -> bool:
        if key is None:
            return False
        candidate = key.encode()
        # Compare against every key so timing does not reveal which matched.
        matches = [hmac.compare_digest(candidate, k) for k in keys]
        return any(matches)

    def tenant(self, key: str | None) -> str | None:
        """The owner a valid key's sessions get: a digest of it (never the
        key); None when the server has no keys."""
        if not self.required or key is None:
            return None
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def viewer(self, key: str | None) -> Viewer:
        """Who a request with ``key`` (already checked) is."""
        if not self.required:
            return Viewer(None)
        return Viewer(self.tenant(key) or "", self.is_admin(key))


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


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Hosts:
    """Which names the server answers to (the ``Host`` header).

    A page on another site can point its own name at 127.0.0.1 (DNS
    rebinding) and so reach a gateway on the user's machine as "same
    origin", which the Origin check cannot see; the name it used is in
    ``Host``. ``allowed`` empty: on a loopback bind, the loopback names and
    the bound address; on any other bind, any name (a proxy in front sets
    it). "*": any. A request without ``Host`` (HTTP/1.0) is not a browser's.
    """

    def __init__(self, allowed: tuple[str, ...], bind_host: str):
        names = {h.strip().lower().strip("[]") for h in allowed if h.strip()}
        if not names and is_loopback(bind_host):
            names = {*LOOPBACK_NAMES, bind_host.lower().strip("[]")}
        self.any = not names or "*" in names
        self.names = frozenset(names)

    def permit(self, host: str | None) -> bool:
        if self.any or not host:
            return True
        return host_name(host) in self.names


def host_name(host: str) -> str:
    """The name of a ``Host`` value, without its port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_refused(host: str) -> JSONResponse:
    return openai_error(
        421, f"this server does not answer to the name {host!r} (see --allowed-hosts)", code="host_not_allowed"
    )


class HostCheck:
    """421 for a request (or upgrade) whose ``Host`` is not one of the server's names."""

    def __init__(self, app: ASGIApp, hosts: Hosts):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.hosts.any:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if not self.hosts.permit(host):
                refusal = host_refused(host or "")
                if scope["type"] == "websocket":
                    await WebSocket(scope, receive, send).send_denial_response(refusal)
                else:
                    await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def exposure_refusal(host: str, keys: Keys, allow_anonymous: bool) -> str | None:
    """Why a server must not start this way, or None: anonymous (no keys)
    on an address other than loopback needs ``--allow-anonymous``."""
    if keys.required or allow_anonymous or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without API keys: anyone who can reach the port could stream, upload, "
        "and list and follow every session. Give keys (--api-key, env STT_GATEWAY_API_KEYS; --admin-key for a "
        "supervisor), or accept that with --allow-anonymous (env STT_GATEWAY_ALLOW_ANONYMOUS=1)"
    )


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
