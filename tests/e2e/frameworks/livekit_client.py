"""LiveKit Agents' STT plugins pointed at a gateway, as an agent uses them.

Runs in the framework's own virtualenv (``.venv-agents``, built by the
Makefile), so it imports nothing of the gateway or the tests:

    python livekit_client.py '{"base": "http://127.0.0.1:8000", "services": ["deepgram"], "wav": "speech.wav"}'

For each service, at once, inside the plugins' HTTP context: a streaming
plugin gets ``stt.stream()`` and ``rtc.AudioFrame``s of 20 ms at real-time
pace, then 2 s of silence and ``end_input()``; its ``SpeechEvent``s are
read as they come. ``openai-batch`` (``openai.STT(use_realtime=False)``, a
non-streaming STT) is given each utterance whole (``recognize``), as
LiveKit's ``StreamAdapter`` does after its VAD. Default settings but the
URL and a key. Prints one JSON line per transcript event: service, kind
(interim/final), text, the second of audio sent when it arrived.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave

from heard import heard_final, until_said
from livekit import rtc
from livekit.agents import stt as agents_stt
from livekit.agents.utils import http_context

FRAME_MS = 20
KEY = "framework-test"


def make_stt(name: str, base: str):
    ws = base.replace("http://", "ws://", 1)
    if name == "deepgram":
        from livekit.plugins import deepgram

        return deepgram.STT(api_key=KEY, base_url=f"{base}/v1/listen")
    if name == "assemblyai":
        from livekit.plugins import assemblyai

        return assemblyai.STT(api_key=KEY, base_url=ws)
    if name == "openai-realtime":
        from livekit.plugins import openai

        return openai.STT(use_realtime=True, api_key=KEY, base_url=f"{base}/v1")
    if name == "openai-batch":
        from livekit.plugins import openai

        return openai.STT(use_realtime=False, api_key=KEY, base_url=f"{base}/v1")
    raise SystemExit(f"unknown service {name!r}")


def frames_of(pcm: bytes) -> list[rtc.AudioFrame]:
    step = 16000 * FRAME_MS // 1000
    samples = len(pcm) // 2
    return [
        rtc.AudioFrame(pcm[at * 2 : (at + step) * 2], sample_rate=16000, num_channels=1, samples_per_channel=min(step, samples - at))
        for at in range(0, samples, step)
    ]


def report(service: str, kind: str, text: str, started: float) -> None:
    if text.strip():
        if kind == "final":
            heard_final(service, text)
        print(json.dumps({"service": service, "kind": kind, "text": text, "at": round(time.monotonic() - started, 3)}), flush=True)


async def run_streaming(name: str, base: str, pcm: bytes, last_word: str | None) -> None:
    stream = make_stt(name, base).stream()
    started = time.monotonic()

    async def read() -> None:
        async for event in stream:
            if event.type == agents_stt.SpeechEventType.INTERIM_TRANSCRIPT:
                report(name, "interim", event.alternatives[0].text, started)
            elif event.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                report(name, "final", event.alternatives[0].text, started)

    reader = asyncio.create_task(read())
    for n, frame in enumerate(frames_of(pcm + b"\0" * (16000 * 2 * 2))):
        stream.push_frame(frame)
        await asyncio.sleep(max(0.0, started + (n + 1) * FRAME_MS / 1000 - time.monotonic()))
    stream.end_input()
    # Some plugins end the stream then; a pooled realtime socket waits for aclose.
    # Either way the finals that say the audio's last word are waited for, not timed.
    await until_said(name, last_word, done=reader.done)
    await stream.aclose()
    reader.cancel()


async def run_batch(name: str, base: str, utterances: list[tuple[int, int]], pcm: bytes) -> None:
    stt = make_stt(name, base)
    started = time.monotonic()
    for lo, hi in utterances:
        await asyncio.sleep(max(0.0, started + hi / 16000 - time.monotonic()))  # once the utterance has been heard
        event = await stt.recognize(frames_of(pcm[lo * 2 : hi * 2]))
        report(name, "final", event.alternatives[0].text, started)


async def main(spec: dict) -> None:
    with wave.open(spec["wav"], "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), "16 kHz mono 16-bit"
        pcm = w.readframes(w.getnframes())
    async with http_context.open():
        await asyncio.gather(*(
            run_batch(name, spec["base"], spec["utterances"], pcm) if name == "openai-batch" else run_streaming(name, spec["base"], pcm, spec.get("last_word"))
            for name in spec["services"]
        ))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
