"""The live stream end to end: a real server, real sockets, real speech, tiny.en."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import numpy as np
import pytest
import websockets

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, load_clip, speech_bounds, two_speakers

WER_MARGIN = 0.10  # streamed finals may be this much worse than offline decoding


def run(coro):
    return asyncio.run(coro)


def check_final_schema(result) -> None:
    finals = result.finals
    assert [f["segment"]["id"] for f in finals] == list(range(len(finals)))
    for f in finals:
        seg = f["segment"]
        for key in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob", "words"):
            assert key in seg, key
        assert seg["start"] <= seg["end"]
        previous = seg["start"]
        for w in seg["words"]:
            assert set(w) == {"word", "start", "end", "probability"}
            assert seg["start"] <= w["start"] <= w["end"] <= seg["end"], (w, seg["start"], seg["end"])
            assert w["start"] >= previous
            previous = w["start"]
        if seg["text"].strip():
            assert "".join(w["word"] for w in seg["words"]).strip() == seg["text"].strip()
    closed = result.closed
    assert closed is not None
    assert closed["text"] == " ".join(f["segment"]["text"].strip() for f in finals if f["segment"]["text"].strip())
    assert closed["segments"] == len(finals)


def test_clip_streamed_faster_than_real_time(server, offline_text):
    clip = CLIPS["lhotse-libri-2412-153948-0000"]
    result = run(stream_audio(stream_url(server.ws), load_clip(clip.id), speed=3.0, chunk_ms=100))

    assert result.close_code == 1000
    assert result.events[0]["type"] == "session.created"
    assert result.events[0]["session"]["sample_rate"] == 16000
    finals = result.finals
    assert finals, "no final"
    check_final_schema(result)
    # Partials come before their final. (Not every segment need have one: at
    # 3x real time on a busy machine an utterance can end before its first
    # partial is decoded, and the final replaces it.)
    with_partials = 0
    for f in finals:
        sid = f["segment"]["id"]
        partials = [e for e in result.events[: result.events.index(f)] if e["type"] == "transcript.partial" and e["segment_id"] == sid]
        if not partials:
            continue
        with_partials += 1
        for p in partials:
            assert p["text"].startswith(p["stable_text"])
        # The stable prefix never changes once given, even by the final.
        stables = [p["stable_text"] for p in partials]
        for a, b in zip(stables, stables[1:]):
            assert b.startswith(a)
        assert f["segment"]["text"].strip().startswith(stables[-1])
    assert with_partials, "no segment had a partial"
    # No partial of a segment after its final.
    final_at = {f["segment"]["id"]: result.events.index(f) for f in finals}
    for i, e in enumerate(result.events):
        if e["type"] == "transcript.partial":
            assert i < final_at[e["segment_id"]]
    bound = wer(clip.text, offline_text(clip.id)) + WER_MARGIN
    assert wer(clip.text, result.text) <= bound, (result.text, offline_text(clip.id))
    assert result.closed["language"] == "en"
    assert abs(result.closed["duration"] - clip.duration) < 0.01


def test_silence_splits_utterances(server):
    first, second = load_clip("ds-arctic-a0024"), load_clip("wlk-libri-7902-96591-0000")
    gap = np.zeros(3 * 16000, np.float32)
    audio = np.concatenate([first, gap, second])
    offset = (len(first) + len(gap)) / 16000
    a_start, a_end = speech_bounds(first)
    b_start, b_end = speech_bounds(second)

    result = run(stream_audio(stream_url(server.ws), audio, speed=4.0, trailing_silence_s=1.0))

    check_final_schema(result)
    finals = [f["segment"] for f in result.finals if f["segment"]["text"].strip()]
    assert len(finals) == 2, [f["text"] for f in finals]
    assert abs(finals[0]["start"] - a_start) <= 0.3 and abs(finals[0]["end"] - a_end) <= 0.3, (finals[0], a_start, a_end)
    assert abs(finals[1]["start"] - (offset + b_start)) <= 0.3, (finals[1], offset + b_start)
    assert abs(finals[1]["end"] - (offset + b_end)) <= 0.3, (finals[1], offset + b_end)
    assert wer(CLIPS["ds-arctic-a0024"].text, finals[0]["text"]) <= 0.2
    assert wer(CLIPS["wlk-libri-7902-96591-0000"].text, finals[1]["text"]) <= 0.2
    started = result.of_type("speech.started")
    assert [e["segment_id"] for e in started] == [0, 1]


async def _collect_until(ws, predicate, timeout=60.0) -> list[dict]:
    events = []
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            events.append(event)
            if predicate(event):
                return events


def test_flush_finalises_the_utterance_in_progress(server):
    audio = load_clip("lhotse-libri-2412-153948-0000")[: 4 * 16000]  # cut mid-sentence

    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            for i in range(0, len(audio), 1600):
                await ws.send(encode_samples(audio[i : i + 1600], "pcm_s16le"))
            await ws.send(json.dumps({"type": "flush"}))
            events = await _collect_until(ws, lambda e: e["type"] == "transcript.final")
            final = events[-1]["segment"]
            # The stream stays open after a flush: more speech, another final.
            more = load_clip("ds-arctic-a0024")
            await ws.send(encode_samples(more, "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            rest = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            await ws.wait_closed()
            return final, events + rest, ws.close_code

    final, events, code = run(go())
    assert final["id"] == 0
    assert "reader" in final["text"].lower()
    assert final["end"] <= 4.0 + 1e-6
    finals = [e["segment"] for e in events if e["type"] == "transcript.final"]
    assert [f["id"] for f in finals] == [0, 1]
    assert "north" in finals[1]["text"].lower()
    assert code == 1000


def test_end_without_speech_closes_cleanly(server):
    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.send(encode_samples(np.zeros(16000, np.float32), "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            events = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            await ws.wait_closed()
            return events, ws.close_code

    events, code = run(go())
    assert [e["type"] for e in events] == ["session.created", "session.closed"]
    assert events[-1]["segments"] == 0 and events[-1]["text"] == ""
    assert code == 1000


def _metric(server, name: str, **labels) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    body = httpx.get(f"{server.http}/metrics").text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_abrupt_close_still_finalises(server):
    audio = load_clip("ds-arctic-a0024")
    before = _metric(server, "stt_stream_events_total", type="transcript.final", delivered="false")

    async def go():
        ws = await websockets.connect(stream_url(server.ws))
        await ws.send(encode_samples(audio, "pcm_s16le"))
        await ws.recv()  # session.created
        ws.transport.abort()  # no end, no close handshake

    run(go())
    for _ in range(200):
        if _metric(server, "stt_stream_events_total", type="transcript.final", delivered="false") > before:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert _metric(server, "stt_stream_events_total", type="transcript.final", delivered="false") == before + 1


def test_two_concurrent_clients_get_their_own_transcripts(server):
    a, b = "ds-arctic-a0024", "leopard-en"

    async def both():
        return await asyncio.gather(
            stream_audio(stream_url(server.ws), load_clip(a), speed=2.0),
            stream_audio(stream_url(server.ws), load_clip(b), speed=2.0),
        )

    ra, rb = run(both())
    assert wer(CLIPS[a].text, ra.text) <= 0.2, ra.text
    assert wer(CLIPS[b].text, rb.text) <= 0.2, rb.text
    assert ra.events[0]["session_id"] != rb.events[0]["session_id"]


def test_mulaw_8khz_stream(server, registry):
    import soxr

    clip = CLIPS["ds-ldc93s1"]
    narrowband = soxr.resample(load_clip(clip.id), 16000, 8000)
    result = run(
        stream_audio(
            stream_url(server.ws, sample_rate=8000, encoding="mulaw"), narrowband,
            sample_rate=8000, encoding="mulaw", speed=4.0, chunk_ms=20,
        )
    )
    assert result.events[0]["session"]["encoding"] == "mulaw"
    # The yardstick: offline decoding of the same telephone-band audio.
    from gateway.audio import decode_samples
    from gateway.audio import encode_samples as encode

    heard = soxr.resample(decode_samples(encode(narrowband, "mulaw"), "mulaw"), 8000, 16000)
    segments, _ = registry.get("tiny.en").transcribe(heard, beam_size=5)
    offline = "".join(s.text for s in segments)
    assert wer(clip.text, result.text) <= wer(clip.text, offline) + WER_MARGIN, (result.text, offline)
    assert abs(result.closed["duration"] - clip.duration) < 0.05


def test_session_update_before_audio(server):
    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            created = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.update", "session": {"endpoint_ms": 800, "interim_results": False}}))
            updated = json.loads(await ws.recv())
            await ws.send(encode_samples(load_clip("ds-arctic-a0024"), "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            rest = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            return created, updated, rest

    created, updated, rest = run(go())
    assert created["session"]["endpoint_ms"] == 500
    assert updated["type"] == "session.updated"
    assert updated["session"]["endpoint_ms"] == 800 and updated["session"]["interim_results"] is False
    assert not [e for e in rest if e["type"] == "transcript.partial"]
    assert [e for e in rest if e["type"] == "transcript.final"]


# -- bad input -----------------------------------------------------------------
def test_bad_frames_get_errors_and_the_stream_goes_on(server):
    speech = load_clip("ds-arctic-a0024")

    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.recv()  # session.created
            await ws.send(b"\x00\x01\x02")  # odd byte count for pcm_s16le
            odd = json.loads(await ws.recv())
            await ws.send("this is not json")
            not_json = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "dance"}))
            unknown = json.loads(await ws.recv())
            await ws.send(json.dumps(["flush"]))
            not_object = json.loads(await ws.recv())
            await ws.send(encode_samples(speech, "pcm_s16le"))
            await ws.send(json.dumps({"type": "session.update", "session": {"language": "en"}}))
            events = await _collect_until(ws, lambda e: e["type"] == "error")
            late_update = events[-1]
            await ws.send(json.dumps({"type": "end"}))
            rest = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            await ws.wait_closed()
            return odd, not_json, unknown, not_object, late_update, events + rest, ws.close_code

    odd, not_json, unknown, not_object, late_update, events, code = run(go())
    assert odd["code"] == "invalid_audio" and not odd["fatal"] and "multiple of 2" in odd["message"]
    assert not_json["code"] == "invalid_message" and not not_json["fatal"]
    assert unknown["code"] == "invalid_message" and "dance" in unknown["message"] and "flush" in unknown["message"]
    assert not_object["code"] == "invalid_message"
    assert late_update["code"] == "invalid_state" and not late_update["fatal"]
    text = " ".join(e["segment"]["text"] for e in events if e["type"] == "transcript.final")
    assert wer(CLIPS["ds-arctic-a0024"].text, text) <= 0.2, text
    assert code == 1000


@pytest.mark.parametrize(
    "query, needle",
    [
        ({"colour": "blue"}, "colour"),
        ({"sample_rate": 11025}, "sample_rate"),
        ({"encoding": "opus"}, "encoding"),
        ({"endpoint_ms": 5}, "endpoint_ms"),
        ({"language": "xx"}, "language"),
        ({"model": "large-v9"}, "tiny.en"),
        ({"interim_results": "maybe"}, "interim_results"),
    ],
)
def test_invalid_options_are_refused_with_1008(server, query, needle):
    async def go():
        async with websockets.connect(stream_url(server.ws, **query)) as ws:
            event = json.loads(await ws.recv())
            await ws.wait_closed()
            return event, ws.close_code

    event, code = run(go())
    assert event["type"] == "error" and event["code"] == "invalid_config" and event["fatal"] is True
    assert needle in event["message"]
    assert code == 1008


def test_invalid_session_update_is_refused_with_1008(server):
    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": {"vad_aggressiveness": 7}}))
            event = json.loads(await ws.recv())
            await ws.wait_closed()
            return event, ws.close_code

    event, code = run(go())
    assert event["code"] == "invalid_config" and "vad_aggressiveness" in event["message"]
    assert code == 1008


def test_a_bad_client_does_not_disturb_another(server):
    clip = CLIPS["leopard-en"]

    async def vandal():
        async with websockets.connect(stream_url(server.ws)) as ws:
            for _ in range(20):
                await ws.send(b"\x01")
                await ws.send("{{{")
                await asyncio.sleep(0.05)

    async def both():
        good = asyncio.create_task(stream_audio(stream_url(server.ws), load_clip(clip.id), speed=3.0))
        await vandal()
        return await good

    result = run(both())
    assert not result.of_type("error")
    assert wer(clip.text, result.text) <= 0.2, result.text


# -- admission and authentication ------------------------------------------------
def test_api_key_protects_the_stream(make_server):
    running = make_server(api_keys=("sesame", "other"))

    async def attempt(**kwargs):
        async with websockets.connect(stream_url(running.ws), **kwargs) as ws:
            return json.loads(await ws.recv())

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(attempt())
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        run(attempt(additional_headers={"Authorization": "Bearer wrong"}))
    assert run(attempt(additional_headers={"Authorization": "Bearer sesame"}))["type"] == "session.created"
    # Browsers cannot set headers: the key may come as a subprotocol.
    assert run(attempt(subprotocols=["stt-gateway", "bearer.other"]))["type"] == "session.created"


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_streams_beyond_capacity_get_503_with_retry_after(make_server):
    running = make_server(max_streams=1)

    async def go():
        async with websockets.connect(stream_url(running.ws)) as first:
            await first.recv()
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(stream_url(running.ws)):
                    pass
            return refused.value.response

    errors = Records()
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's loggers do not propagate
    uvicorn_log.addHandler(errors)
    try:
        response = run(go())
        time.sleep(0.3)  # uvicorn logs after the app returns
    finally:
        uvicorn_log.removeHandler(errors)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    # A refusal is the server working as meant, not an error in its log.
    assert not errors.records, [r.getMessage() for r in errors.records]


# -- bounded input (issue 11) ------------------------------------------------------
def test_audio_after_end_is_answered_with_invalid_state(server):
    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.send(encode_samples(load_clip("ds-arctic-a0024"), "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            await ws.send(encode_samples(np.zeros(1600, np.float32), "pcm_s16le"))  # too late
            events = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            await ws.wait_closed()
            return events, ws.close_code

    events, code = run(go())
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["code"], e["fatal"]) for e in errors] == [("invalid_state", False)], errors
    text = " ".join(e["segment"]["text"] for e in events if e["type"] == "transcript.final")
    assert wer(CLIPS["ds-arctic-a0024"].text, text) <= 0.2, text
    assert code == 1000


def test_malformed_json_is_an_error_event_not_a_dropped_socket(server):
    async def nested_then_speech():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.recv()  # session.created
            await ws.send("[" * 100_000 + "]" * 100_000)  # deeper than the JSON parser goes
            error = json.loads(await ws.recv())
            await ws.send(encode_samples(load_clip("ds-arctic-a0024"), "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            rest = await _collect_until(ws, lambda e: e["type"] == "session.closed")
            await ws.wait_closed()
            return error, rest, ws.close_code

    error, rest, code = run(nested_then_speech())
    assert error["type"] == "error" and error["code"] == "invalid_message" and not error["fatal"]
    assert [e for e in rest if e["type"] == "transcript.final"] and code == 1000

    async def overflowing_update():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.recv()
            await ws.send('{"type": "session.update", "session": {"endpoint_ms": 1e400}}')
            event = json.loads(await ws.recv())
            await ws.wait_closed()
            return event, ws.close_code

    event, code = run(overflowing_update())
    assert event["code"] == "invalid_config" and "endpoint_ms" in event["message"] and code == 1008


def test_a_prompt_longer_than_the_limit_is_refused(server):
    async def update_with(prompt: str):
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": {"prompt": prompt}}))
            event = json.loads(await ws.recv())
            if not event.get("fatal"):
                await ws.send(json.dumps({"type": "end"}))
            await ws.wait_closed()
            return event, ws.close_code

    event, code = run(update_with("glossary " * 400_000))  # 3.6 MB, as an attacker sent (4 MiB is the message limit)
    assert event["code"] == "invalid_config" and "prompt" in event["message"] and "4000" in event["message"]
    assert code == 1008
    event, code = run(update_with("Anna, Bolek, Czesław"))
    assert event["type"] == "session.updated" and event["session"]["prompt"] == "Anna, Bolek, Czesław"


def flood_without_reading(port: int, seconds: float = 30.0) -> None:
    """A client that upgrades, then sends bad frames (each answered with an
    error event) and never reads a byte: its receive window fills, and so
    does the server's send buffer."""
    import base64
    import os
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            f"GET /v0/audio/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in s.recv(1024)
        odd_byte = bytes([0x82, 0x81, 1, 2, 3, 4, 0x01 ^ 1])  # a masked 1-byte binary frame: invalid_audio
        s.setblocking(False)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                s.send(odd_byte * 100)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:  # the server dropped us
                return
        raise AssertionError("the server never closed a client that does not read")


def test_a_client_that_stops_reading_is_closed_and_frees_its_slot(make_server):
    running = make_server(send_timeout_s=1.0, max_streams=1)
    flood_without_reading(running.port)
    hub = running.app.state.hub
    deadline = time.monotonic() + 10
    while hub.runners:
        assert time.monotonic() < deadline, "the stream of a client that does not read still holds its slot"
        time.sleep(0.05)
    assert _metric(running, "stt_streams_total", outcome="slow_consumer") >= 1
    clip = CLIPS["ds-arctic-a0024"]
    result = run(stream_audio(stream_url(running.ws), load_clip(clip.id), speed=None))  # the slot is free again
    assert wer(clip.text, result.text) <= 0.2, result.text


def test_a_stream_without_speech_is_closed_after_the_idle_timeout(make_server):
    running = make_server(idle_timeout_s=1.0)

    async def silent(send_silence: bool):
        async with websockets.connect(stream_url(running.ws)) as ws:
            events = [json.loads(await ws.recv())]
            if send_silence:  # audio, but only silence, at real-time pace
                async def keep_sending():
                    while True:
                        await ws.send(encode_samples(np.zeros(1600, np.float32), "pcm_s16le"))
                        await asyncio.sleep(0.1)

                sender = asyncio.create_task(keep_sending())
            events += await _collect_until(ws, lambda e: e["type"] == "session.closed", timeout=10)
            if send_silence:
                sender.cancel()
            await ws.wait_closed()
            return events, ws.close_code

    for send_silence in (False, True):
        events, code = run(silent(send_silence))
        kinds = [e["type"] for e in events]
        assert kinds == ["session.created", "error", "session.closed"], kinds
        assert events[1]["code"] == "idle_timeout" and events[1]["fatal"] and code == 1000


def test_speech_keeps_a_stream_open_and_the_session_limit_ends_it(make_server):
    running = make_server(idle_timeout_s=2.0, max_session_s=4.0)
    clip = CLIPS["lhotse-libri-2412-153948-0000"]  # 11.7 s of speech at real-time pace: longer than the limit
    result = run(stream_audio(stream_url(running.ws), load_clip(clip.id), speed=1.0, end=False))
    codes = [e["code"] for e in result.of_type("error")]
    # Never idle (someone was speaking); audio the client sent on after the limit: invalid_state.
    assert codes[0] == "session_timeout" and set(codes[1:]) <= {"invalid_state"}, codes
    assert result.finals and result.closed is not None and 3.5 < result.closed["duration"] < 6.0
    assert "reader" in result.text.lower()  # what was received was finalised


def test_metrics_an_operator_needs(server):
    before_final = _metric(server, "stt_stream_latency_seconds_count", door="native", kind="final")
    before_sum = _metric(server, "stt_stream_latency_seconds_sum", door="native", kind="final")
    before_partial = _metric(server, "stt_stream_latency_seconds_count", door="native", kind="first_partial")
    before_errors = _metric(server, "stt_stream_errors_total", door="native", code="invalid_audio")

    async def go():
        async with websockets.connect(stream_url(server.ws)) as ws:
            await ws.send(b"\x00")  # odd: invalid_audio
            clip = load_clip("lhotse-libri-2412-153948-0000")
            for i in range(0, len(clip), 1600):  # at real time: latencies mean something
                await ws.send(encode_samples(clip[i : i + 1600], "pcm_s16le"))
                await asyncio.sleep(0.1)
            active = _metric(server, "stt_streams_active", door="native")
            await ws.send(json.dumps({"type": "end"}))
            await _collect_until(ws, lambda e: e["type"] == "session.closed")
            return active

    began = time.monotonic()
    active = run(go())
    lasted = time.monotonic() - began
    assert active >= 1
    finals = _metric(server, "stt_stream_latency_seconds_count", door="native", kind="final") - before_final
    assert finals > 0
    assert _metric(server, "stt_stream_latency_seconds_count", door="native", kind="first_partial") > before_partial
    # This stream's finals only (the server is shared): in seconds, not audio samples (16000
    # times larger). Each arrived while the test ran, so none can be later than the test lasted:
    # a bound the machine's load moves with it, not a clock to race.
    mean_latency = (_metric(server, "stt_stream_latency_seconds_sum", door="native", kind="final") - before_sum) / finals
    assert 0 < mean_latency <= lasted
    assert _metric(server, "stt_stream_errors_total", door="native", code="invalid_audio") == before_errors + 1
    assert _metric(server, "stt_engine_workers") == 2
    assert _metric(server, "stt_engine_pending", kind="batch") == 0
    assert 0 <= _metric(server, "stt_engine_pressure") <= 1


def test_a_stereo_call_is_transcribed_per_channel(server):
    """Two speakers on two channels (overlapping in time): each channel's
    text is its own speaker's, never the other's."""
    a, b, frames = two_speakers()
    audio = encode_samples(frames.reshape(-1), "pcm_s16le")

    async def go():
        url = stream_url(server.ws, channels=2, channel_labels="agent,caller")
        async with websockets.connect(url) as ws:
            step = 3200 * 2  # 100 ms of two channels
            for i in range(0, len(audio), step):
                await ws.send(audio[i : i + step])
                await asyncio.sleep(0.03)
            await ws.send(json.dumps({"type": "end"}))
            return [json.loads(m) async for m in ws]

    events = run(go())
    closed = events[-1]
    assert closed["type"] == "session.closed"
    finals = [e for e in events if e["type"] == "transcript.final"]
    text = {label: " ".join(f["segment"]["text"] for f in finals if f["label"] == label) for label in ("agent", "caller")}
    assert wer(a.text, text["agent"]) <= 0.25, text
    assert wer(b.text, text["caller"]) <= 0.25, text
    assert "suit" not in text["agent"].lower() and "quilter" not in text["caller"].lower()
    assert [(c["label"], c["segments"] > 0) for c in closed["channels"]] == [("agent", True), ("caller", True)]
    ids = [e["segment_id"] for e in events if e["type"] == "speech.started"]
    assert ids == sorted(ids) == list(range(len(ids)))
    assert all(e["channel"] == (0 if e["label"] == "agent" else 1) for e in events if "label" in e)


def test_the_client_waits_out_a_busy_server(make_server):
    """At capacity the server answers 503 with Retry-After; the bundled client
    waits that long and tries again, instead of failing."""
    server = make_server(max_streams=1, admission=False)
    clip = CLIPS["ds-arctic-a0024"]

    async def go():
        holder = await websockets.connect(stream_url(server.ws))  # takes the only slot
        await holder.recv()
        waiting = asyncio.create_task(stream_audio(stream_url(server.ws), load_clip(clip.id), speed=5.0, busy_retries=2))
        await asyncio.sleep(1.0)
        assert not waiting.done()  # refused, waiting out Retry-After
        await holder.close()
        return await asyncio.wait_for(waiting, 30)

    result = run(go())
    assert result.close_code == 1000 and wer(clip.text, result.text) <= 0.2, result.text

    async def refused():
        async with websockets.connect(stream_url(server.ws)):
            await stream_audio(stream_url(server.ws), load_clip(clip.id), busy_retries=0)

    with pytest.raises(websockets.exceptions.InvalidStatus):
        run(refused())
