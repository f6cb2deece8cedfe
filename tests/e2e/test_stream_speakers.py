"""Speaker labels live (contract section 9): three real voices taking turns, the real speaker model,
through the native stream (and a subscriber, the snapshot), the Deepgram, OpenAI and AssemblyAI SDKs."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from gateway.audio import encode_samples
from gateway.client import stream_audio, stream_url
from tests.clips import TURNS, turns_of

SR = 16000
FIRST_HEARD = ["leopard-en", "ds-arctic-a0024", "lhotse-libri-2412-153948-0000"]  # TURNS' voices in order


@pytest.fixture(scope="module")
def conversation() -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    audio, turns = turns_of(*TURNS)
    return np.concatenate([audio, np.zeros(SR, np.float32)]), turns


def in_turns(words: list[tuple[float, float, object]], turns) -> list[set]:
    """The speakers of the words (or items: start, end, speaker) whose middle lies inside each turn."""
    return [{s for a, b, s in words if start <= (a + b) / 2 <= end} for start, end, _ in turns]


def expected(turns, names) -> list[set]:
    return [{names[FIRST_HEARD.index(clip)]} for _, _, clip in turns]


def test_the_native_stream_labels_finals_words_and_partials_and_followers_see_them(server, conversation):
    audio, turns = conversation
    url = stream_url(server.ws, diarize="true", language="en", session_id="meeting-7")
    result = asyncio.run(stream_audio(url, audio, speed=4.0))
    finals = result.finals
    words = [(w["start"], w["end"], w["speaker"]) for f in finals for w in f["segment"]["words"]]
    assert in_turns(words, turns) == expected(turns, "ABC")
    assert all(f["segment"]["speaker"] in "ABC" for f in finals)
    partials = result.of_type("transcript.partial")
    assert partials and all(p["speaker"] in "ABC" for p in partials)
    closed = result.closed
    assert [s["speaker"] for s in closed["speakers"]] == ["A", "B", "C"]
    assert sum(s["segments"] for s in closed["speakers"]) == len([f for f in finals if f["segment"]["text"].strip()])
    # a subscriber after the end, and the snapshot, carry the same labels
    async def follow():
        async with websockets.connect(f"{server.ws}/v0/sessions/meeting-7/events") as follower:
            return [json.loads(m) async for m in follower]

    followed = [e for e in asyncio.run(follow()) if e["type"] == "transcript.final"]
    assert [f["segment"]["speaker"] for f in followed] == [f["segment"]["speaker"] for f in finals]
    snapshot = httpx.get(server.http + "/v0/sessions/meeting-7").json()
    assert [f["speaker"] for f in snapshot["channels"][0]["finals"]] == [f["segment"]["speaker"] for f in finals]


def test_the_deepgram_sdk_gets_an_integer_speaker_on_every_word(server, conversation):
    from .test_door_deepgram import Inbox, client_for, send_paced

    audio, turns = conversation

    async def go():
        async with client_for(server).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=16000, diarize="true", interim_results="false"
        ) as socket:
            inbox = Inbox(socket)
            await send_paced(socket, encode_samples(audio, "pcm_s16le"), 32000, speed=4.0)
            await socket.send_close_stream()
            return await inbox.closed(timeout=120)

    messages = asyncio.run(go())
    words = [
        (w.start, w.end, w.speaker)
        for m in messages if m.type == "Results" and m.is_final
        for w in m.channel.alternatives[0].words
    ]
    assert words and all(isinstance(s, int) for _, _, s in words)
    assert in_turns(words, turns) == expected(turns, [0, 1, 2])


def test_the_openai_sdk_gets_a_speaker_on_each_completed_item_with_the_diarize_model(server, conversation):
    from .test_door_openai import client_for, send_paced

    audio, turns = conversation

    async def go():
        async with client_for(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(session={
                "type": "transcription",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}, "transcription": {"model": "gpt-4o-transcribe-diarize"}}},
            })
            sender = asyncio.create_task(send_paced(conn, encode_samples(audio, "pcm_s16le"), 32000, speed=4.0))
            completed = []
            async for event in conn:
                if event.type == "conversation.item.input_audio_transcription.completed":
                    completed.append(event)
                    if event.transcript and event.model_extra["words"][-1]["end"] >= turns[-1][1] - 0.5:
                        break
            await sender
            return completed

    completed = asyncio.run(go())
    said = [(e.model_extra["words"][0]["start"], e.model_extra["words"][-1]["end"], e.model_extra["speaker"]) for e in completed if e.transcript]
    assert in_turns(said, turns) == expected(turns, "ABC")
    words = [(w["start"], w["end"], w["speaker"]) for e in completed for w in e.model_extra["words"]]
    assert in_turns(words, turns) == expected(turns, "ABC")


def test_the_assemblyai_sdk_gets_speaker_labels_on_turns_and_words(server, conversation):
    from assemblyai.streaming.v3 import StreamingParameters

    from .test_door_assemblyai import Session, paced

    audio, turns = conversation
    session = Session(server)
    session.client.connect(StreamingParameters(sample_rate=16000, speaker_labels=True))
    session.client.stream(paced(encode_samples(audio, "pcm_s16le"), 32000, speed=4.0))
    session.client.disconnect(terminate=True)
    assert session.terminated.is_set() and not session.errors
    ends = session.turns(end_of_turn=True)
    said = [(t.words[0].start / 1000, t.words[-1].end / 1000, t.speaker_label) for t in ends if t.words]
    assert in_turns(said, turns) == expected(turns, "ABC")
    assert all(w.speaker == t.speaker_label for t in ends for w in t.words)


def test_diarize_must_be_true_or_false(server):
    async def go():
        events = []
        async with websockets.connect(stream_url(server.ws, diarize="maybe")) as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                async for message in ws:
                    events.append(json.loads(message))
            return events, ws.close_code

    events, code = asyncio.run(go())
    assert events[-1]["type"] == "error" and events[-1]["code"] == "invalid_config" and "diarize" in events[-1]["message"]
    assert code == 1008
