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

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway import __version__
from gateway.config import ServerConfig

from .admission import StreamHub
from .app import create_app

log = logging.getLogger("gateway")

WS_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one WebSocket message; larger ones close the stream (1009)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, without a false error.

    After a denial response (401, 503) it still takes the handshake for
    pending and logs "ASGI callable returned without completing handshake"
    at ERROR on every refused stream, which would page whoever alerts on
    errors whenever admission control works as meant (Kludex/uvicorn#3138,
    open). The client got its response; the handshake is over.
    """

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
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


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
    settings: dict[str, Any] = dict(
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        ws=WebSocketProtocol,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        limit_concurrency=config.max_connections or None,
        # Streams were finalised (or given up on) by the drain before this.
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Config(app, **(settings | overrides))


def serve(config: ServerConfig) -> None:
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    server = GatewayServer(uvicorn_config(app, config), app.state.hub, config.drain_timeout_s)
    print(f"stt-gateway {__version__}\n{config.describe()}", flush=True)
    print(f"stream:  ws://{config.host}:{config.port}/v0/audio/stream", flush=True)
    print(f"batch:   http://{config.host}:{config.port}/v0/audio/transcriptions", flush=True)
    if app.state.demo_served:
        print(f"demo:    http://{config.host}:{config.port}/", flush=True)
    server.run()
