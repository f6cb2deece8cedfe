"""The one runner of every front door: a session, a socket and the engine.

The runner reads frames (pausing while the session applies backpressure),
has the dialect turn them into commands for the session, carries out the
session's engine actions in the order it made them (so a request is always
submitted before it is cancelled or promoted), feeds decode results back on
the event loop thread, and sends each event as the dialect spells it. A
client that vanishes does not stop its session: what it sent is still
finalised. Nothing here knows a wire format.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gateway.core.commands import (
    Audio,
    Cancel,
    Command,
    ConnectionLost,
    DecodeCancelled,
    Decoded,
    DecodeFailed,
    DecodeRequest,
    Embedded,
    EngineAction,
    Invalid,
    LoadReport,
    Stop,
    Submit,
)
from gateway.core.errors import ProtocolError
from gateway.core.events import Event, SpeechStarted, TranscriptFinal, TranscriptPartial
from gateway.core.session import SessionState, StreamSession
from gateway.frontdoors.dialect import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_POLICY, Dialect, Frame
from gateway.inference.engine import Engine, EngineClosed
from gateway.inference.jobs import VoiceWindows

log = logging.getLogger(__name__)

SLOW_CONSUMER = "slow_consumer"  # the close reason for a client that stopped reading


class RunnerObserver(Protocol):
    """Where the runner reports what it moved and how late (metrics)."""

    def audio_received(self, n_bytes: int) -> None: ...

    def event_sent(self, event: Event, delivered: bool) -> None: ...

    def latency(self, kind: str, seconds: float) -> None:
        """``kind`` "final": a final's arrival after the audio where its
        speech ended arrived; "first_partial": an utterance's first partial
        after the audio where it began arrived."""


class Tee:
    """Several observers as one (metrics, and the session's subscribers).

    An observer is a side path: one that raises (a full disk under the
    webhook outbox, a bug) is logged, once, and the others and the stream
    go on. It used to raise inside the runner's pump, and the stream hung
    after its finals, never closed."""

    def __init__(self, *observers: RunnerObserver):
        self.observers = observers
        self._failed: set[int] = set()  # observers whose failure was logged

    def _each(self, call: Callable[[RunnerObserver], None]) -> None:
        for observer in self.observers:
            try:
                call(observer)
            except Exception:
                if id(observer) not in self._failed:
                    self._failed.add(id(observer))
                    log.exception("%s failed; the stream goes on without it", type(observer).__name__)

    def audio_received(self, n_bytes: int) -> None:
        self._each(lambda o: o.audio_received(n_bytes))

    def event_sent(self, event: Event, delivered: bool) -> None:
        self._each(lambda o: o.event_sent(event, delivered))

    def latency(self, kind: str, seconds: float) -> None:
        self._each(lambda o: o.latency(kind, seconds))


class ArrivalClock:
    """When each point of a stream's audio arrived (wall time), for latencies.

    Latency is the one place wall time meets audio time: the core counts
    samples, the runner notes when they came.
    """

    def __init__(self, keep: int = 4096):
        self._marks: deque[tuple[float, float]] = deque(maxlen=keep)  # (audio seconds so far, wall time)

    def mark(self, audio_s: float, now: float) -> None:
        self._marks.append((audio_s, now))

    def arrival(self, audio_s: float) -> float | None:
        """When the audio up to ``audio_s`` had arrived; None if too old to say."""
        index = bisect.bisect_left(self._marks, (audio_s, float("-inf")))
        if index == len(self._marks) or (index == 0 and self._marks and self._marks[0][0] > audio_s + 1.0):
            return None
        return self._marks[index][1]


@dataclass(frozen=True)
class StreamLimits:
    """How long a stream may take, each bound a server setting (0: none)."""

    send_timeout_s: float = 5.0  # one send to a client that does not read
    idle_timeout_s: float = 120.0  # wall time without speech: no audio, or only silence
    max_session_s: float = 14400.0  # wall time of the whole stream


async def send_frame(websocket: WebSocket, frame: Frame) -> None:
    """A text frame for a str, a binary one for bytes."""
    if isinstance(frame, bytes):
        await websocket.send_bytes(frame)
    else:
        await websocket.send_text(frame)


class StreamRunner:
    """Runs one session over one accepted WebSocket until it is closed."""

    def __init__(
        self,
        websocket: WebSocket,
        session: StreamSession,
        dialect: Dialect,
        engine: Engine,
        observer: RunnerObserver | None = None,
        limits: StreamLimits = StreamLimits(),
    ):
        self.websocket = websocket
        self.session = session
        self.dialect = dialect
        self.engine = engine
        self.observer = observer
        self.limits = limits
        self.detached = False  # a send failed: the peer is gone, stop writing
        self.slow = False  # a send timed out: the client stopped reading
        self._arrivals = ArrivalClock()
        self._utterance_starts: dict[int, float] = {}  # segment id -> audio seconds, until its first partial
        self._loop = asyncio.get_running_loop()
        self._futures: dict[int, Future[Any]] = {}
        self._results: asyncio.Queue[tuple[int, Future[Any]]] = asyncio.Queue()
        self._readable = asyncio.Event()
        self._closed = asyncio.Event()
        self._close_code = CLOSE_NORMAL
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self._pump()
        tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._handle_results()),
            asyncio.create_task(self._watch()),
        ]
        try:
            await self._closed.wait()
        finally:
            for task in tasks:
                task.cancel()
            for future in self._futures.values():
                future.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.websocket.client_state is WebSocketState.CONNECTED and (self.slow or not self._gone):
            try:
                reason = SLOW_CONSUMER if self.slow else ""
                await asyncio.wait_for(self.websocket.close(self._close_code, reason), self.limits.send_timeout_s or None)
            except Exception:  # the peer may be gone already
                pass

    def shutdown(self, message: str = "the server is shutting down; your stream is being finalised") -> None:
        """Server going down: finalise the stream, then close."""
        self.stop("server_shutdown", message)

    def stop(self, code: str, message: str) -> None:
        """End the stream for the server's reason: a fatal error event, the
        finals of what was received, ``session.closed``, then close."""
        if self.session.state.is_open:
            self.session.handle(Stop(code, message))
            self._loop.create_task(self._pump())

    async def _watch(self) -> None:
        """The stream's time limits, looked at a few times a second."""
        limits = self.limits
        bounds = [t for t in (limits.idle_timeout_s, limits.max_session_s) if t]
        if not bounds:
            return
        tick = min(1.0, min(bounds) / 4)
        opened = heard_at = self._loop.time()
        heard = self.session.last_speech_s
        while self.session.state.is_open:
            await asyncio.sleep(tick)
            now = self._loop.time()
            if self.session.last_speech_s != heard:
                heard, heard_at = self.session.last_speech_s, now
            if limits.max_session_s and now - opened >= limits.max_session_s:
                self.stop("session_timeout", f"the stream reached the longest session the server allows, {limits.max_session_s:g} s")
            elif limits.idle_timeout_s and now - heard_at >= limits.idle_timeout_s:
                self.stop("idle_timeout", f"no speech for {limits.idle_timeout_s:g} s (no audio, or only silence): the stream is closed")

    def _closed_while_waiting(self) -> bool:
        # A method, not the comparison inline: the session closes while the
        # reader awaits, which a type checker's narrowing of the loop test cannot see.
        return self.session.state is SessionState.CLOSED

    @property
    def _gone(self) -> bool:
        return self.detached or self.session.detached

    # -- reading ----------------------------------------------------------
    async def _read(self) -> None:
        # Reading goes on after the client's end, until the session closes:
        # what it still sends is answered (invalid_state), and a client that
        # leaves is noticed before its finals are sent into the void.
        try:
            while self.session.state is not SessionState.CLOSED:
                await self._readable.wait()
                if self._closed_while_waiting():
                    break
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1006))
                frame = message["bytes"] if message.get("bytes") is not None else message.get("text")
                if frame is not None:
                    self._take(frame)
                await self._pump()
        except WebSocketDisconnect:
            for command in self.dialect.at_loss() if self.session.state.is_open else ():
                self.session.handle(command)
            self.session.handle(ConnectionLost())
            await self._pump()
        except Exception:
            log.exception("stream %s: reader failed", self.session.session_id)
            self._close_code = CLOSE_INTERNAL
            self.session.handle(ConnectionLost())
            await self._pump()

    def _take(self, frame: Frame) -> None:
        commands: list[Command]
        try:
            commands = self.dialect.commands(frame)
        except ProtocolError as exc:
            commands = [Invalid(exc)]
        for command in commands:
            if self.session.state is SessionState.CLOSED:
                break  # a fatal error: the rest of the frame is moot
            self.session.handle(command)
            if isinstance(command, Audio):
                self._arrivals.mark(self.session.duration, self._loop.time())
                if self.observer:
                    self.observer.audio_received(len(command.data))

    # -- engine work ------------------------------------------------------
    def _carry_out(self, action: EngineAction) -> None:
        if isinstance(action, Submit):
            self._submit(action.request)
            return
        future = self._futures.get(action.request_id)
        if future is None:
            return  # already done: its result is on the way
        if isinstance(action, Cancel):
            future.cancel()
        else:
            self.engine.promote(future)

    def _submit(self, request: DecodeRequest) -> None:
        try:
            future = self.engine.submit(request.job)
        except EngineClosed:
            self.session.handle(DecodeFailed(request.id, "the server is shutting down"))
            return
        self._futures[request.id] = future

        def done(f: Future[Any], request_id: int = request.id) -> None:  # on an engine thread
            self._loop.call_soon_threadsafe(self._results.put_nowait, (request_id, f))

        future.add_done_callback(done)

    async def _handle_results(self) -> None:
        while True:
            request_id, future = await self._results.get()
            self._futures.pop(request_id, None)
            result: Command
            if future.cancelled():
                result = DecodeCancelled(request_id)
            elif (error := future.exception()) is not None:
                result = DecodeFailed(request_id, str(error) or type(error).__name__)
            else:
                value = future.result()
                result = Embedded(request_id, value) if isinstance(value, VoiceWindows) else Decoded(request_id, value)
            self.session.handle(result)
            await self._pump()

    # -- writing ----------------------------------------------------------
    async def _pump(self) -> None:
        """Act on everything the session has put in its outboxes, until they
        stay empty (a send that times out changes the session)."""
        session = self.session
        while True:
            load = self.engine.load()
            session.handle(LoadReport(load.pressure, load.final_decode_s))
            while actions := session.take_actions():  # carrying one out may answer it at once
                for action in actions:
                    self._carry_out(action)
            events = session.take_events()
            if not events:
                break
            async with self._send_lock:
                for event in events:
                    code = self.dialect.close_code(event)
                    if code is not None and not self.slow:
                        self._close_code = code
                    for frame in self.dialect.frames(event):
                        await self._send(frame)
                    if self.observer:
                        self.observer.event_sent(event, not self._gone)
                        self._observe_latency(event)
        if session.state is SessionState.CLOSING or session.wants_audio:
            self._readable.set()
        else:
            self._readable.clear()
        if session.state is SessionState.CLOSED:
            self._closed.set()

    def _observe_latency(self, event: Event) -> None:
        assert self.observer is not None
        audio_s: float | None = None
        kind = ""
        if isinstance(event, SpeechStarted):
            self._utterance_starts[event.segment_id] = event.start
        elif isinstance(event, TranscriptPartial) and event.segment_id in self._utterance_starts:
            audio_s, kind = self._utterance_starts.pop(event.segment_id), "first_partial"
        elif isinstance(event, TranscriptFinal):
            self._utterance_starts.pop(event.segment.id, None)
            if event.segment.text.strip():
                audio_s, kind = event.segment.end, "final"
        if audio_s is not None:
            arrived = self._arrivals.arrival(audio_s)
            if arrived is not None:
                self.observer.latency(kind, max(0.0, self._loop.time() - arrived))

    async def _send(self, frame: Frame) -> None:
        if self._gone:
            return
        try:
            await asyncio.wait_for(send_frame(self.websocket, frame), self.limits.send_timeout_s or None)
        except asyncio.TimeoutError:
            # The client stopped reading: its socket would hold the stream (and
            # a --max-streams slot, and shutdown) for ever. Finalise what it
            # sent, as if it had gone, and close it.
            log.info("stream %s: a send waited %.0f s, the client is not reading: closing it (%s)",
                     self.session.session_id, self.limits.send_timeout_s, SLOW_CONSUMER)
            self.slow = self.detached = True
            self._close_code = CLOSE_POLICY
            self.session.handle(ConnectionLost())
        except Exception:  # peer gone: keep finalising, stop writing
            self.detached = True
