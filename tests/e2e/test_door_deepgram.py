"""The Deepgram door, driven by ``deepgram-sdk`` exactly as a user would:
``AsyncDeepgramClient`` with its environment pointed at the gateway, real
speech, the real model. The accuracy bound comes from the native door."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soxr
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, load_clip, two_speakers

WER_MARGIN = 0.10
CLIP = "lhotse-libri-2412-153948-0000"


def run(coro):
    return asyncio.run(coro)


def client_for(server, key: str = "any-key") -> AsyncDeepgramClient:
    environment = DeepgramClientEnvironment(base=server.http, production=server.ws, agent=server.ws, agent_rest=server.http)
    return AsyncDeepgramClient(api_key=key, environment=environment)


def audio_of(clip_id: str, rate: int = 16000, encoding: str = "pcm_s16le", pad_s: float = 1.5) -> bytes:
    samples = np.concatenate([load_clip(clip_id), np.zeros(int(pad_s * 16000), np.float32)])
    if rate != 16000:
        samples = soxr.resample(samples, 16000, rate).astype(np.float32)
    return encode_samples(samples, encoding)


async def send_paced(socket, data: bytes, bytes_per_s: int, speed: float = 3.0, chunk_s: float = 0.1, keepalive_every: int = 0) -> None:
    step = int(bytes_per_s * chunk_s)
    for n, i in enumerate(range(0, len(data), step)):
        await socket.send_media(data[i : i + step])
        if keepalive_every and n % keepalive_every == 0:
            await socket.send_keep_alive()  # LiveKit sends one every 5 s, audio or not
        await asyncio.sleep(chunk_s / speed)


class Inbox:
    """Every message the socket yields, read as it comes (as the SDK's own
    listening task does), so that a test can wait for one in particular."""

    def __init__(self, socket):
        self.messages: list = []
        self.task = asyncio.create_task(self._read(socket))

    async def _read(self, socket) -> None:
        async for message in socket:
            self.messages.append(message)

    async def until(self, predicate, since: int = 0, timeout: float = 30.0) -> int:
        """Wait for a message (from index ``since``) that satisfies ``predicate``; its index + 1."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i in range(since, len(self.messages)):
                if predicate(self.messages[i]):
                    return i + 1
            assert asyncio.get_running_loop().time() < deadline, f"timed out; got {[m.type for m in self.messages]}"
            assert not self.task.done(), f"the socket closed; got {[m.type for m in self.messages]}"
            await asyncio.sleep(0.02)

    async def closed(self, timeout: float = 30.0) -> list:
        await asyncio.wait_for(self.task, timeout)
        return self.messages


def is_final_from_finalize(m) -> bool:
    return m.type == "Results" and m.is_final and m.from_finalize


def check_results(messages: list) -> list:
    """Every Results is complete; finals never overlap and hold their words."""
    finals = []
    request_ids = set()
    for m in messages:
        if m.type != "Results":
            continue
        request_ids.add(m.metadata.request_id)
        channel, channels = m.channel_index
        assert 0 <= channel < channels and m.metadata.model_info.name
        alternative = m.channel.alternatives[0]
        assert isinstance(alternative.transcript, str) and 0.0 <= alternative.confidence <= 1.0
        if m.is_final:
            finals.append(m)
            for w in alternative.words:
                assert m.start <= w.start <= w.end <= m.start + m.duration + 1e-6, (w, m.start, m.duration)
                assert w.punctuated_word and w.word and 0.0 <= w.confidence <= 1.0
            if alternative.transcript:
                assert " ".join(w.punctuated_word for w in alternative.words) == alternative.transcript
    assert len(request_ids) == 1
    for a, b in zip(finals, finals[1:]):
        assert b.start >= a.start + a.duration - 1e-6, "finals overlap"
    return finals


def test_live_results_finalize_and_close_stream_like_livekit(server):
    clip = CLIPS[CLIP]
    data = audio_of(clip.id)
    half = len(data) // 2 // 2 * 2

    async def go():
        connect = client_for(server).listen.v1.connect(
            model="nova-3", language="en-US", encoding="linear16", sample_rate=16000, channels=1,
            interim_results="true", vad_events="true", utterance_end_ms="1000", endpointing=25,
            punctuate="true", smart_format="true", mip_opt_out="true", keyterm=["reader", "antecedents"],
            request_options={"additional_query_parameters": {"filler_words": "true", "no_delay": "true"}},
        )
        async with connect as socket:
            inbox = Inbox(socket)
            await send_paced(socket, data[:half], 32000, keepalive_every=5)
            # Interim results come while the audio streams: waited for, not raced, before the Finalize.
            await inbox.until(lambda m: m.type == "Results" and not m.is_final)
            live = [m for m in inbox.messages if m.type == "Results" and not m.is_final]
            await socket.send_finalize()
            first = await inbox.until(is_final_from_finalize)
            await send_paced(socket, data[half:], 32000, keepalive_every=5)
            await asyncio.sleep(1.5)
            await socket.send_finalize()  # nothing pending by now, or the last words
            second = await inbox.until(is_final_from_finalize, since=first)
            await socket.send_close_stream()
            messages = await inbox.closed()
            close_code = socket._websocket.close_code
        return live, messages, messages[first - 1], messages[second - 1], close_code

    live, messages, finalized, finalized_late, close_code = run(go())
    assert close_code == 1000
    assert messages[-1].type == "Metadata" and messages[-1].duration == pytest.approx(len(data) / 32000, abs=0.01)
    assert live, "no interim result before the first half ended"
    assert any(m.type == "SpeechStarted" for m in messages)
    assert any(m.type == "UtteranceEnd" for m in messages)
    finals = check_results(messages)
    assert any(f.speech_final for f in finals)
    assert finalized.channel.alternatives[0].transcript, "Finalize mid-speech gives the words so far"
    assert not finalized_late.speech_final
    text = " ".join(f.channel.alternatives[0].transcript for f in finals if f.channel.alternatives[0].transcript)
    native = run(stream_audio(stream_url(server.ws), load_clip(clip.id), speed=3.0, chunk_ms=100))
    assert wer(clip.text, text) <= wer(clip.text, native.text) + WER_MARGIN, text


def test_mulaw_8khz_and_bad_messages_answered_while_the_stream_goes_on(server):
    clip = CLIPS["ds-arctic-a0024"]

    async def go():
        connect = client_for(server).listen.v1.connect(model="nova-2", encoding="mulaw", sample_rate=8000, endpointing="false")
        async with connect as socket:
            inbox = Inbox(socket)
            await socket._send("not json")
            await socket._send({"type": "Dance"})
            await inbox.until(lambda m: m.type == "Error" and "Dance" in m.description)
            await send_paced(socket, audio_of(clip.id, 8000, "mulaw", pad_s=1.0), 8000, speed=10.0)
            await socket.send_close_stream()
            messages = await inbox.closed()
        return messages[:2], messages[2:]

    errors, rest = run(go())
    assert [e.type for e in errors] == ["Error", "Error"] and errors[0].variant == "SchemaError"
    assert "Dance" in errors[1].description
    finals = check_results(rest)
    assert not any(f.speech_final for f in finals)  # endpointing=false: never speech_final
    assert rest[-1].type == "Metadata"
    text = " ".join(f.channel.alternatives[0].transcript for f in finals)
    assert wer(clip.text, text) <= 0.25, text


def test_keys_in_either_scheme_and_a_bad_key_refused(make_server):
    server = make_server(api_keys=("right-key",))

    async def attempt(**client_args):
        environment = DeepgramClientEnvironment(base=server.http, production=server.ws, agent=server.ws, agent_rest=server.http)
        client = AsyncDeepgramClient(environment=environment, **client_args)
        async with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=16000) as socket:
            await socket.send_close_stream()
            return [m.type async for m in socket]

    with pytest.raises(ApiError) as refused:
        run(attempt(api_key="wrong-key"))
    assert refused.value.status_code == 401
    assert run(attempt(api_key="right-key")) == ["Metadata"]  # Authorization: Token <key>
    assert run(attempt(access_token="right-key")) == ["Metadata"]  # Authorization: Bearer <key>


def test_multichannel_gives_each_channel_its_own_results(server):
    a, b, frames = two_speakers()
    stereo_8k = soxr.resample(frames, 16000, 8000).astype(np.float32)  # a phone line's rate
    data = encode_samples(stereo_8k.reshape(-1), "mulaw")

    async def go():
        connect = client_for(server).listen.v1.connect(model="nova-3", encoding="mulaw", sample_rate=8000, channels=2, multichannel="true")
        async with connect as socket:
            inbox = Inbox(socket)
            await send_paced(socket, data, 16000, speed=5.0)
            await socket.send_close_stream()
            return await inbox.closed()

    messages = run(go())
    assert messages[-1].type == "Metadata" and messages[-1].channels == 2
    text = {0: "", 1: ""}
    for channel in (0, 1):
        finals = check_results([m for m in messages if m.type != "Results" or m.channel_index == [channel, 2]])
        text[channel] = " ".join(f.channel.alternatives[0].transcript for f in finals)
    assert wer(a.text, text[0]) <= 0.3 and wer(b.text, text[1]) <= 0.3, text
    assert "suit" not in text[0].lower() and "quilter" not in text[1].lower()


def test_a_bad_query_is_refused_at_the_upgrade_with_400(server):
    import httpx

    async def go(**query):
        async with client_for(server).listen.v1.connect(model="nova-3", **query):
            pass

    for query in ({"encoding": "linear16", "channels": 2}, {"encoding": "opus"}, {"encoding": "linear16", "sample_rate": 12345}):
        with pytest.raises(ApiError) as refused:
            run(go(**query))
        assert refused.value.status_code == 400, query
    # the body says why (the SDK keeps only the status)
    answer = httpx.get(server.http + "/v1/listen?channels=2", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                       "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert answer.status_code == 400 and "multichannel=true" in answer.json()["err_msg"]
