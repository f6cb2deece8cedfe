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

    def __init__(self, config: uvicorn.Config, hub: StreamHub):
        super().__init__(config)
        self.hub = hub
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or not self.started:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        log.info("signal %s: finalising %d open stream(s) before exit", signal.Signals(sig).name, len(self.hub.runners))
        loop = asyncio.get_event_loop()

        async def drain_then_exit() -> None:
            await self.hub.drain()
            super(GatewayServer, self).handle_exit(sig, frame)

        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit()))


def serve(config: ServerConfig) -> None:
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        ws=WebSocketProtocol,
        ws_max_size=4 * 1024 * 1024,
        timeout_graceful_shutdown=10,
    )
    server = GatewayServer(uv_config, app.state.hub)
    print(f"stt-gateway {__version__}\n{config.describe()}", flush=True)
    print(f"stream:  ws://{config.host}:{config.port}/v0/audio/stream", flush=True)
    print(f"batch:   http://{config.host}:{config.port}/v0/audio/transcriptions", flush=True)
    if app.state.demo_served:
        print(f"demo:    http://{config.host}:{config.port}/", flush=True)
    server.run()
