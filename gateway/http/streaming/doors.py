"""Opening a streaming front door: the same for every dialect.

``StreamDoors.endpoint(Dialect)`` is the WebSocket route of a door. For
each upgrade it checks the key (401) and admission (503 with
``Retry-After``), takes the options the dialect reads from the request
(bad ones: the dialect's error, then its close code), accepts, and runs the
session under an engine lease until it closes, counting it in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterator

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from gateway.core.errors import ProtocolError
from gateway.core.events import ErrorEvent
from gateway.core.options import SessionOptions, parse_options
from gateway.core.session import ModelCatalog, StreamSession
from gateway.core.settings import StreamSettings
from gateway.frontdoors.dialect import CLOSE_POLICY, Dialect, Upgrade
from gateway.inference.engine import Engine

from .. import observability as metrics
from ..admission import StreamHub
from ..auth import TELEPHONY_TENANT, Keys, Origins, origin_refused, unauthorized
from ..errors import openai_error
from ..sessions import SessionRecord, SessionRegistry
from ..webhooks import WebhookURLError, webhook_target
from .runner import StreamLimits, StreamRunner, Tee, send_frame

log = logging.getLogger("gateway")
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Twilio's call ids: only its door names sessions so, a stream cannot squat a call to come.
TELEPHONY_ID = re.compile(r"CA[0-9a-fA-F]{32}")
OPENING_MESSAGES = 16  # an in-band opening (Twilio's connected, start) takes at most this many


def upgrade_of(websocket: WebSocket) -> Upgrade:
    return Upgrade(
        path=websocket.url.path,
        query=tuple(websocket.query_params.multi_items()),
        headers={k.lower(): v for k, v in websocket.headers.items()},
        subprotocols=tuple(websocket.scope.get("subprotocols", [])),
    )


class StreamDoors:
    def __init__(
        self,
        engine: Engine,
        catalog: ModelCatalog,
        hub: StreamHub,
        keys: Keys,
        defaults: SessionOptions,
        settings: StreamSettings,
        languages: Collection[str],
        limits: StreamLimits = StreamLimits(),
        origins: Origins = Origins(()),
        sessions: SessionRegistry | None = None,
        opening_timeout_s: float = 10.0,
        webhook_hosts: Collection[str] = (),
    ):
        self.engine = engine
        self.catalog = catalog
        self.hub = hub
        self.keys = keys
        self.defaults = defaults
        self.settings = settings
        self.languages = languages
        self.limits = limits
        self.origins = origins
        self.sessions = sessions or SessionRegistry()
        self.webhook_hosts = frozenset(webhook_hosts)
        self.opening_timeout_s = opening_timeout_s  # an in-band opening's deadline (the header timeout)

    def endpoint(self, dialect: type[Dialect]) -> Callable[[WebSocket], Awaitable[None]]:
        """The WebSocket route of the front door that speaks ``dialect``."""

        async def door(websocket: WebSocket) -> None:
            await self.open(websocket, dialect(upgrade_of(websocket)))

        door.__name__ = f"{dialect.name}_stream"
        return door

    async def open(self, websocket: WebSocket, dialect: Dialect) -> None:
        denial = dialect.upgrade_refusal()
        if denial is not None:
            metrics.streams_total.labels("unauthorized").inc()
            await websocket.send_denial_response(JSONResponse(denial[1], status_code=denial[0]))
            return
        origin = dialect.upgrade.header("origin")
        if not self.origins.permit(origin, dialect.upgrade.header("host")):
            metrics.streams_total.labels("origin_refused").inc()
            await websocket.send_denial_response(origin_refused(origin or ""))
            return
        key_needed = self.keys.required and not dialect.authorized_at_upgrade()
        if key_needed and not dialect.opens_in_band and not self.keys.valid(dialect.api_key()):
            metrics.streams_total.labels("unauthorized").inc()
            await websocket.send_denial_response(unauthorized())
            return
        refusal = self.hub.refusal()
        if refusal is not None:
            reason, retry_after = refusal
            metrics.streams_total.labels("draining" if self.hub.draining else "at_capacity").inc()
            await websocket.send_denial_response(
                openai_error(503, reason, code="at_capacity", headers={"Retry-After": str(retry_after)})
            )
            return
        if dialect.opens_in_band:
            await websocket.accept(subprotocol=dialect.subprotocol())
            if not await self._open_in_band(websocket, dialect):
                return
            if key_needed and not self.keys.valid(dialect.api_key()):
                metrics.streams_total.labels("unauthorized").inc()
                await websocket.close(CLOSE_POLICY, "unauthorized: a valid api_key is needed")
                return
        owner = self._owner(dialect, key_needed)
        try:
            options = parse_options(dialect.options(), self.defaults, self.languages, self.settings.max_prompt_chars)
            session_id = self._session_id(dialect, owner, options)
            webhook = self._webhook_url(dialect)
            session = StreamSession(options, self.catalog, self.languages, self.settings, session_id=session_id)
        except ProtocolError as exc:
            metrics.streams_total.labels("invalid_config").inc()
            if dialect.opens_in_band:  # accepted already; the reason goes in the close frame and the log
                log.info("%s stream refused: %s", dialect.name, exc.message)
                await websocket.close(CLOSE_POLICY, exc.message[:120])
            else:
                await self._refuse(websocket, dialect, exc)
            return
        if not dialect.opens_in_band:
            await websocket.accept(subprotocol=dialect.subprotocol())
        record = self.sessions.open(session, dialect.name, webhook, owner)  # followed by subscribers from now on
        runner = StreamRunner(websocket, session, dialect, self.engine, Tee(metrics.StreamMetrics(dialect.name), record), self.limits)
        with self.hub.open(runner), self._tracked(record):
            metrics.streams_active.labels(dialect.name).inc()
            log.info(
                "stream %s opened (%s): %s", session.session_id, dialect.name,
                options.to_dict() | {"prompt": bool(options.prompt)},
            )
            try:
                await runner.run()
            finally:
                metrics.streams_active.labels(dialect.name).dec()
                gone = runner.detached or session.detached
                outcome = "slow_consumer" if runner.slow else "detached" if gone else "closed"
                metrics.streams_total.labels(outcome).inc()
                log.info("stream %s closed after %.1f s of audio", session.session_id, session.duration)

    async def _open_in_band(self, websocket: WebSocket, dialect: Dialect) -> bool:
        """Feed the dialect its opening messages, within bounds: at most
        ``OPENING_MESSAGES`` of them, within the header timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.opening_timeout_s or 10.0)
        try:
            for _ in range(OPENING_MESSAGES):
                message = await asyncio.wait_for(websocket.receive(), max(0.0, deadline - loop.time()))
                if message["type"] == "websocket.disconnect":
                    return False
                frame = message.get("text") if message.get("text") is not None else message.get("bytes")
                if frame is not None and dialect.open_with(frame):
                    return True
            reason = f"no start within the first {OPENING_MESSAGES} messages"
        except asyncio.TimeoutError:
            reason = "no start message in time"
        except ProtocolError as exc:
            reason = exc.message
        log.info("%s stream not opened: %s", dialect.name, reason)
        await websocket.close(CLOSE_POLICY, reason[:120])
        return False

    @contextlib.contextmanager
    def _tracked(self, record: SessionRecord) -> Iterator[None]:
        try:
            yield
        finally:
            self.sessions.close(record)

    def _webhook_url(self, dialect: Dialect) -> str | None:
        """A session's own webhook: only to the hosts the server allows (no request forgery)."""
        url = dialect.webhook_url()
        if url is None:
            return None
        if self.sessions.outbox is None:
            raise ProtocolError(
                "invalid_config", "this server takes no per-session webhook_url (it has no --webhook-allow-hosts)", fatal=True
            )
        try:
            return webhook_target(url, self.webhook_hosts)
        except WebhookURLError as exc:
            raise ProtocolError("invalid_config", str(exc), fatal=True) from None

    def _owner(self, dialect: Dialect, key_needed: bool) -> str | None:
        """The tenant the session belongs to: its key's; a call that a
        signature proved without a key belongs to the telephony tenant (admin keys see it)."""
        if not self.keys.required:
            return None
        key = dialect.api_key()
        if self.keys.valid(key):
            return self.keys.tenant(key)
        assert not key_needed, "a session opened without a valid key needs a proof of its own"
        return TELEPHONY_TENANT

    def _session_id(self, dialect: Dialect, owner: str | None, options: SessionOptions) -> str | None:
        """The id a client asks for: a name of 1 to 128 letters, digits and
        ``._:-``, not one of its owner's live or kept sessions (unless it
        resumes that one), and not a telephony call's id on another door."""
        wanted = dialect.session_id()
        if wanted is None:
            return None
        if not isinstance(wanted, str) or not SESSION_ID.fullmatch(wanted):
            raise ProtocolError("invalid_config", "session_id must be 1 to 128 letters, digits, '.', '_', ':' or '-'", fatal=True)
        if not dialect.telephony and TELEPHONY_ID.fullmatch(wanted):
            raise ProtocolError("invalid_config", "session_id: ids of the form CA + 32 hex digits are Twilio calls' own", fatal=True)
        refusal = self.sessions.refusal(owner, wanted, options.first_segment_id)
        if refusal is not None:
            raise ProtocolError("invalid_config", refusal, fatal=True)
        return wanted

    @staticmethod
    async def _refuse(websocket: WebSocket, dialect: Dialect, error: ProtocolError) -> None:
        """Options refused at opening: an HTTP answer where the dialect's
        clients expect one, else its error event, then its close code."""
        denial = dialect.refusal(error)
        if denial is not None:
            status, body = denial
            await websocket.send_denial_response(JSONResponse(body, status_code=status))
            return
        await websocket.accept(subprotocol=dialect.subprotocol())
        event = ErrorEvent(error.code, error.message, True)
        for frame in dialect.frames(event):
            await send_frame(websocket, frame)
        await websocket.close(dialect.close_code(event) or CLOSE_POLICY)
