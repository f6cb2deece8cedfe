"""The OpenAI Realtime door, driven by the ``openai`` SDK exactly as a user would.

``AsyncOpenAI(base_url=".../v1").realtime.connect(extra_query={"intent":
"transcription"})``: the SDK's own connection, its own event models, real
speech, the real model. The accuracy bound comes from the native door on the
same clip.
"""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
import soxr
from openai import AsyncOpenAI

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, load_clip
from tests.unit.frontdoors.test_openai import session_update  # the SDK's session, one spelling for both tiers

WER_MARGIN = 0.10  # a door may be this much worse than the native door on the same clip
CLIP = "lhotse-libri-2412-153948-0000"


def run(coro):
    return asyncio.run(coro)


def client_for(server, key: str = "not-checked") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{server.http}/v1", api_key=key, max_retries=0)


def audio_at(clip_id: str, rate: int, encoding: str, pad_s: float = 1.5) -> bytes:
    samples = np.concatenate([load_clip(clip_id), np.zeros(int(pad_s * 16000), np.float32)])
    if rate != 16000:
        samples = soxr.resample(samples, 16000, rate).astype(np.float32)
    return encode_samples(samples, encoding)


async def send_paced(conn, data: bytes, bytes_per_s: int, speed: float = 3.0, chunk_s: float = 0.1) -> None:
    step = int(bytes_per_s * chunk_s)
    for i in range(0, len(data), step):
        await conn.input_audio_buffer.append(audio=base64.b64encode(data[i : i + step]).decode())
        await asyncio.sleep(chunk_s / speed)


def native_wer(server, clip_id: str) -> float:
    result = run(stream_audio(stream_url(server.ws), load_clip(clip_id), speed=3.0, chunk_ms=100))
    return wer(CLIPS[clip_id].text, result.text)


def check_items(events: list) -> dict[str, str]:
    """Each item's deltas joined equal its completed transcript, come before
    it, and one item id runs through its events; returns item -> transcript."""
    transcripts: dict[str, str] = {}
    deltas: dict[str, list[str]] = {}
    for e in events:
        if e.type == "conversation.item.input_audio_transcription.delta":
            assert e.item_id not in transcripts, "a delta after its item's completed"
            deltas.setdefault(e.item_id, []).append(e.delta)
        elif e.type == "conversation.item.input_audio_transcription.completed":
            assert "".join(deltas.get(e.item_id, [])) == e.transcript, (deltas.get(e.item_id), e.transcript)
            assert e.usage.type == "duration" and e.usage.seconds >= 0
            transcripts[e.item_id] = e.transcript
    committed = [e.item_id for e in events if e.type == "input_audio_buffer.committed"]
    assert committed == list(transcripts), "every completed item was committed first, in order"
    added = [e.item.id for e in events if e.type == "conversation.item.added"]
    assert added == committed
    return transcripts


def test_server_vad_turns_stream_live_deltas_that_join_to_the_transcript(server):
    clip = CLIPS[CLIP]

    async def go():
        events = []
        sent_all = asyncio.Event()
        live_before_end = []
        async with client_for(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            created = await conn.recv()  # sent at once, before any client event
            assert created.type == "session.created"
            await conn.session.update(
                session=session_update({"type": "audio/pcm", "rate": 24000}, {"type": "server_vad", "silence_duration_ms": 500, "threshold": 0.5, "prefix_padding_ms": 300})
            )
            audio = audio_at(clip.id, 24000, "pcm_s16le")
            first_delta = asyncio.Event()

            async def send() -> None:
                # Deltas come while the audio streams: the last second waits for the first (no race with the clock).
                await send_paced(conn, audio[:-48000], 48000)
                await asyncio.wait_for(first_delta.wait(), 60)
                await send_paced(conn, audio[-48000:], 48000)

            sender = asyncio.create_task(send())
            sender.add_done_callback(lambda _: sent_all.set())
            started: set[str] = set()
            done: set[str] = set()
            deadline = asyncio.get_running_loop().time() + 60
            while not (sent_all.is_set() and started and started <= done):
                assert asyncio.get_running_loop().time() < deadline, "items never completed"
                try:
                    event = await asyncio.wait_for(conn.recv(), 0.5)
                except TimeoutError:
                    continue
                events.append(event)
                if event.type == "input_audio_buffer.speech_started":
                    started.add(event.item_id)
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    done.add(event.item_id)
                elif event.type == "conversation.item.input_audio_transcription.delta" and not sent_all.is_set():
                    live_before_end.append(event.delta)
                    first_delta.set()
            await sender
        return created, events, live_before_end

    created, events, live = run(go())
    assert created.session.type == "transcription"
    updated = next(e for e in events if e.type == "session.updated")
    assert updated.session.audio.input.format.type == "audio/pcm" and updated.session.audio.input.format.rate == 24000
    assert updated.session.audio.input.turn_detection.type == "server_vad"
    assert updated.session.audio.input.transcription.language == "en"
    assert live, "no live text before the audio ended"
    transcripts = check_items(events)
    # One item id across speech_started, speech_stopped, committed, added, deltas, completed.
    for kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"):
        assert [e.item_id for e in events if e.type == kind] == list(transcripts), kind
    completed = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    for e in completed:
        words = e.model_extra["words"] if e.model_extra else []
        assert "".join(w["word"] for w in words).strip() == e.transcript
    text = " ".join(transcripts.values())
    assert wer(clip.text, text) <= native_wer(server, clip.id) + WER_MARGIN, text


def test_client_commits_with_turn_detection_null_over_pcmu(server):
    clip = CLIPS["ds-arctic-a0024"]

    async def go():
        async with client_for(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.recv()
            await conn.session.update(session=session_update({"type": "audio/pcmu"}, None))
            updated = await conn.recv()
            await conn.input_audio_buffer.commit()  # nothing appended yet
            error = await conn.recv()
            await send_paced(conn, audio_at(clip.id, 8000, "mulaw", pad_s=0.3), 8000, speed=20.0)
            await conn.input_audio_buffer.commit()
            events = []
            while not events or events[-1].type != "conversation.item.input_audio_transcription.completed":
                events.append(await asyncio.wait_for(conn.recv(), 30))
        return updated, error, events

    updated, error, events = run(go())
    assert updated.type == "session.updated"
    assert updated.session.audio.input.turn_detection is None and updated.session.audio.input.format.type == "audio/pcmu"
    assert error.type == "error" and error.error.code == "input_audio_buffer_commit_empty"
    assert not [e for e in events if e.type.startswith("input_audio_buffer.speech_")]  # no VAD events without VAD
    [transcript] = check_items(events).values()
    assert wer(clip.text, transcript) <= 0.25, transcript


def test_bad_client_events_are_answered_and_the_session_lives_on_over_pcma(server):
    clip = CLIPS["ds-arctic-a0024"]

    async def go():
        async with client_for(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.recv()
            await conn.send({"type": "response.create"})
            await conn.send({"type": "input_audio_buffer.append", "audio": "%%% not base64"})
            errors = [await conn.recv(), await conn.recv()]
            await conn.session.update(session=session_update({"type": "audio/pcma"}, None, keywords=[], delay="low"))
            updated = await conn.recv()
            await send_paced(conn, audio_at(clip.id, 8000, "alaw", pad_s=0.3), 8000, speed=20.0)
            await conn.input_audio_buffer.commit()
            events = []
            while not events or events[-1].type != "conversation.item.input_audio_transcription.completed":
                events.append(await asyncio.wait_for(conn.recv(), 30))
        return errors, updated, events

    errors, updated, events = run(go())
    assert [e.type for e in errors] == ["error", "error"]
    assert "response.create" in errors[0].error.message
    assert errors[1].error.code == "invalid_audio"
    assert updated.type == "session.updated" and updated.session.audio.input.format.type == "audio/pcma"
    [transcript] = check_items(events).values()
    assert wer(clip.text, transcript) <= 0.25, transcript


def test_a_bad_key_is_refused_at_the_upgrade(make_server):
    server = make_server(api_keys=("right-key",))

    async def attempt(key: str):
        async with client_for(server, key).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            return await conn.recv()

    with pytest.raises(Exception, match="401"):
        run(attempt("wrong-key"))
    assert run(attempt("right-key")).type == "session.created"


def test_a_conversation_session_is_refused_with_an_error(server):
    async def go():
        async with client_for(server).realtime.connect(model="gpt-realtime") as conn:
            return await conn.recv()

    error = run(go())
    assert error.type == "error" and "intent=transcription" in error.error.message


def test_the_beta_protocol_livekit_speaks_is_served(server):
    """LiveKit's OpenAI STT (1.x) configures a transcription session with the
    beta ``transcription_session.update``, right after connecting."""
    import json

    import websockets

    clip = CLIPS["ds-arctic-a0024"]
    config = {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-mini-transcribe", "prompt": "", "language": "en"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 600, "silence_duration_ms": 350},
        },
    }

    async def go():
        url = f"{server.ws}/v1/realtime?intent=transcription"
        headers = {"Authorization": "Bearer x", "OpenAI-Beta": "realtime=v1", "User-Agent": "LiveKit Agents"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps(config))  # without waiting for session.created
            data = audio_at(clip.id, 24000, "pcm_s16le")
            for i in range(0, len(data), 2400):  # 50 ms frames, as LiveKit sends
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(data[i : i + 2400]).decode()}))
            events = []
            while not events or events[-1]["type"] != "conversation.item.input_audio_transcription.completed":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return events

    events = run(go())
    assert events[0]["type"] == "session.created"
    updated = next(e for e in events if e["type"] == "transcription_session.updated")
    assert updated["session"]["input_audio_format"] == "pcm16"
    assert updated["session"]["turn_detection"]["silence_duration_ms"] == 350
    completed = events[-1]
    deltas = "".join(e["delta"] for e in events if e["type"].endswith("transcription.delta"))
    assert deltas == completed["transcript"]
    assert wer(clip.text, completed["transcript"]) <= 0.25, completed["transcript"]
