"""The AssemblyAI door, driven by the ``assemblyai`` SDK's ``StreamingClient``
exactly as a user would (``api_host`` pointed at the gateway), real speech,
the real model. The accuracy bound comes from the native door."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import soxr
import websockets
from assemblyai.streaming.v3 import (
    StreamingClient,
    StreamingClientOptions,
    StreamingEvents,
    StreamingParameters,
    StreamingSessionParameters,
)

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, load_clip

WER_MARGIN = 0.10
CLIP = "lhotse-libri-2412-153948-0000"


def audio_of(clip_id: str, rate: int = 16000, encoding: str = "pcm_s16le", pad_s: float = 1.5) -> bytes:
    samples = np.concatenate([load_clip(clip_id), np.zeros(int(pad_s * 16000), np.float32)])
    if rate != 16000:
        samples = soxr.resample(samples, 16000, rate).astype(np.float32)
    return encode_samples(samples, encoding)


def paced(data: bytes, bytes_per_s: int, speed: float = 3.0, chunk_s: float = 0.1, before_the_last_second=None):
    """``data`` in chunks at ``speed`` times real time. ``before_the_last_second``:
    a condition waited for (not raced) before the last second of audio goes,
    for what must happen while the audio still streams."""
    step = int(bytes_per_s * chunk_s)
    last_second = len(data) - bytes_per_s
    for i in range(0, len(data), step):
        if before_the_last_second is not None and i <= last_second < i + step:
            deadline = time.monotonic() + 60
            while not before_the_last_second():
                assert time.monotonic() < deadline, "still nothing, with a second of audio left to send"
                time.sleep(0.02)
        yield data[i : i + step]
        time.sleep(chunk_s / speed)


class Session:
    """A StreamingClient with every event it dispatches recorded."""

    def __init__(self, server, key: str = "any-key"):
        self.client = StreamingClient(StreamingClientOptions(api_key=key, api_host=server.ws))
        self.events: list = []
        self.errors: list = []
        self.terminated = threading.Event()
        for kind in (StreamingEvents.Begin, StreamingEvents.Turn, StreamingEvents.Warning):
            self.client.on(kind, lambda _client, event: self.events.append(event))
        self.client.on(StreamingEvents.Termination, self._terminated)
        self.client.on(StreamingEvents.Error, lambda _client, error: self.errors.append(error))

    def _terminated(self, _client, event) -> None:
        self.events.append(event)
        self.terminated.set()

    def turns(self, **match) -> list:
        return [e for e in self.events if e.type == "Turn" and all(getattr(e, k) == v for k, v in match.items())]


def test_turns_with_final_words_and_formatted_ends_terminate_cleanly(server):
    clip = CLIPS[CLIP]
    session = Session(server)
    session.client.connect(
        StreamingParameters(
            sample_rate=16000, format_turns=True, min_end_of_turn_silence_when_confident=500,
            end_of_turn_confidence_threshold=0.7, keyterms_prompt=["reader", "antecedents"],
        )
    )
    live: list = []

    def partial_turn_seen() -> bool:
        live[:] = session.turns(end_of_turn=False)
        return bool(live)

    session.client.stream(paced(audio_of(clip.id), 32000, before_the_last_second=partial_turn_seen))
    session.client.set_params(StreamingSessionParameters(min_turn_silence=500))  # the same: confirmed, no warning
    session.client.disconnect(terminate=True)

    assert session.terminated.is_set() and not session.errors
    assert session.events[0].type == "Begin" and session.events[0].expires_at.timestamp() > time.time()
    assert session.events[-1].type == "Termination"
    assert abs(session.events[-1].audio_duration_seconds - len(audio_of(clip.id)) / 32000) <= 1
    assert not [e for e in session.events if e.type == "Warning"]
    assert live, "no partial turn while the audio was streaming"
    for turn in session.turns(end_of_turn=False):
        settled = [w.text for w in turn.words if w.word_is_final]
        assert [w.word_is_final for w in turn.words] == sorted((w.word_is_final for w in turn.words), reverse=True)
        assert turn.transcript == " ".join(settled)
    ends = session.turns(end_of_turn=True)
    plain, formatted = [t for t in ends if not t.turn_is_formatted], [t for t in ends if t.turn_is_formatted]
    assert [t.turn_order for t in plain] == [t.turn_order for t in formatted] == list(range(len(plain)))
    for p, f in zip(plain, formatted):
        assert session.events.index(p) < session.events.index(f)
        assert p.transcript == p.transcript.lower() and "," not in p.transcript
        assert f.transcript == " ".join(w.text for w in f.words)
        assert all(w.word_is_final and isinstance(w.start, int) and w.start <= w.end for w in f.words)
        # a turn's final words keep the words its partials called final
        for partial in session.turns(turn_order=p.turn_order, end_of_turn=False):
            settled = [w.text for w in partial.words if w.word_is_final]
            assert p.transcript.split()[: len(settled)] == settled
    text = " ".join(t.transcript for t in formatted)
    native = asyncio.run(stream_audio(stream_url(server.ws), load_clip(clip.id), speed=3.0, chunk_ms=100))
    assert wer(clip.text, text) <= wer(clip.text, native.text) + WER_MARGIN, text


def test_mulaw_8khz_and_force_endpoint(server):
    clip = CLIPS["ds-arctic-a0024"]
    session = Session(server)
    session.client.connect(StreamingParameters(sample_rate=8000, encoding="pcm_mulaw", format_turns=False))
    session.client.stream(paced(audio_of(clip.id, 8000, "mulaw", pad_s=0.0), 8000, speed=10.0))
    session.client.force_endpoint()  # no trailing silence: only ForceEndpoint ends the turn
    deadline = time.monotonic() + 30
    while not session.turns(end_of_turn=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    [turn] = session.turns(end_of_turn=True)
    session.client.disconnect(terminate=True)
    assert session.terminated.is_set() and not session.errors
    assert not turn.turn_is_formatted and turn.end_of_turn_confidence < 1.0  # forced, not an endpoint
    assert wer(clip.text, turn.transcript) <= 0.25, turn.transcript


def test_a_bad_key_is_refused_and_a_bad_message_answered(make_server):
    server = make_server(api_keys=("right-key",))
    refused = Session(server, key="wrong-key")
    refused.client.connect(StreamingParameters(sample_rate=16000))
    assert refused.errors and "401" in str(refused.errors[0])

    async def raw():  # pipecat and others send text this SDK never would
        url = f"{server.ws}/v3/ws?sample_rate=16000&token=right-key"
        async with websockets.connect(url) as ws:
            begin = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "Dance"}))
            warning = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "Terminate"}))
            rest = [json.loads(m) async for m in ws]
            return begin, warning, rest, ws.close_code

    begin, warning, rest, code = asyncio.run(raw())
    assert begin["type"] == "Begin" and isinstance(begin["expires_at"], int)
    assert warning["type"] == "Warning" and "Dance" in warning["warning"]
    assert [m["type"] for m in rest] == ["Termination"] and code == 1000
