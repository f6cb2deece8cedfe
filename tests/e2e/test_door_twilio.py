"""Twilio Media Streams in: a client built from Twilio's documented messages
(connected, start, media of both tracks, dtmf, mark, stop), a two-party
call on a phone line (8 kHz mu-law), followed by a subscriber."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
import soxr
import websockets
from websockets.exceptions import InvalidStatus

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.frontdoors.twilio import twilio_signature
from tests.clips import two_speakers

CALL_SID = "CA5f1e0c6a3b2d4e8f9a0b1c2d3e4f5a6b"
STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def run(coro):
    return asyncio.run(coro)


def phone_line() -> tuple[str, str, bytes, bytes]:
    """The caller (inbound) and the agent (outbound) of a call, as Twilio carries them."""
    a, b, frames = two_speakers()
    at_8k = soxr.resample(frames, 16000, 8000).astype(np.float32)
    return b.text, a.text, encode_samples(at_8k[:, 1], "mulaw"), encode_samples(at_8k[:, 0], "mulaw")


def start_message(parameters: dict, call_sid: str = CALL_SID) -> dict:
    return {
        "event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {
            "accountSid": "AC0123", "streamSid": STREAM_SID, "callSid": call_sid, "tracks": ["inbound", "outbound"],
            "customParameters": parameters, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }


def media_messages(inbound: bytes, outbound: bytes, clock=lambda n: str(n * 20)) -> list[dict]:
    """20 ms chunks of both tracks, interleaved as Twilio sends them, with
    what a real network does: an outbound chunk late and out of order, one
    sent twice, and a stretch of outbound missing (a gap). ``clock(n)`` is
    chunk n's timestamp."""
    messages, sequence = [], 2
    chunks = max(len(inbound), len(outbound)) // 160
    for n in range(chunks):
        for track, audio in (("inbound", inbound), ("outbound", outbound)):
            payload = audio[n * 160 : (n + 1) * 160]
            if not payload or (track == "outbound" and 100 <= n < 110):
                continue  # the gap
            messages.append({
                "event": "media", "sequenceNumber": str(sequence), "streamSid": STREAM_SID,
                "media": {"track": track, "chunk": str(n + 1), "timestamp": clock(n), "payload": base64.b64encode(payload).decode()},
            })
            sequence += 1
    late = next(i for i, m in enumerate(messages) if m["media"]["track"] == "outbound" and m["media"]["chunk"] == "51")
    messages.insert(late + 3, messages.pop(late))  # arrives after the next chunks of both tracks
    messages.insert(late + 6, dict(messages[late + 5]))  # and one sent twice
    return messages


async def call(
    url: str, parameters: dict, headers: dict | None = None, dtmf: bool = True, speed: float = 10.0,
    call_sid: str = CALL_SID, clock=lambda n: str(n * 20),
) -> int | None:
    caller_text, agent_text, inbound, outbound = phone_line()
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps(start_message(parameters, call_sid)))
        for n, message in enumerate(media_messages(inbound, outbound, clock)):
            await ws.send(json.dumps(message))
            if n % 20 == 0:
                await asyncio.sleep(0.2 / speed)  # 20 messages: 200 ms of the call
            if dtmf and n == 100:
                await ws.send(json.dumps({"event": "dtmf", "streamSid": STREAM_SID, "sequenceNumber": "0", "dtmf": {"track": "inbound_track", "digit": "7"}}))
                await ws.send(json.dumps({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "greeting"}}))
                await ws.send(json.dumps({"event": "something-new", "streamSid": STREAM_SID}))
        await ws.send(json.dumps({"event": "stop", "sequenceNumber": "999", "streamSid": STREAM_SID, "stop": {"accountSid": "AC0123", "callSid": call_sid}}))
        await ws.wait_closed()
        return ws.close_code


async def follow(server, session_id: str, headers: dict | None = None) -> list[dict]:
    for _ in range(100):  # until the call is live
        try:
            async with websockets.connect(f"{server.ws}/v0/sessions/{session_id}/events", additional_headers=headers or {}) as ws:
                return [json.loads(m) async for m in ws]
        except InvalidStatus as exc:
            if exc.response.status_code != 404:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("the call never became a session")


def test_a_two_party_call_is_transcribed_per_party_and_followed_live(server):
    caller_text, agent_text, _, _ = phone_line()

    async def go():
        parameters = {"inbound_label": "caller", "outbound_label": "agent", "language": "en", "unknown_thing": "ignored"}
        placed = asyncio.create_task(call(f"{server.ws}/v0/telephony/twilio", parameters))
        events = await follow(server, CALL_SID)
        return await placed, events

    code, events = run(go())
    assert code == 1000
    finals = [e for e in events if e["type"] == "transcript.final"]
    said = {label: " ".join(f["segment"]["text"] for f in finals if f["label"] == label) for label in ("caller", "agent")}
    assert wer(caller_text, said["caller"]) <= 0.25 and wer(agent_text, said["agent"]) <= 0.25, said
    assert "suit" not in said["agent"].lower() and "quilter" not in said["caller"].lower()
    closed = events[-1]
    assert closed["type"] == "session.closed" and [c["label"] for c in closed["channels"]] == ["caller", "agent"]
    [digit] = [e for e in events if e["type"] == "signal"]  # the DTMF key the caller pressed, when
    assert (digit["kind"], digit["value"], digit["channel"]) == ("dtmf", "7", 0) and 0 < digit["at"] < closed["duration"]
    assert closed["duration"] == pytest.approx(len(phone_line()[2]) / 8000, abs=0.05)
    snapshot = json.loads(__import__("httpx").get(f"{server.http}/v0/sessions/{CALL_SID}").text)
    assert snapshot["kind"] == "twilio" and snapshot["status"] == "ended"


def test_a_dropped_socket_finalises_everything_the_aligner_held(server):
    """No stop: the socket just closes. The agent's track ran ahead (the
    caller's last chunks never came); what it sent is still transcribed to the end."""
    _, agent_text, inbound, outbound = phone_line()
    sid = "CAdropped0000000000000000000000000"

    async def go():
        follower = asyncio.create_task(follow(server, sid))
        async with websockets.connect(f"{server.ws}/v0/telephony/twilio") as ws:
            start = start_message({"outbound_label": "agent"}, sid)
            await ws.send(json.dumps(start))
            for n, message in enumerate(media_messages(inbound[: len(inbound) // 2], outbound)):
                await ws.send(json.dumps(message))
                if n % 20 == 0:
                    await asyncio.sleep(0.02)
        return await follower

    events = run(go())
    closed = events[-1]
    assert closed["type"] == "session.closed"
    assert closed["duration"] == pytest.approx(len(outbound) / 8000, abs=0.05)  # all of the agent's audio
    agent = " ".join(e["segment"]["text"] for e in events if e["type"] == "transcript.final" and e["label"] == "agent")
    assert wer(agent_text, agent) <= 0.25, agent


def test_the_signature_is_checked_when_the_server_has_the_auth_token(make_server):
    server = make_server(twilio_auth_token="12345", public_url="wss://stt.example.com")
    url = f"{server.ws}/v0/telephony/twilio"

    async def refused(signature: str):
        async with websockets.connect(url, additional_headers={"X-Twilio-Signature": signature}):
            pass

    for bad in ("", "bm90IGEgc2lnbmF0dXJl", twilio_signature("other-token", "wss://stt.example.com/v0/telephony/twilio")):
        with pytest.raises(InvalidStatus) as answer:
            run(refused(bad))
        assert answer.value.response.status_code == 403
    good = {"X-Twilio-Signature": twilio_signature("12345", "wss://stt.example.com/v0/telephony/twilio")}
    assert run(call(url, {}, good, dtmf=False)) == 1000


def test_an_https_public_url_takes_the_wss_url_twilio_signs(make_server):
    """Issue 19: Twilio connects over wss only, and signs that URL; an operator
    who gave the https URL of the same host must not have every call refused."""
    server = make_server(twilio_auth_token="12345", public_url="https://stt.example.com/")
    signed = {"X-Twilio-Signature": twilio_signature("12345", "wss://stt.example.com/v0/telephony/twilio")}
    assert run(call(f"{server.ws}/v0/telephony/twilio", {}, signed, dtmf=False)) == 1000


@pytest.mark.parametrize("clock", [
    lambda n: str(n * 20 + (36_000_000 if n >= 100 else 0)),  # +10 hours at 2 s
    lambda n: str(10**30 + n * 20),  # a clock that starts somewhere absurd
    lambda n: str(n * 20 + (36_000_000 if n < 150 else 0)),  # ten hours back at 3 s
], ids=["jump-forward", "start-at-1e30", "jump-back"])
def test_a_broken_media_clock_loses_nothing_of_the_call(server, clock):
    """Issue 19: a timestamp jump beyond the gap bound used to put every later
    chunk hours away (11 s of speech became 911 s, only the first 2 s transcribed)."""
    caller_text, agent_text, inbound, _ = phone_line()
    sid = "CA" + format(abs(hash(clock(1))) % 16**32, "032x")

    async def go():
        placed = asyncio.create_task(call(f"{server.ws}/v0/telephony/twilio", {}, dtmf=False, call_sid=sid, clock=clock))
        events = await follow(server, sid)
        return await placed, events

    code, events = run(go())
    assert code == 1000
    closed = events[-1]
    assert closed["type"] == "session.closed"
    assert closed["duration"] == pytest.approx(len(inbound) / 8000, abs=0.1)  # not hours
    finals = [e for e in events if e["type"] == "transcript.final"]
    said = [" ".join(f["segment"]["text"] for f in finals if f["channel"] == c) for c in (0, 1)]
    assert wer(caller_text, said[0]) <= 0.25 and wer(agent_text, said[1]) <= 0.25, said


def test_with_api_keys_the_key_comes_as_a_parameter(make_server):
    server = make_server(api_keys=("sesame",))
    url = f"{server.ws}/v0/telephony/twilio"
    assert run(call(url, {"api_key": "sesame"}, dtmf=False)) == 1000

    async def wrong_key():
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps(start_message({"api_key": "wrong"})))
            await ws.wait_closed()
            return ws.close_code, ws.close_reason

    code, reason = run(wrong_key())
    assert code == 1008 and "api_key" in reason


def test_a_socket_that_does_not_start_properly_is_closed(server):
    async def opening(*messages):
        async with websockets.connect(f"{server.ws}/v0/telephony/twilio") as ws:
            for m in messages:
                await ws.send(json.dumps(m))
            await ws.wait_closed()
            return ws.close_code, ws.close_reason

    code, reason = run(opening({"event": "media", "media": {}}))
    assert code == 1008 and "start" in reason
    bad_format = start_message({})
    bad_format["start"]["mediaFormat"] = {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}
    code, reason = run(opening(bad_format))
    assert code == 1008 and "mulaw" in reason
