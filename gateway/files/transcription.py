"""Transcribing a whole file: split at pauses, decode the pieces on the engine, join.

The file is cut into chunks at pauses (``gateway.files.chunks``). Chunks
are decoded independently as batch-priority jobs, so
the engine runs them in parallel without delaying live finals. Times are
shifted back into file time, so timestamps run continuously over the whole
file.

Whisper sometimes leaves speech of a chunk out: a last sentence it takes for
unfinished (its training leaves the text of a segment cut by the window's end
to the next window, which a chunk does not have), or, now and then, the first
seconds. Every chunk is therefore decoded with word timestamps, and voiced
speech where no word landed (``missed``) is decoded again on its own, as
faster-whisper's seek would. On the batch benchmark's 4.3 minutes of English
(``python -m bench.batch``) this took tiny.en's word error rate from 0.16 to
0.09 (64 to 20 deleted words), for about 15 % more decode time.

With the language known up front (asked for, or an English-only model) all
chunks are queued at once; otherwise the first chunk is decoded alone and its
detected language is kept for the rest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np

from gateway.audio.resample import SAMPLE_RATE
from gateway.core.records import Segment, Transcription, make_segment
from gateway.inference.engine import Engine
from gateway.inference.jobs import DecodeJob, Priority
from gateway.inference.records import DecodeOptions, Decoding

from .chunks import Span, SpeechRegion, plan_chunks, speech_regions, subtract_spans


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


def temperature_schedule(temperature: float) -> tuple[float, ...]:
    """Whisper's fallback: start at the asked temperature, climb by 0.2 to 1.0."""
    steps = [round(temperature + 0.2 * i, 2) for i in range(6)]
    return tuple(t for t in steps if t <= 1.0) or (temperature,)


class FileTranscription:
    """The plan, the check for skipped speech and the joining for one file; drivers below run it."""

    def __init__(
        self,
        audio: np.ndarray,
        request: BatchRequest,
        min_missed_s: float = 1.0,
        word_slack_s: float = 0.3,
        pad_s: float = 0.2,
        max_retries: int = 2,
        regions: list[SpeechRegion] | None = None,
    ):
        """``regions``: where the speech is, when the caller knows (default: the VAD finds it)."""
        if audio.shape[0] == 0:
            raise BatchInputError("the file contains no audio samples")
        self.audio = audio
        self.request = request
        self.regions = speech_regions(audio) if regions is None else regions
        self.chunks = plan_chunks(audio, regions=self.regions)
        self.min_missed = int(min_missed_s * SAMPLE_RATE)
        self.word_slack = int(word_slack_s * SAMPLE_RATE)
        self.pad = int(pad_s * SAMPLE_RATE)
        self.max_retries = max_retries
        self._depth: dict[Span, int] = {chunk: 0 for chunk in self.chunks}
        self._decoded: list[tuple[Span, Decoding]] = []
        # For text in file order while pieces are still decoding: the chunk
        # each piece came from, and the pieces of each chunk not settled yet.
        self._chunk_of: dict[Span, Span] = {chunk: chunk for chunk in self.chunks}
        self._unsettled: dict[Span, int] = {chunk: 1 for chunk in self.chunks}
        self._told = 0  # chunks whose text ``new_text`` has given

    def job(self, piece: Span, language: str | None) -> DecodeJob:
        start, end = piece
        r = self.request
        options = DecodeOptions(
            language=language,
            task=r.task,
            prompt=r.prompt,
            temperatures=temperature_schedule(r.temperature),
            word_timestamps=True,  # always: ``missed`` needs them, and segment times come from them
            segment_timestamps=True,
        )
        return DecodeJob(self.audio[start:end], options, Priority.BATCH, model=r.model)

    def settle(self, piece: Span, decoding: Decoding) -> list[Span]:
        """Keep a decoded piece; returns the parts of it to decode again (speech it left out).

        A part decoded again may leave speech out in turn, up to ``max_retries``
        levels; each level's pieces are strictly smaller, so this ends.
        """
        self._decoded.append((piece, decoding))
        chunk = self._chunk_of[piece]
        depth = self._depth.get(piece, 0)
        again = self.missed(piece, decoding) if depth < self.max_retries else []
        for p in again:
            self._depth[p] = depth + 1
            self._chunk_of[p] = chunk
        self._unsettled[chunk] += len(again) - 1
        return again

    def new_text(self) -> str:
        """The text of the chunks settled since the last call, in file order
        (a chunk waits for the ones before it): the whole text, a piece at a time."""
        parts: list[str] = []
        while self._told < len(self.chunks) and self._unsettled[self.chunks[self._told]] == 0:
            chunk = self.chunks[self._told]
            found = [  # (where in the file its speech starts, text): the order join() uses
                (piece[0] / SAMPLE_RATE + (s.words[0].start if s.words else s.start), s.text)
                for piece, d in self._decoded
                if self._chunk_of[piece] == chunk and d.is_speech
                for s in d.segments
            ]
            parts.extend(text for _, text in sorted(found, key=lambda pair: pair[0]))
            self._told += 1
        return "".join(parts)

    def missed(self, piece: Span, decoding: Decoding) -> list[Span]:
        """Parts of ``piece`` with voiced speech but no decoded word, to decode again on their own.

        Each is at least ``min_missed_s`` of voice and lies between the words
        that were found, so decoding it cannot repeat them. A piece without
        a single word (judged no speech) is left alone: the same audio would
        get the same answer.
        """
        start, end = piece
        words = [
            (start + int(w.start * SAMPLE_RATE), start + int(w.end * SAMPLE_RATE)) for w in decoding.words
        ]
        if not decoding.is_speech or not words:
            return []
        voiced = [
            (max(r.voiced[0], start), min(r.voiced[1], end))
            for r in self.regions
            if r.voiced[0] < end and r.voiced[1] > start
        ]
        heard = [(lo - self.word_slack, hi + self.word_slack) for lo, hi in words]
        holes: dict[Span, list[Span]] = {}  # missed voice, by the found words around it
        for lo, hi in subtract_spans(voiced, heard):
            if hi - lo >= self.min_missed:
                before = max((w_hi for _, w_hi in words if w_hi <= lo), default=start)
                after = min((w_lo for w_lo, _ in words if w_lo >= hi), default=end)
                holes.setdefault((before, after), []).append((lo, hi))
        out = []
        for (before, after), spans in holes.items():
            span = (max(spans[0][0] - self.pad, before), min(spans[-1][1] + self.pad, after))
            if span != piece:
                out.append(span)
        return out

    def steps(self, engine: Engine) -> Generator[Future, Decoding, Transcription]:
        """The whole decoding, for a driver to run: yields the future of each
        piece in turn, is sent its decoding, returns the transcription.
        Closing it early cancels the pieces still queued."""
        language = known_language(engine, self.request)
        pending: deque[tuple[Span, Future]] = deque()

        def submit(pieces: list[Span]) -> None:
            pending.extend((p, engine.submit(self.job(p, language))) for p in pieces)

        try:
            queue = list(self.chunks)
            if language is None:  # detected on the first chunk, then kept
                first = queue.pop(0)
                pending.append((first, engine.submit(self.job(first, None))))
                decoding = yield pending[0][1]
                pending.popleft()
                language = decoding.language
                submit(queue)
                submit(self.settle(first, decoding))
            else:
                submit(queue)
            while pending:
                piece, future = pending[0]
                decoding = yield future
                pending.popleft()
                submit(self.settle(piece, decoding))
        finally:
            for _, future in pending:
                future.cancel()
        return self.join(language)

    def join(self, language: str) -> Transcription:
        """The settled pieces in file time, in order, as one transcription."""
        duration = self.audio.shape[0] / SAMPLE_RATE
        pieces = []
        for (start, end), d in self._decoded:
            if not d.is_speech:
                continue
            offset, piece_end = start / SAMPLE_RATE, end / SAMPLE_RATE
            for s in d.segments:
                first = s.words[0].start if s.words else s.start
                pieces.append((offset + first, offset, piece_end, start, s, d))
        pieces.sort(key=lambda p: p[0])
        segments: list[Segment] = []
        for _, offset, piece_end, start, s, d in pieces:
            lo = max(offset + s.start, segments[-1].end if segments else 0.0)
            hi = min(max(offset + s.end, lo), piece_end)
            segments.append(
                make_segment(
                    len(segments), start, s.text, s.tokens, d, s.words, offset, lo, hi,
                    keep_words=self.request.word_timestamps,
                )
            )
        text = "".join(s.text for s in segments).strip()
        return Transcription(text, self.request.task, language, duration, segments)


def known_language(engine: Engine, request: BatchRequest) -> str | None:
    """The language before any decoding: asked for, or English for an English-only model."""
    if request.language:
        return request.language
    registry = engine.registry
    return "en" if registry.is_multilingual(registry.resolve(request.model)) is False else None


def transcribe(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Blocking driver (CLI, benchmarks)."""
    steps = FileTranscription(audio, request).steps(engine)
    try:
        future = next(steps)
        while True:
            future = steps.send(future.result())
    except StopIteration as done:
        return done.value
    finally:
        steps.close()


async def transcribe_stream(engine: Engine, audio: np.ndarray, request: BatchRequest) -> AsyncGenerator[str | Transcription, None]:
    """Event-loop driver that tells the text as it is decoded: pieces of
    text in file order (joined, the whole text), then the transcription.
    Closing it early cancels the pieces still queued."""
    loop = asyncio.get_running_loop()
    plan = await loop.run_in_executor(None, FileTranscription, audio, request)
    steps = plan.steps(engine)
    try:
        future = next(steps)
        while True:
            decoding = await asyncio.wrap_future(future)
            future = steps.send(decoding)
            text = plan.new_text()
            if text:
                yield text
    except StopIteration as done:
        text = plan.new_text()
        if text:
            yield text
        yield done.value
    finally:
        steps.close()


async def transcribe_async(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Event-loop driver (HTTP API): ``transcribe_stream`` without the
    pieces; a cancelled request cancels its queued pieces.

    The plan (a VAD pass over the whole file: seconds for an hour of audio)
    is made on a worker thread, so that the event loop keeps serving streams.
    """
    pieces = transcribe_stream(engine, audio, request)
    try:
        async for piece in pieces:
            if isinstance(piece, Transcription):
                return piece
    finally:
        await pieces.aclose()
    raise AssertionError("transcribe_stream ends with the transcription")


async def transcribe_channels(
    engine: Engine, planes: np.ndarray, request: BatchRequest, labels: Sequence[str]
) -> Transcription:
    """A multichannel file: each channel (row of ``planes``) transcribed on
    its own, at once (their chunks share the workers), then joined in time
    order, each segment marked with its channel and label."""
    results = await asyncio.gather(*(transcribe_async(engine, plane, request) for plane in planes))
    return join_channels(results, labels)


def join_channels(results: Sequence[Transcription], labels: Sequence[str]) -> Transcription:
    marked = [replace(s, channel=c, label=labels[c]) for c, r in enumerate(results) for s in r.segments]
    marked.sort(key=lambda s: (s.start, s.channel or 0))
    segments = [replace(s, id=i) for i, s in enumerate(marked)]
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    language = next((r.language for r in results if any(s.text.strip() for s in r.segments)), results[0].language)
    return Transcription(text, results[0].task, language, max(r.duration for r in results), segments)
