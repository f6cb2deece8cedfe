"""A streaming client: sends audio to /v0/audio/stream and collects the events.

Used by ``stt-gateway stream`` and the benchmarks. Audio is sent in chunks
at real-time pace (or ``speed`` times faster, or as fast as the socket takes
it), while events are received concurrently and stamped with their arrival
time on the same clock as the sending, so latencies can be computed from
the protocol's audio times.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
import websockets
from websockets.exceptions import InvalidStatus

from .audio import encode_samples


@dataclass
class StreamResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds since the first audio was sent
    close_code: int | None = None

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


def stream_url(base: str, **options: Any) -> str:
    query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in options.items() if v is not None}
    return f"{base.rstrip('/')}/v0/audio/stream" + (f"?{urlencode(query)}" if query else "")


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
) -> StreamResult:
    """Stream float samples at ``sample_rate``; ``speed`` None sends as fast as possible.

    ``busy_retries``: how many times to try again when the server is busy
    (503), after the ``Retry-After`` it gives (at most 30 s each time).
    """
    result = StreamResult()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    if trailing_silence_s:
        samples = np.concatenate([samples, np.zeros(int(trailing_silence_s * sample_rate), np.float32)])
    step = max(1, sample_rate * chunk_ms // 1000)
    ws = await _connect(url, headers, busy_retries)
    async with ws:
        started = time.monotonic()

        async def receive() -> None:
            async for message in ws:
                event = json.loads(message)
                now = time.monotonic() - started
                result.events.append(event)
                result.arrivals.append(now)
                if on_event:
                    on_event(event, now)

        receiver = asyncio.create_task(receive())
        try:
            for offset in range(0, len(samples), step):
                if speed:
                    delay = started + offset / sample_rate / speed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await ws.send(encode_samples(samples[offset : offset + step], encoding))
            if end:
                await ws.send(json.dumps({"type": "end"}))
            await receiver
        except websockets.ConnectionClosed:
            pass
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        result.close_code = ws.close_code
    return result


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
