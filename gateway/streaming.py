"""The WebSocket front door: moves frames between a socket and a StreamSession.

All protocol decisions live in ``gateway.session``; this adapter only reads
frames (pausing while the session applies backpressure), hands decode
requests to the engine, feeds results back on the event loop thread, and
writes events. A client that vanishes does not stop its session: what it
sent is still finalised.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .engine import Engine, EngineClosed
from .protocol import ErrorEvent, ProtocolError
from .session import DecodeRequest, SessionState, StreamSession

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011


class StreamRunner:
    """Runs one session over one accepted WebSocket until it is closed."""

    def __init__(self, websocket: WebSocket, session: StreamSession, engine: Engine, metrics=None):
        self.websocket = websocket
        self.session = session
        self.engine = engine
        self.metrics = metrics
        self._loop = asyncio.get_running_loop()
        self._futures: dict[int, Future] = {}
        self._results: asyncio.Queue = asyncio.Queue()
        self._readable = asyncio.Event()
        self._closed = asyncio.Event()
        self._close_code = CLOSE_NORMAL
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self._pump()
        reader = asyncio.create_task(self._read())
        results = asyncio.create_task(self._handle_results())
        try:
            await self._closed.wait()
        finally:
            reader.cancel()
            results.cancel()
            for future in self._futures.values():
                future.cancel()
            await asyncio.gather(reader, results, return_exceptions=True)
        if self.websocket.client_state is WebSocketState.CONNECTED and not self.session.detached:
            try:
                await self.websocket.close(self._close_code)
            except Exception:  # the peer may be gone already
                pass

    def shutdown(self) -> None:
        """Server going down: finalise the stream, then close with 1001."""
        if self.session.state is SessionState.OPEN:
            self._close_code = CLOSE_GOING_AWAY
            self.session.shutdown("the server is shutting down; your stream is being finalised")
            self._loop.create_task(self._pump())

    # -- reading ----------------------------------------------------------
    async def _read(self) -> None:
        try:
            while self.session.state is SessionState.OPEN:
                await self._readable.wait()
                if self.session.state is not SessionState.OPEN:
                    break
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1006))
                if message.get("bytes") is not None:
                    self.session.receive_audio(message["bytes"])
                    if self.metrics:
                        self.metrics.audio_bytes.inc(len(message["bytes"]))
                elif message.get("text") is not None:
                    self.session.receive_text(message["text"])
                await self._pump()
        except WebSocketDisconnect:
            self.session.connection_lost()
            await self._pump()
        except Exception:
            log.exception("stream %s: reader failed", self.session.session_id)
            self._close_code = CLOSE_INTERNAL
            self.session.connection_lost()
            await self._pump()

    # -- engine results ---------------------------------------------------
    def _submit(self, request: DecodeRequest) -> None:
        try:
            future = self.engine.submit(request.job)
        except EngineClosed:
            self.session.decoded(request.id, None, "the server is shutting down")
            return
        self._futures[request.id] = future
        future.add_done_callback(
            lambda f, rid=request.id: self._loop.call_soon_threadsafe(self._results.put_nowait, (rid, f))
        )

    async def _handle_results(self) -> None:
        while True:
            request_id, future = await self._results.get()
            self._futures.pop(request_id, None)
            if future.cancelled():
                self.session.decoded(request_id, None)
            elif future.exception() is not None:
                self.session.decoded(request_id, None, str(future.exception()) or type(future.exception()).__name__)
            else:
                self.session.decoded(request_id, future.result())
            await self._pump()

    # -- writing ----------------------------------------------------------
    async def _pump(self) -> None:
        """Act on everything the session has put in its outboxes."""
        session = self.session
        load = self.engine.load()
        session.set_load(load.pressure, load.final_decode_s)
        # Submit first: a request may be cancelled or promoted by the same input.
        for request in session.take_requests():
            self._submit(request)
        for request_id in session.take_cancellations():
            future = self._futures.get(request_id)
            if future is not None:
                future.cancel()
        for request_id in session.take_promotions():
            future = self._futures.get(request_id)
            if future is not None:
                self.engine.promote(future)
        events = session.take_events()
        if events:
            async with self._send_lock:
                for event in events:
                    if not session.detached:
                        try:
                            await self.websocket.send_text(event.to_json())
                        except Exception:  # peer gone: keep finalising, stop writing
                            session.detached = True
                    if self.metrics:
                        self.metrics.events.labels(event.type, str(not session.detached).lower()).inc()
                    if isinstance(event, ErrorEvent) and event.fatal and event.code == "invalid_config":
                        self._close_code = CLOSE_POLICY
        if session.state is SessionState.OPEN and session.wants_audio:
            self._readable.set()
        else:
            self._readable.clear()
        if session.state is SessionState.CLOSED:
            self._closed.set()


async def refuse_config(websocket: WebSocket, error: ProtocolError, subprotocol: str | None) -> None:
    """Options refused at opening: an error event, then close 1008 (per the contract)."""
    await websocket.accept(subprotocol=subprotocol)
    await websocket.send_text(ErrorEvent(error.code, error.message, True).to_json())
    await websocket.close(CLOSE_POLICY)
