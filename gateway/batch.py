"""Transcribing a whole file: split at pauses, decode the pieces on the engine, join.

A file is cut into chunks of at most ``max_chunk_s`` at VAD pauses; long
silences between speech are skipped (they cost decode time and invite
hallucinations). Chunks are decoded independently as batch-priority jobs, so
the engine runs them in parallel without delaying live finals; the language,
when not given, is detected on the first chunk and kept for the rest. Times
are shifted back into file time, so timestamps run continuously over the
whole file.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from vad.segmenter import Segmenter, SegmenterConfig, SpeechEnd, SpeechStart

from .audio import SAMPLE_RATE
from .decoder import DecodeOptions, Decoding
from .engine import DecodeJob, Engine, Priority
from .protocol import Segment, stream_words


class BatchInputError(ValueError):
    """The upload cannot be transcribed (HTTP 400)."""


@dataclass(frozen=True)
class BatchRequest:
    model: str | None = None
    language: str | None = None
    task: str = "transcribe"
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False


@dataclass(frozen=True)
class Transcription:
    text: str
    task: str
    language: str
    duration: float
    segments: list[Segment]


def plan_chunks(
    audio: np.ndarray, max_chunk_s: float = 28.0, max_gap_s: float = 2.0, pad_s: float = 0.2
) -> list[tuple[int, int]]:
    """Sample ranges to decode: speech regions joined up to ``max_chunk_s``."""
    total = audio.shape[0]
    segmenter = Segmenter(
        SegmenterConfig(aggressiveness=1, endpoint_ms=300, pre_roll_ms=300, max_segment_s=max_chunk_s)
    )
    regions: list[list[int]] = []
    for event in segmenter.feed(audio) + segmenter.flush():
        if isinstance(event, SpeechStart):
            regions.append([event.start, total])
        elif isinstance(event, SpeechEnd):
            regions[-1][1] = event.end
    if not regions:
        # The VAD heard nothing; let Whisper's own no-speech judgement decide.
        step = int(max_chunk_s * SAMPLE_RATE)
        return [(s, min(s + step, total)) for s in range(0, total, step)]
    limit, gap = int(max_chunk_s * SAMPLE_RATE), int(max_gap_s * SAMPLE_RATE)
    chunks: list[list[int]] = []
    for start, end in regions:
        if chunks and start - chunks[-1][1] <= gap and end - chunks[-1][0] <= limit:
            chunks[-1][1] = end
        else:
            chunks.append([start, end])
    pad = int(pad_s * SAMPLE_RATE)
    out = []
    for i, (start, end) in enumerate(chunks):
        lo = max(start - pad, chunks[i - 1][1] if i else 0)
        hi = min(end + pad, chunks[i + 1][0] if i + 1 < len(chunks) else total)
        hi = min(hi, max(end, lo + limit))  # padding never pushes a chunk past the limit
        lo = max(lo, hi - limit)
        out.append((lo, hi))
    return out


def temperature_schedule(temperature: float) -> tuple[float, ...]:
    """Whisper's fallback: start at the asked temperature, climb by 0.2 to 1.0."""
    steps = [round(temperature + 0.2 * i, 2) for i in range(6)]
    return tuple(t for t in steps if t <= 1.0) or (temperature,)


class FileTranscription:
    """The plan and the joining for one file; drivers below run it."""

    def __init__(self, audio: np.ndarray, request: BatchRequest):
        if audio.shape[0] == 0:
            raise BatchInputError("the file contains no audio samples")
        self.audio = audio
        self.request = request
        self.chunks = plan_chunks(audio)

    def job(self, index: int, language: str | None) -> DecodeJob:
        start, end = self.chunks[index]
        r = self.request
        options = DecodeOptions(
            language=language,
            task=r.task,
            prompt=r.prompt,
            temperatures=temperature_schedule(r.temperature),
            word_timestamps=r.word_timestamps,
            segment_timestamps=True,
        )
        return DecodeJob(self.audio[start:end], options, Priority.BATCH, model=r.model)

    def join(self, decodings: list[Decoding]) -> Transcription:
        duration = self.audio.shape[0] / SAMPLE_RATE
        segments: list[Segment] = []
        for (start, end), d in zip(self.chunks, decodings):
            if not d.is_speech:
                continue
            offset, chunk_end = start / SAMPLE_RATE, end / SAMPLE_RATE
            for s in d.segments:
                lo = max(offset + s.start, segments[-1].end if segments else 0.0)
                hi = min(max(offset + s.end, lo), chunk_end)
                words = stream_words(s.words, offset, lo, hi)
                if words:
                    lo, hi = words[0].start, words[-1].end
                segments.append(
                    Segment(
                        id=len(segments), seek=start // 160, start=lo, end=hi, text=s.text, tokens=s.tokens,
                        temperature=d.temperature, avg_logprob=d.avg_logprob,
                        compression_ratio=d.compression_ratio, no_speech_prob=d.no_speech_prob, words=tuple(words),
                    )
                )
        language = decodings[0].language if decodings else (self.request.language or "en")
        text = "".join(s.text for s in segments).strip()
        return Transcription(text, self.request.task, language, duration, segments)


def transcribe(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Blocking driver (CLI, benchmarks)."""
    plan = FileTranscription(audio, request)
    first = engine.decode(plan.job(0, request.language))
    language = request.language or first.language
    futures = [engine.submit(plan.job(i, language)) for i in range(1, len(plan.chunks))]
    return plan.join([first, *(f.result() for f in futures)])


async def transcribe_async(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Event-loop driver (HTTP API); a cancelled request cancels its queued chunks."""
    plan = FileTranscription(audio, request)
    futures = [engine.submit(plan.job(0, request.language))]
    try:
        first = await asyncio.wrap_future(futures[0])
        language = request.language or first.language
        futures += [engine.submit(plan.job(i, language)) for i in range(1, len(plan.chunks))]
        rest = [await asyncio.wrap_future(f) for f in futures[1:]]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return plan.join([first, *rest])
