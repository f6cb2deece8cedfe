"""The one runner under a made-up front door: a dialect is one small class.

``LineDialect`` speaks a framing no client uses (text lines: ``AUDIO
<base64>``, ``FLUSH``, ``END``; events back as ``<kind> <id> <text>``
lines), and takes its key from the query. Added as one route, it gets
everything the native door has: auth, admission, backpressure, the engine,
finals of real speech.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from typing import Any

import pytest
import websockets

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.core.commands import Audio, Command, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import ErrorEvent, Event, SessionClosed, SessionCreated, TranscriptFinal, TranscriptPartial
from gateway.frontdoors.dialect import Dialect, Frame, Opening, Upgrade
from gateway.http.streaming.doors import Door
from tests.clips import CLIPS, load_clip


class LineDialect(Dialect):
    name = "lines"

    @classmethod
    def presented_key(cls, upgrade: Upgrade) -> str | None:
        return upgrade.params().get("key")

    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening:
        params = upgrade.params()
        return replace(presented, options={"sample_rate": params["rate"]} if "rate" in params else {})

    def commands(self, frame: Frame) -> list[Command]:
        verb, _, rest = (frame if isinstance(frame, str) else "").partition(" ")
        if verb == "AUDIO":
            return [Audio(base64.b64decode(rest))]
        if verb in ("FLUSH", "END"):
            return [Flush() if verb == "FLUSH" else End()]
        raise ProtocolError("invalid_message", "say AUDIO, FLUSH or END")

    def frames(self, event: Event) -> list[Frame]:
        if isinstance(event, SessionCreated):
            return [f"created {event.session_id}"]
        if isinstance(event, TranscriptPartial):
            return [f"partial {event.segment_id} {event.text}"]
        if isinstance(event, TranscriptFinal):
            return [f"final {event.segment.id} {event.segment.text.strip()}"]
        if isinstance(event, ErrorEvent):
            return [f"error {event.code}"]
        if isinstance(event, SessionClosed):
            return [f"closed {event.text}"]
        return []  # speech.started, session.updated: this framing has no word for them


def with_line_door(app) -> None:
    app.add_api_websocket_route("/test/lines", app.state.doors.endpoint(Door("/test/lines", LineDialect)))


async def stream_lines(url: str, samples, chunk: int = 1600, junk: bool = False) -> tuple[list[str], int | None]:
    async with websockets.connect(url) as ws:
        for i in range(0, len(samples), chunk):
            await ws.send("AUDIO " + base64.b64encode(encode_samples(samples[i : i + chunk], "pcm_s16le")).decode())
            if junk and i == 0:
                await ws.send("DANCE")
        await ws.send("END")
        lines = [line async for line in ws]
        return lines, ws.close_code


def test_a_made_up_door_streams_real_speech_through_the_runner(make_server):
    running = make_server(extend=with_line_door)
    clip = CLIPS["ds-arctic-a0024"]
    lines, code = asyncio.run(stream_lines(f"{running.ws}/test/lines", load_clip(clip.id), junk=True))
    assert lines[0].startswith("created ") and lines[-1].startswith("closed ")
    assert "error invalid_message" in lines  # a bad frame is answered; the stream goes on
    finals = [line.split(" ", 2)[2] for line in lines if line.startswith("final ")]
    assert finals and wer(clip.text, " ".join(finals)) <= 0.2, lines
    assert lines[-1] == "closed " + " ".join(finals)
    assert code == 1000


def test_a_made_up_door_gets_the_server_s_auth_and_option_checks(make_server):
    running = make_server(api_keys=("sesame",), extend=with_line_door)

    async def first_line(query: str) -> str:
        async with websockets.connect(f"{running.ws}/test/lines?{query}") as ws:
            return await ws.recv()

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(first_line("key=wrong"))
    assert refused.value.response.status_code == 401
    assert asyncio.run(first_line("key=sesame")).startswith("created ")
    assert asyncio.run(first_line("key=sesame&rate=12345")) == "error invalid_config"
