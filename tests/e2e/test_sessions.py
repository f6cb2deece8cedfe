"""Live sessions and their subscribers: a call followed while it runs, and a snapshot after."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.client import stream_url
from tests.clips import load_clip, two_speakers


def run(coro):
    return asyncio.run(coro)


async def stream_call(
    url: str, audio: bytes, events: list, first_final: asyncio.Event, step: int = 6400, hold: asyncio.Event | None = None
) -> None:
    """A call streamed at twice real time. ``hold``: waited for before its last
    second of audio goes, so that what must happen while the call is live
    does (the test waits for events, it does not race the call)."""
    last_second = len(audio) - 64000 if hold is not None else len(audio)  # 2 channels of 16-bit 16 kHz
    async with websockets.connect(url) as ws:

        async def read() -> None:
            async for message in ws:
                events.append(json.loads(message))
                if events[-1]["type"] == "transcript.final" and events[-1]["segment"]["text"].strip():
                    first_final.set()

        reader = asyncio.create_task(read())
        for i in range(0, len(audio), step):
            if hold is not None and i <= last_second < i + step:
                await asyncio.wait_for(hold.wait(), 60)
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
        first_final, joined = asyncio.Event(), asyncio.Event()
        call = asyncio.create_task(stream_call(url, audio, call_events, first_final, hold=joined))
        await asyncio.wait_for(first_final.wait(), 60)
        listed = await asyncio.to_thread(lambda: httpx.get(server.http + "/v0/sessions").json()["data"])
        async with websockets.connect(f"{server.ws}/v0/sessions/call-42/events") as follower:
            joined.set()  # the call's last second goes now: the follower sees it live
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
    # Then everything the call got from the moment the follower joined, partials
    # included (how many partials come after the join depends on the machine's speed).
    live_from = [
        k for k in range(1, len(call_finals) + 1)
        if followed[:k] == call_finals[:k] and followed[k:] == call_events[len(call_events) - len(followed) + k :]
    ]
    assert live_from, "the follower's events after its replay are not what the call got from then on"
    assert followed[-1]["type"] == "session.closed"
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


# -- issue 19: tenants, and ids that cannot be taken ---------------------------------------
def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def short_session(url: str, headers: dict | None = None) -> dict:
    """Open a stream, send a little audio, end it; its session.closed (or the error that refused it)."""
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        created = json.loads(await ws.recv())
        if created["type"] == "error":
            return created
        await ws.send(encode_samples(load_clip("ds-ldc93s1"), "pcm_s16le"))
        await ws.send(json.dumps({"type": "end"}))
        events = [json.loads(m) async for m in ws]
    return events[-1]


def test_a_key_sees_only_its_own_sessions_and_an_admin_key_sees_all(make_server):
    server = make_server(api_keys=("alice", "bob"), admin_keys=("supervisor",))

    async def go():
        async with websockets.connect(stream_url(server.ws, session_id="shared-name"), additional_headers=bearer("alice")) as a:
            await a.recv()
            async with websockets.connect(stream_url(server.ws, session_id="shared-name"), additional_headers=bearer("bob")) as b:
                assert json.loads(await b.recv())["type"] == "session.created"  # ids are per key: no collision, no oracle
                views = {k: httpx.get(server.http + "/v0/sessions", headers=bearer(k)).json()["data"] for k in ("alice", "bob", "supervisor")}
                alice_snapshot = httpx.get(server.http + "/v0/sessions/shared-name", headers=bearer("alice")).json()
                ambiguous = httpx.get(server.http + "/v0/sessions/shared-name", headers=bearer("supervisor"))
                return views, alice_snapshot, ambiguous

    views, alice_snapshot, ambiguous = run(go())
    assert len(views["alice"]) == 1 and len(views["bob"]) == 1 and "tenant" not in views["alice"][0]
    assert len(views["supervisor"]) == 2 and len({s["tenant"] for s in views["supervisor"]}) == 2
    assert alice_snapshot["session_id"] == "shared-name" and alice_snapshot["status"] == "live"
    assert ambiguous.status_code == 409 and len(ambiguous.json()["error"]["tenants"]) == 2
    tenant = ambiguous.json()["error"]["tenants"][0]
    assert httpx.get(server.http + f"/v0/sessions/shared-name?tenant={tenant}", headers=bearer("supervisor")).status_code == 200


def test_one_key_cannot_read_or_follow_another_keys_session(make_server):
    server = make_server(api_keys=("alice", "bob"), admin_keys=("supervisor",))
    closed = run(short_session(stream_url(server.ws, session_id="alices-call"), bearer("alice")))
    assert closed["type"] == "session.closed"
    assert httpx.get(server.http + "/v0/sessions/alices-call", headers=bearer("bob")).status_code == 404
    assert httpx.get(server.http + "/v0/sessions/alices-call", headers=bearer("alice")).status_code == 200
    assert httpx.get(server.http + "/v0/sessions/alices-call", headers=bearer("supervisor")).status_code == 200

    async def follow(key):
        async with websockets.connect(f"{server.ws}/v0/sessions/alices-call/events", additional_headers=bearer(key)) as ws:
            return [json.loads(m) async for m in ws]

    with pytest.raises(InvalidStatus) as refused:
        run(follow("bob"))
    assert refused.value.response.status_code == 404
    assert run(follow("supervisor"))[-1]["type"] == "session.closed"


def test_an_ended_sessions_snapshot_cannot_be_replaced_but_can_be_resumed(make_server):
    server = make_server()
    first = run(short_session(stream_url(server.ws, session_id="kept")))
    before = httpx.get(server.http + "/v0/sessions/kept").json()
    squatter = run(short_session(stream_url(server.ws, session_id="kept")))
    assert squatter["type"] == "error" and squatter["code"] == "invalid_config" and "resume" in squatter["message"]
    assert httpx.get(server.http + "/v0/sessions/kept").json() == before  # the snapshot is as it was
    # A resume (docs/protocol.md section 7) continues it: the same session, on a new connection.
    next_id = before["channels"][0]["finals"][-1]["id"] + 1 if before["channels"][0]["finals"] else 0
    resumed = run(short_session(stream_url(server.ws, session_id="kept", first_segment_id=next_id, time_offset=first["duration"])))
    assert resumed["type"] == "session.closed"
    after = httpx.get(server.http + "/v0/sessions/kept").json()
    assert after["channels"][0]["finals"][: len(before["channels"][0]["finals"])] == before["channels"][0]["finals"]


def test_a_stream_cannot_take_a_twilio_call_id(server):
    refused = run(short_session(stream_url(server.ws, session_id="CA" + "ab" * 16)))
    assert refused["type"] == "error" and "Twilio" in refused["message"]


def test_dtmf_floods_are_bounded(server):
    """Issue 19: 200 000 keys were all kept for an hour and replayed to each follower."""
    from gateway.core.signals import SignalLimits

    limits = SignalLimits()

    async def flood():
        async with websockets.connect(f"{server.ws}/v0/telephony/twilio") as ws:
            start = {"event": "start", "start": {"callSid": "CA" + "cd" * 16, "tracks": ["inbound"], "customParameters": {}}}
            await ws.send(json.dumps(start))
            for _ in range(3 * limits.burst):
                await ws.send(json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}))
            await ws.send(json.dumps({"event": "stop"}))
            await ws.wait_closed()

    run(flood())

    async def follow():
        async with websockets.connect(f"{server.ws}/v0/sessions/CA{'cd' * 16}/events") as ws:
            return [json.loads(m) async for m in ws]

    replay = run(follow())
    assert sum(e["type"] == "signal" for e in replay) == limits.burst  # the rest dropped, not kept
