"""A streaming client: sends audio to /v0/audio/stream and collects the events.

Used by ``stt-gateway stream`` and the benchmarks. Audio is sent in chunks
at real-time pace (or ``speed`` times faster, or as fast as the socket takes
it), while events are received concurrently and stamped with their arrival
time on the same clock as the sending, so latencies can be computed from
the protocol's audio times.

With ``resumes``, a dropped connection (the network, a killed or restarted
replica, a server shutting down) is not the end of the stream: the client
holds the audio it sent since the last final's ``ended_at`` (ReplayBuffer),
reconnects with backoff, possibly to another replica behind a balancer, and
resumes the session there (docs/protocol.md section 7): ``time_offset`` = that
``ended_at``, ``first_segment_id`` = the next id, ``prompt`` = the last
finals' text; then it sends the held audio again and goes on live. The
transcript continues with no gap, no duplicate, and continuous times and ids.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import websockets
from websockets.exceptions import InvalidStatus

from .audio import encode_samples

# A resumed session is primed with the end of what was already said: enough
# for names and style, far below the server's prompt limit.
RESUME_PROMPT_CHARS = 200
# Audio held for a resume. A final normally comes within seconds, so the
# buffer holds little; a long monologue with no final is bounded by the
# server's max_segment_s cut (15 s), and this covers several of those.
REPLAY_LIMIT_S = 120.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.25, 5.0
# Statuses of a reconnect worth trying again: a balancer with no healthy
# replica yet (502/503/504); anything else (401, 400) will not get better.
_TRANSIENT = (502, 503, 504)
# Close codes of a server that refused what this client sent: resuming would
# be refused again.
_REFUSED = (1003, 1007, 1008, 1009)



@dataclass
class StreamResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds since the first audio was sent
    close_code: int | None = None
    resumes: int = 0  # connections after the first, each resuming where the last final ended
    gap_s: float = 0.0  # audio not sent again after a drop because the replay buffer had overflowed
    failure: str | None = None  # why a dropped stream could not be resumed

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return self.of_type("transcript.final")

    @property
    def closed(self) -> dict[str, Any] | None:
        closed = self.of_type("session.closed")
        return closed[-1] if closed else None

    @property
    def text(self) -> str:
        return " ".join(f["segment"]["text"].strip() for f in self.finals if f["segment"]["text"].strip())

    def arrival_of(self, event: dict[str, Any]) -> float:
        return self.arrivals[self.events.index(event)]


def websocket_base(base: str) -> str:
    """A server's base URL for WebSockets: ``http(s)://`` becomes ``ws(s)://``, as the demo and SDKs take it."""
    scheme, sep, rest = base.strip().partition("://")
    return {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme) + sep + rest.rstrip("/")


def stream_url(base: str, **options: Any) -> str:
    query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in options.items() if v is not None}
    return f"{websocket_base(base)}/v0/audio/stream" + (f"?{urlencode(query)}" if query else "")


def resumed_url(url: str, time_offset: float, first_segment_id: int, prompt: str | None) -> str:
    """``url`` with the options that resume a session (docs/protocol.md section 7).

    A prompt the caller chose is kept: it carries vocabulary the model would
    not guess, while the recent text only helps continuity.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["time_offset"] = f"{time_offset:.6f}"
    query["first_segment_id"] = str(first_segment_id)
    if prompt and "prompt" not in query:
        query["prompt"] = prompt
    return urlunsplit(parts._replace(query=urlencode(query)))


class ReplayBuffer:
    """The audio sent since the last final's ``ended_at``, at most ``limit_s`` of it.

    Positions are sample indices from the start of the client's stream. A
    final acknowledges the audio before its ``ended_at``; what is held after
    it is what a resumed session must hear again. When no final comes for
    longer than the limit, the oldest audio is let go and ``dropped`` counts it.
    """

    def __init__(self, sample_rate: int, limit_s: float = REPLAY_LIMIT_S):
        self.limit = max(1, int(limit_s * sample_rate))
        self.start = 0  # position of the first sample held
        self.held = 0
        self.dropped = 0
        self.acknowledged = 0  # the furthest position a final acknowledged
        self._chunks: deque[np.ndarray] = deque()

    @property
    def end(self) -> int:
        return self.start + self.held

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self.held += len(samples)
        if self.held > self.limit:
            over = self.held - self.limit
            self._let_go(over)
            self.dropped += over

    def acknowledge(self, position: int) -> None:
        """The audio before ``position`` is final: no longer needed."""
        self.acknowledged = max(self.acknowledged, position)
        if position > self.start:
            self._let_go(min(position, self.end) - self.start)

    def lost(self) -> int:
        """Samples after the last acknowledged one that are no longer held: a
        resume from here leaves them out. Counted once: the resume point moves on."""
        missing = max(0, self.start - self.acknowledged)
        self.acknowledged = max(self.acknowledged, self.start)
        return missing

    def samples(self) -> np.ndarray:
        return np.concatenate(list(self._chunks)) if self._chunks else np.zeros(0, np.float32)

    def _let_go(self, count: int) -> None:
        while count > 0 and self._chunks:
            first = self._chunks[0]
            if len(first) <= count:
                self._chunks.popleft()
                taken = len(first)
            else:
                self._chunks[0] = first[count:]
                taken = count
            self.held -= taken
            self.start += taken
            count -= taken


@dataclass
class _Resume:
    """Where the session stands, from the finals received: what a reconnect asks for."""

    base_offset: float  # the stream time of position 0 (a caller may itself resume)
    next_id: int
    sample_rate: int
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=16))

    def final(self, event: dict[str, Any], cut: bool = False) -> int:
        """Take a final in; returns the position it acknowledges: its ``ended_at``.

        ``cut``: a server shutting down finalised the utterance mid-speech.
        Its words end before ``ended_at``, and what was said after them
        (a word the cut split) is not in the text: only the audio up to the
        last word is acknowledged, so the next server hears the rest.
        """
        segment = event["segment"]
        self.next_id = segment["id"] + 1
        text = segment["text"].strip()
        if text:
            self.recent.append(text)
        until = event.get("ended_at", segment["end"])
        if cut and event.get("end_reason") == "flush":
            words = segment.get("words") or []
            until = min(until, words[-1]["end"] if words else segment["start"])
        return int(round((until - self.base_offset) * self.sample_rate))

    def prompt(self) -> str | None:
        text = " ".join(self.recent)
        if len(text) > RESUME_PROMPT_CHARS:  # the end of it, from a word boundary
            text = text[-RESUME_PROMPT_CHARS:]
            text = text[text.find(" ") + 1 :]
        return text or None


@dataclass
class _Heard:
    """What one connection's events said about the session."""

    opened: bool = False
    closed: bool = False
    shutting_down: bool = False


async def stream_audio(
    url: str,
    samples: np.ndarray,
    *,
    sample_rate: int = 16000,
    encoding: str = "pcm_s16le",
    chunk_ms: int = 100,
    speed: float | None = 1.0,
    api_key: str | None = None,
    on_event: Callable[[dict[str, Any], float], None] | None = None,
    end: bool = True,
    trailing_silence_s: float = 0.0,
    busy_retries: int = 0,
    resumes: int = 0,
    on_reconnect: Callable[[int, str, float], None] | None = None,
    replay_limit_s: float = REPLAY_LIMIT_S,
) -> StreamResult:
    """Stream float samples at ``sample_rate``; ``speed`` None sends as fast as possible.

    ``busy_retries``: how many times to try again when the server is busy
    (503), after the ``Retry-After`` it gives (at most 30 s each time).
    ``resumes``: after a dropped connection, how many reconnects in a row to
    try (with backoff) before giving up (``result.failure`` says why); 0,
    or ``end`` false (the caller keeps the stream open itself): a drop ends
    the stream. ``on_reconnect(attempt, reason, delay_s)`` is
    told before each try. The first connection's failure is raised as it is.
    """
    result = StreamResult()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    if trailing_silence_s:
        samples = np.concatenate([samples, np.zeros(int(trailing_silence_s * sample_rate), np.float32)])
    step = max(1, sample_rate * chunk_ms // 1000)
    given = dict(parse_qsl(urlsplit(url).query))
    resume = _Resume(float(given.get("time_offset") or 0.0), int(given.get("first_segment_id") or 0), sample_rate)
    buffer = ReplayBuffer(sample_rate, replay_limit_s)
    sent = 0  # position of the next sample to send for the first time
    started: float | None = None
    attempts = 0  # reconnects tried since the last connection that opened a session

    async def receive(ws: Any, heard: _Heard, clock: float) -> None:
        async for message in ws:
            event = json.loads(message)
            now = time.monotonic() - clock
            result.events.append(event)
            result.arrivals.append(now)
            kind = event["type"]
            if kind == "session.created":
                heard.opened = True
            elif kind == "transcript.final":
                buffer.acknowledge(resume.final(event, cut=heard.shutting_down))
            elif kind == "session.closed":
                heard.closed = True
            elif kind == "error" and event.get("code") == "server_shutdown":
                heard.shutting_down = True
            if on_event:
                on_event(event, now)

    while True:
        target = url
        if result.resumes or attempts:
            result.gap_s += buffer.lost() / sample_rate
            target = resumed_url(url, resume.base_offset + buffer.start / sample_rate, resume.next_id, resume.prompt())
        try:
            ws = await _connect(target, headers, busy_retries)
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else None
            if started is None and not attempts:
                raise  # the first connection: nothing to resume
            if (status is not None and status not in _TRANSIENT) or attempts >= resumes:
                result.failure = f"could not resume the stream: {exc}"
                return result
            attempts += 1
            await _back_off(attempts, f"cannot connect: {exc}", on_reconnect)
            continue
        if started is None:
            started = time.monotonic()
        else:
            result.resumes += 1
        heard = _Heard()
        async with ws:
            receiver = asyncio.create_task(receive(ws, heard, started))
            try:
                replay = buffer.samples()
                for offset in range(0, len(replay), step):
                    await ws.send(encode_samples(replay[offset : offset + step], encoding))
                while sent < len(samples):
                    if speed:
                        delay = started + sent / sample_rate / speed - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    chunk = samples[sent : sent + step]
                    await ws.send(encode_samples(chunk, encoding))
                    buffer.append(chunk)
                    sent += len(chunk)
                if end:
                    await ws.send(json.dumps({"type": "end"}))
                await receiver
            except websockets.ConnectionClosed:
                pass
            finally:
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
            result.close_code = ws.close_code
        # A server shutting down finalised what it had heard: the rest goes
        # on elsewhere. A stream the server closed for a reason of its own
        # (time limits, refused options) ends here.
        unfinished = sent < len(samples) or buffer.held > 0
        if heard.closed and not (heard.shutting_down and unfinished):
            return result
        if result.close_code in _REFUSED or not resumes or not end:
            if not heard.closed:
                result.failure = f"the connection dropped (close code {result.close_code})"
            return result
        if heard.opened:
            attempts = 0
        if attempts >= resumes:
            result.failure = f"gave up after {attempts} reconnect(s)"
            return result
        attempts += 1
        reason = "the server is shutting down" if heard.shutting_down else f"the connection dropped (close code {result.close_code})"
        await _back_off(attempts, reason, on_reconnect)


async def _back_off(attempt: int, reason: str, on_reconnect: Callable[[int, str, float], None] | None) -> None:
    """Exponential backoff with jitter: replicas restarting together are not hit in step."""
    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
    if on_reconnect:
        on_reconnect(attempt, reason, delay)
    await asyncio.sleep(delay)


async def _connect(url: str, headers: dict[str, str] | None, busy_retries: int) -> Any:
    """The connection, waiting out a busy server's ``Retry-After`` up to ``busy_retries`` times."""
    for attempt in range(busy_retries + 1):
        try:
            return await websockets.connect(url, additional_headers=headers, max_size=None)
        except InvalidStatus as exc:
            if exc.response.status_code != 503 or attempt == busy_retries:
                raise
            try:
                wait = float(exc.response.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.0), 30.0))
    raise AssertionError("unreachable")
