"""Running the application under uvicorn, with a shutdown that finalises streams.

Stopping on SIGINT/SIGTERM first finalises every open stream (their clients
get the last finals and ``session.closed``), then exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import SecurityError

from gateway import __version__
from gateway.config import ServerConfig

from .admission import StreamHub
from .app import create_app
from .auth import Keys, exposure_refusal
from .errors import openai_error

log = logging.getLogger("gateway")

WS_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one WebSocket message; larger ones close the stream (1009)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with three mends.

    - After a denial response (401, 503) it still takes the handshake for
      pending and logs "ASGI callable returned without completing
      handshake" at ERROR on every refused stream, which would page whoever
      alerts on errors whenever admission control works as meant
      (Kludex/uvicorn#3138, open). The client got its response; the
      handshake is over.
    - An upgrade that h11 took but websockets cannot parse (a request line
      over its 8 KB, as 700 Deepgram ``keyterm``s make) left the connection
      unanswered and open for ever: websockets only records the failure,
      and uvicorn never looks. It is answered (414 or 400) and closed here;
      ten such upgrades used to fill ``--max-connections`` and make the
      health probes answer 503.
    - The header deadline (``HTTPProtocol``) ends when h11 has the headers;
      the handshake after it gets one of its own, so that no upgrade holds a
      connection unanswered.
    """

    header_timeout_s = 10.0  # set per server by uvicorn_config

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._handshake_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._handshake_too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_handshake_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None and not self.transport.is_closing():
            self._refuse_handshake()

    def _refuse_handshake(self) -> None:
        cause = self.conn.handshake_exc.__cause__ if self.conn.handshake_exc is not None else None
        too_long = isinstance(cause, SecurityError) and "line too long" in str(cause)
        status, phrase = (414, "URI Too Long") if too_long else (400, "Bad Request")
        message = "the request line or a header is longer than 8 KB" if too_long else "not a valid WebSocket upgrade request"
        body = openai_error(status, message, code="bad_request").body  # the one error body (a JSONResponse's, rendered)
        self.transport.write(
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode() + body
        )
        self.handshake_complete = self.close_sent = True
        self._end_handshake_deadline()
        self.transport.close()

    def _handshake_too_slow(self) -> None:
        self._handshake_deadline = None
        if not self.handshake_complete and not self.transport.is_closing():
            self.transport.abort()

    def _end_handshake_deadline(self) -> None:
        if self._handshake_deadline is not None:
            self._handshake_deadline.cancel()
            self._handshake_deadline = None

    async def send(self, message: Any) -> None:
        if (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and not self.close_sent
            and not self.writable.is_set()
        ):
            # The peer stopped reading and the write buffer will not drain:
            # a close frame would wait behind it for ever. Drop the connection.
            self.close_sent = True
            self.transport.abort()
            return
        await super().send(message)
        if message["type"] == "websocket.accept":
            self._end_handshake_deadline()
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True
            self._end_handshake_deadline()


class HTTPProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for a request's headers.

    uvicorn times out idle keep-alive connections, but not a client that
    opens a connection and sends its request line and headers slowly or
    never: hundreds of such half-open requests (or upgrades) would hold
    connections for ever. Past ``header_timeout_s`` without complete
    headers, the connection is closed.
    """

    header_timeout_s = 10.0  # set per server by uvicorn_config

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._headers_too_slow
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_deadline is not None and self.conn.their_state is not h11.IDLE:
            self._header_deadline.cancel()  # the request line and headers are in
            self._header_deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A kept-alive connection's next request gets the same deadline.
        if not self.transport.is_closing() and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class GatewayServer(uvicorn.Server):
    """uvicorn, except that a stop signal first finalises open streams."""

    def __init__(self, config: uvicorn.Config, hub: StreamHub, drain_timeout_s: float = 20.0):
        super().__init__(config)
        self.hub = hub
        self.drain_timeout_s = drain_timeout_s
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or not self.started:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        log.info("signal %s: finalising %d open stream(s) before exit", signal.Signals(sig).name, len(self.hub.runners))
        loop = asyncio.get_event_loop()

        async def drain_then_exit() -> None:
            await self.hub.drain(self.drain_timeout_s)
            super(GatewayServer, self).handle_exit(sig, frame)

        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit()))


def uvicorn_config(app: Any, config: ServerConfig, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for the gateway (the server and the tests share them)."""
    http = type("HTTPProtocol", (HTTPProtocol,), {"header_timeout_s": config.header_timeout_s})
    ws = type("WebSocketProtocol", (WebSocketProtocol,), {"header_timeout_s": config.header_timeout_s})
    settings: dict[str, Any] = dict(
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        http=http,
        ws=ws,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        limit_concurrency=config.max_connections or None,
        # Streams were finalised (or given up on) by the drain before this.
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Config(app, **(settings | overrides))


def serve(config: ServerConfig) -> None:
    """Run the gateway until a stop signal; ``ValueError`` for settings it must not run with."""
    refusal = exposure_refusal(config.host, Keys(config.api_keys, config.admin_keys), config.allow_anonymous)
    if refusal is not None:
        raise ValueError(refusal)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    server = GatewayServer(uvicorn_config(app, config), app.state.hub, config.drain_timeout_s)
    print(f"stt-gateway {__version__}\n{config.describe()}", flush=True)
    print(f"stream:  ws://{config.host}:{config.port}/v0/audio/stream", flush=True)
    print(f"batch:   http://{config.host}:{config.port}/v0/audio/transcriptions", flush=True)
    if app.state.demo_served:
        print(f"demo:    http://{config.host}:{config.port}/", flush=True)
    server.run()
