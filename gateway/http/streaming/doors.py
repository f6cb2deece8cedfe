"""Opening a streaming front door: the same for every dialect.

``door_table`` is every door: a path and the dialect spoken there, with its
server settings; the app mounts them in a loop. ``StreamDoors.endpoint(door)``
is a door's WebSocket route. For each upgrade it reads the dialect's
``Opening`` (or ``Refusal``), passes the gates (origin, key, admission:
``gateway.http.gates``), takes the options (bad ones: the dialect's error,
then its close code), accepts, and runs the session under an engine lease
until it closes, counting it in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from gateway.config import ServerConfig
from gateway.core.errors import ProtocolError
from gateway.core.events import ErrorEvent
from gateway.core.options import SessionOptions, parse_options
from gateway.core.session import ModelCatalog, StreamSession
from gateway.core.settings import StreamSettings
from gateway.frontdoors.assemblyai import AssemblyAIDialect
from gateway.frontdoors.deepgram import DeepgramDialect
from gateway.frontdoors.dialect import CLOSE_POLICY, Dialect, Opening, Refusal
from gateway.frontdoors.native import NativeDialect
from gateway.frontdoors.openai import OpenAIRealtimeDialect
from gateway.frontdoors.twilio import TwilioDialect, TwilioSettings
from gateway.inference.engine import Engine

from .. import observability as metrics
from ..admission import StreamHub
from ..auth import TELEPHONY_TENANT, Keys, Origins
from ..errors import openai_error
from ..gates import Gates, upgrade_of
from ..sessions import SessionRecord, SessionRegistry
from ..webhooks import WebhookURLError, webhook_target
from .runner import StreamLimits, StreamRunner, Tee, send_frame

log = logging.getLogger("gateway")
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Twilio's call ids: only its door names sessions so, a stream cannot squat a call to come.
TELEPHONY_ID = re.compile(r"CA[0-9a-fA-F]{32}")
OPENING_MESSAGES = 16  # an in-band opening (Twilio's connected, start) takes at most this many


@dataclass(frozen=True)
class Door:
    """A streaming front door: where it is, the dialect spoken there, and
    the server's settings that dialect's opening reads."""

    path: str
    dialect: type[Dialect]
    settings: Any = None


def door_table(config: ServerConfig) -> tuple[Door, ...]:
    """Every streaming front door of a server."""
    return (
        Door("/v0/audio/stream", NativeDialect),
        Door("/v1/realtime", OpenAIRealtimeDialect),
        Door("/v1/listen", DeepgramDialect),
        Door("/v3/ws", AssemblyAIDialect),
        Door("/v0/telephony/twilio", TwilioDialect, TwilioSettings(config.twilio_auth_token, config.public_url)),
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
        self.gates = Gates(keys, origins, hub)
        self.defaults = defaults
        self.settings = settings
        self.languages = languages
        self.limits = limits
        self.sessions = sessions or SessionRegistry()
        self.webhook_hosts = frozenset(webhook_hosts)
        self.opening_timeout_s = opening_timeout_s  # an in-band opening's deadline (the header timeout)

    def endpoint(self, door: Door) -> Callable[[WebSocket], Awaitable[None]]:
        """The WebSocket route of ``door``."""

        async def route(websocket: WebSocket) -> None:
            await self.open(websocket, door)

        route.__name__ = f"{door.dialect.name}_stream"
        return route

    async def open(self, websocket: WebSocket, door: Door) -> None:
        """Open a stream, in this order: what the upgrade says (a bad
        signature is told first), the gates (origin, key, admission), the
        in-band opening for a door that has one (then its key), the options
        and the session's name, the session; then run it."""
        upgrade = upgrade_of(websocket)
        opening = door.dialect.opening(upgrade, door.settings)
        if isinstance(opening, Refusal) and opening.unauthorized:
            metrics.streams_total.labels("unauthorized").inc()
            await websocket.send_denial_response(refusal_answer(opening))
            return
        signed = isinstance(opening, Opening) and opening.signed
        in_band = isinstance(opening, Opening) and opening.in_band
        closed = self.gates.closed(upgrade, opening.api_key, key_needed=not (signed or in_band))
        if closed is not None:
            metrics.streams_total.labels(closed.outcome).inc()
            await websocket.send_denial_response(closed.answer)
            return
        if in_band:
            assert isinstance(opening, Opening)
            await websocket.accept(subprotocol=opening.subprotocol)
            completed = await self._open_in_band(websocket, door, opening)
            if completed is None:
                return
            opening = completed
            if not signed and not self.gates.key_valid(opening.api_key):
                metrics.streams_total.labels("unauthorized").inc()
                await websocket.close(CLOSE_POLICY, "unauthorized: a valid api_key is needed")
                return
        if isinstance(opening, Opening):
            owner = self._owner(opening)
            try:
                options = parse_options(opening.options, self.defaults, self.languages, self.settings.max_prompt_chars)
                session_id = self._session_id(door.dialect, opening, owner, options)
                webhook = self._webhook_url(opening)
                session = StreamSession(options, self.catalog, self.languages, self.settings, session_id=session_id)
            except ProtocolError as exc:
                opening = door.dialect.refused(exc, opening.api_key, opening.subprotocol)
        if isinstance(opening, Refusal):
            metrics.streams_total.labels("invalid_config").inc()
            if in_band:  # accepted already; the reason goes in the close frame and the log
                log.info("%s stream refused: %s", door.dialect.name, opening.message)
                await websocket.close(CLOSE_POLICY, opening.message[:120])
            else:
                await self._refuse(websocket, door.dialect, opening)
            return
        dialect = door.dialect(opening)
        if not in_band:
            await websocket.accept(subprotocol=opening.subprotocol)
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

    async def _open_in_band(self, websocket: WebSocket, door: Door, upgraded: Opening) -> Opening | None:
        """Feed the dialect its opening messages, within bounds: at most
        ``OPENING_MESSAGES`` of them, within the header timeout. None: the
        client left, or was told why not and closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.opening_timeout_s or 10.0)
        try:
            for _ in range(OPENING_MESSAGES):
                message = await asyncio.wait_for(websocket.receive(), max(0.0, deadline - loop.time()))
                if message["type"] == "websocket.disconnect":
                    return None
                frame = message.get("text") if message.get("text") is not None else message.get("bytes")
                opening = door.dialect.opening_frame(frame, upgraded) if frame is not None else None
                if opening is not None:
                    return opening
            reason = f"no start within the first {OPENING_MESSAGES} messages"
        except asyncio.TimeoutError:
            reason = "no start message in time"
        except ProtocolError as exc:
            reason = exc.message
        log.info("%s stream not opened: %s", door.dialect.name, reason)
        await websocket.close(CLOSE_POLICY, reason[:120])
        return None

    @contextlib.contextmanager
    def _tracked(self, record: SessionRecord) -> Iterator[None]:
        try:
            yield
        finally:
            self.sessions.close(record)

    def _webhook_url(self, opening: Opening) -> str | None:
        """A session's own webhook: only to the hosts the server allows (no request forgery)."""
        url = opening.webhook_url
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

    def _owner(self, opening: Opening) -> str | None:
        """The tenant the session belongs to: its key's; a call that a
        signature proved without a key belongs to the telephony tenant (admin keys see it)."""
        keys = self.gates.keys
        if not keys.required:
            return None
        if keys.valid(opening.api_key):
            return keys.tenant(opening.api_key)
        assert opening.signed, "a session opened without a valid key needs a proof of its own"
        return TELEPHONY_TENANT

    def _session_id(self, dialect: type[Dialect], opening: Opening, owner: str | None, options: SessionOptions) -> str | None:
        """The id a client asks for: a name of 1 to 128 letters, digits and
        ``._:-``, not one of its owner's live or kept sessions (unless it
        resumes that one), and not a telephony call's id on another door."""
        wanted = opening.session_id
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
    async def _refuse(websocket: WebSocket, dialect: type[Dialect], refusal: Refusal) -> None:
        """An opening refused: an HTTP answer where the door's clients expect
        one, else its fatal error event, then its close code."""
        if refusal.status is not None:
            await websocket.send_denial_response(refusal_answer(refusal))
            return
        await websocket.accept(subprotocol=refusal.subprotocol)
        event = ErrorEvent(refusal.code, refusal.message, True)
        speaker = dialect(Opening(subprotocol=refusal.subprotocol))  # no session: only its error is spoken
        for frame in speaker.frames(event):
            await send_frame(websocket, frame)
        await websocket.close(speaker.close_code(event) or CLOSE_POLICY)


def refusal_answer(refusal: Refusal) -> JSONResponse:
    """The HTTP answer of a refusal at the upgrade: the door's own body, else the one error body."""
    assert refusal.status is not None
    if refusal.body is not None:
        return JSONResponse(dict(refusal.body), status_code=refusal.status)
    return openai_error(refusal.status, refusal.message, code=refusal.code)
