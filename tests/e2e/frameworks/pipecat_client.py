"""pipecat's STT services pointed at a gateway, as a pipecat user runs them.

Runs in the framework's own virtualenv (``.venv-agents``, built by the
Makefile), so it imports nothing of the gateway or the tests:

    python pipecat_client.py '{"base": "http://127.0.0.1:8000", "services": ["deepgram"], "wav": "speech.wav"}'

For each service, at once: a pipeline of pipecat's VAD (Silero, default
parameters), the service (default settings but the URL and a key), and a
sink of its transcription frames; the audio is queued in 20 ms frames at
real-time pace, then 2 s of silence, then ``EndFrame`` once the finals
have said the audio's last word (``last_word`` in the spec; else 3 s later). Prints one JSON
line per transcription frame: service, kind (interim/final), text, and the
second of audio sent when it arrived.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave

from heard import heard_final, until_said
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import EndFrame, InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

FRAME_MS = 20
KEY = "framework-test"


def make_service(name: str, base: str):
    ws = base.replace("http://", "ws://", 1)
    if name == "deepgram":
        from pipecat.services.deepgram.stt import DeepgramSTTService

        return DeepgramSTTService(api_key=KEY, base_url=ws)
    if name == "assemblyai":
        from pipecat.services.assemblyai.stt import AssemblyAISTTService

        return AssemblyAISTTService(api_key=KEY, api_endpoint_base_url=f"{ws}/v3/ws")
    if name == "openai":
        from pipecat.services.openai.stt import OpenAISTTService

        return OpenAISTTService(api_key=KEY, base_url=f"{base}/v1")
    if name == "openai-realtime":
        from pipecat.services.openai.stt import OpenAIRealtimeSTTService

        return OpenAIRealtimeSTTService(api_key=KEY, base_url=f"{ws}/v1/realtime")
    raise SystemExit(f"unknown service {name!r}")


class Sink(FrameProcessor):
    def __init__(self, name: str, clock):
        super().__init__()
        self.service = name
        self.clock = clock

    async def process_frame(self, frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        kind = "final" if isinstance(frame, TranscriptionFrame) else "interim" if isinstance(frame, InterimTranscriptionFrame) else None
        if kind and frame.text.strip():
            if kind == "final":
                heard_final(self.service, frame.text)
            print(json.dumps({"service": self.service, "kind": kind, "text": frame.text, "at": round(self.clock(), 3)}), flush=True)
        await self.push_frame(frame, direction)


async def run_service(name: str, base: str, pcm: bytes, stop_secs: float | None, last_word: str | None) -> None:
    started = time.monotonic()
    # pipecat's defaults unless the caller (bench/frameworks.py) tries another pause
    vad = SileroVADAnalyzer() if stop_secs is None else SileroVADAnalyzer(params=VADParams(stop_secs=stop_secs))
    worker = PipelineWorker(
        Pipeline([VADProcessor(vad_analyzer=vad), make_service(name, base), Sink(name, lambda: time.monotonic() - started)]),
        cancel_on_idle_timeout=False,
    )
    ready = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        ready.set()

    async def feed() -> None:
        nonlocal started
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)  # the service's socket opens on the StartFrame
        step = 16000 * 2 * FRAME_MS // 1000
        audio = pcm + b"\0" * (16000 * 2 * 2)
        started = time.monotonic()
        for n, at in enumerate(range(0, len(audio), step)):
            await worker.queue_frame(InputAudioRawFrame(audio=audio[at : at + step], sample_rate=16000, num_channels=1))
            await asyncio.sleep(max(0.0, started + (n + 1) * FRAME_MS / 1000 - time.monotonic()))
        await until_said(name, last_word)  # the last finals
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), feed())


async def main(spec: dict) -> None:
    with wave.open(spec["wav"], "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), "16 kHz mono 16-bit"
        pcm = w.readframes(w.getnframes())
    await asyncio.gather(*(run_service(name, spec["base"], pcm, spec.get("vad_stop_secs"), spec.get("last_word")) for name in spec["services"]))


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(main(json.loads(sys.argv[1])))
