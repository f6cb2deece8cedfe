"""Live sessions and their subscribers: a call followed while it runs, and a snapshot after."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from gateway.audio import encode_samples
from gateway.client import stream_url
from gateway.http.sessions import Subscriber
from gateway.textnorm import wer

from .conftest import two_speakers


def run(coro):
    return asyncio.run(coro)


async def stream_call(url: str, audio: bytes, events: list, first_final: asyncio.Event, step: int = 6400) -> None:
    async with websockets.connect(url) as ws:

        async def read() -> None:
            async for message in ws:
                events.append(json.loads(message))
                if events[-1]["type"] == "transcript.final" and events[-1]["segment"]["text"].strip():
                    first_final.set()

        reader = asyncio.create_task(read())
        for i in range(0, len(audio), step):
            await ws.send(audio[i : i + step])
            await asyncio.sleep(0.05)
        await ws.send(json.dumps({"type": "end"}))
        await reader


def test_a_late_subscriber_gets_the_finals_so_far_then_the_live_events(server):
    a, b, frames = two_speakers()
    audio = encode_samples(frames.reshape(-1), "pcm_s16le")
    url = stream_url(server.ws, session_id="call-42", channels=2, channel_labels="agent,caller")

    async def go():
        call_events: list = []
        first_final = asyncio.Event()
        call = asyncio.create_task(stream_call(url, audio, call_events, first_final))
        await asyncio.wait_for(first_final.wait(), 60)
        listed = httpx.get(server.http + "/v0/sessions").json()["data"]
        async with websockets.connect(f"{server.ws}/v0/sessions/call-42/events") as follower:
            followed = [json.loads(m) async for m in follower]
            code = follower.close_code
        await call
        return call_events, listed, followed, code

    call_events, listed, followed, code = run(go())
    assert [s["session_id"] for s in listed] == ["call-42"] and listed[0]["labels"] == ["agent", "caller"]
    assert listed[0]["kind"] == "native" and listed[0]["status"] == "live"
    assert code == 1000
    # The replay comes first: the finals already sent, in order; then live events, partials included.
    call_finals = [e for e in call_events if e["type"] == "transcript.final"]
    followed_finals = [e for e in followed if e["type"] == "transcript.final"]
    assert followed_finals == call_finals
    assert followed[0]["type"] == "transcript.final"
    assert "transcript.partial" in [e["type"] for e in followed]
    assert followed[-1] == call_events[-1] and followed[-1]["type"] == "session.closed"
    # After the end: a snapshot per channel, and the session is no longer live.
    snapshot = httpx.get(server.http + "/v0/sessions/call-42").json()
    assert snapshot["status"] == "ended" and [c["label"] for c in snapshot["channels"]] == ["agent", "caller"]
    assert wer(a.text, snapshot["channels"][0]["text"]) <= 0.25 and wer(b.text, snapshot["channels"][1]["text"]) <= 0.25
    assert "call-42" not in [s["session_id"] for s in httpx.get(server.http + "/v0/sessions").json()["data"]]
    # A subscriber after the end gets the whole session at once.
    async def late():
        async with websockets.connect(f"{server.ws}/v0/sessions/call-42/events") as follower:
            return [json.loads(m) async for m in follower]

    assert [e["type"] for e in run(late())] == ["transcript.final"] * len(call_finals) + ["session.closed"]


def test_session_ids_unknown_taken_or_malformed(server):
    assert httpx.get(server.http + "/v0/sessions/nope").status_code == 404

    async def follow_missing():
        async with websockets.connect(f"{server.ws}/v0/sessions/nope/events"):
            pass

    with pytest.raises(InvalidStatus) as missing:
        run(follow_missing())
    assert missing.value.response.status_code == 404

    async def two_with_one_name():
        async with websockets.connect(stream_url(server.ws, session_id="same")) as first:
            await first.recv()  # session.created: it is live
            async with websockets.connect(stream_url(server.ws, session_id="same")) as second:
                return json.loads(await second.recv()), second

    error, _ = run(two_with_one_name())
    assert error["code"] == "invalid_config" and "taken" in error["message"]

    async def malformed():
        async with websockets.connect(stream_url(server.ws, session_id="a b/c")) as ws:
            return json.loads(await ws.recv())

    assert "session_id must be" in run(malformed())["message"]


def test_following_needs_the_key_like_every_route(make_server):
    server = make_server(api_keys=("sesame",))
    assert httpx.get(server.http + "/v0/sessions").status_code == 401
    assert httpx.get(server.http + "/v0/sessions", headers={"Authorization": "Bearer sesame"}).status_code == 200

    async def follow(**kwargs):
        async with websockets.connect(f"{server.ws}/v0/sessions/x/events", **kwargs):
            pass

    with pytest.raises(InvalidStatus) as refused:
        run(follow())
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as missing:  # the key is good: now it is the session that is not there
        run(follow(additional_headers={"Authorization": "Bearer sesame"}))
    assert missing.value.response.status_code == 404


def test_a_subscriber_that_falls_behind_is_dropped_without_waiting():
    async def go():
        subscriber = Subscriber(backlog=3)
        for n in range(3):
            subscriber.offer(f"event {n}")
        assert not subscriber.dropped
        subscriber.offer("one too many")  # never blocks
        assert subscriber.dropped and subscriber.queue.qsize() == 1
        assert await subscriber.queue.get() is None  # its writer closes it (slow_subscriber)
        subscriber.offer("later")  # ignored
        assert subscriber.queue.empty()

    run(go())
