"""Transcribing a whole file: split at pauses, decode the pieces on the engine, join.

The file is cut into chunks at pauses (``gateway.files.chunks``). Chunks
are decoded independently as batch-priority jobs, so
the engine runs them in parallel without delaying live finals. Times are
shifted back into file time, so timestamps run continuously over the whole
file. A transcription plans from where the speech is (``FileScan``) and takes
each chunk's audio from a ``ChunkSource`` as it goes, holding at most
``ahead`` chunks: an upload of any length costs a few chunks of memory
(``gateway.files.feed``).

Whisper sometimes leaves speech of a chunk out: a last sentence it takes for
unfinished (its training leaves the text of a segment cut by the window's end
to the next window, which a chunk does not have), or, now and then, the first
seconds. Every chunk is therefore decoded with word timestamps, and voiced
speech where no word landed (``missed``) is decoded again on its own, as
faster-whisper's seek would. On the batch benchmark's 4.3 minutes of English
(``python -m bench.batch``) this took tiny.en's word error rate from 0.16 to
0.09 (64 to 20 deleted words), for about 15 % more decode time.

With the language known up front (asked for, or an English-only model)
``ahead`` chunks are queued at once; otherwise the first chunk is decoded
alone and its detected language is kept for the rest.

Diarized (``BatchRequest.diarization``), each chunk's voiced speech is also
embedded as it passes, and the joined result is labelled by speaker
(``gateway.files.diarization``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gateway.audio.resample import SAMPLE_RATE
from gateway.core.records import Segment, Transcription, make_segment
from gateway.core.redact import redact_segments, redact_text
from gateway.inference.engine import Engine
from gateway.inference.jobs import DecodeJob, Priority, VoiceWindows
from gateway.inference.records import DecodeOptions, Decoding
from redaction.replace import Redactor

from .chunks import Span, SpeechRegion, plan_chunks, speech_regions, subtract_spans
from .diarization import Diarization, embed_job, label_later, reference_job
from .feed import ArrayChunks, Chunk, ChunkSource

AHEAD = 6  # chunks of one file queued or decoding at once: the engine's workers stay busy, memory stays small


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
    diarization: Diarization | None = None  # label who said what
    redact: tuple[str, ...] = ()  # kinds never told (docs/protocol.md section 10): in the result and the text told as decoded


def temperature_schedule(temperature: float) -> tuple[float, ...]:
    """Whisper's fallback: start at the asked temperature, climb by 0.2 to 1.0."""
    steps = [round(temperature + 0.2 * i, 2) for i in range(6)]
    return tuple(t for t in steps if t <= 1.0) or (temperature,)


class FileTranscription:
    """The plan, the check for skipped speech and the joining for one file; drivers below run it."""

    def __init__(
        self,
        samples: int,
        regions: list[SpeechRegion],
        request: BatchRequest,
        min_missed_s: float = 1.0,
        word_slack_s: float = 0.3,
        pad_s: float = 0.2,
        max_retries: int = 2,
        ahead: int = AHEAD,
    ):
        """A file of ``samples`` (16 kHz) whose speech is in ``regions``; at
        most ``ahead`` of its chunks held (queued or decoding) at once."""
        if samples == 0:
            raise BatchInputError("the file contains no audio samples")
        self.samples = samples
        self.request = request
        self.regions = regions
        self.chunks = plan_chunks(samples, regions)
        self.min_missed = int(min_missed_s * SAMPLE_RATE)
        self.word_slack = int(word_slack_s * SAMPLE_RATE)
        self.pad = int(pad_s * SAMPLE_RATE)
        self.max_retries = max_retries
        self.ahead = ahead
        self._depth: dict[Span, int] = {chunk: 0 for chunk in self.chunks}
        self._decoded: list[tuple[Span, Decoding]] = []
        # For text in file order while pieces are still decoding: the chunk
        # each piece came from, and the pieces of each chunk not settled yet.
        self._chunk_of: dict[Span, Span] = {chunk: chunk for chunk in self.chunks}
        self._unsettled: dict[Span, int] = {chunk: 1 for chunk in self.chunks}
        self._audio: dict[Span, np.ndarray] = {}  # the chunks being decoded: their pieces are cut from them
        self._told = 0  # chunks whose text ``new_text`` has given
        self._told_redactor = Redactor(request.redact) if request.redact else None  # the text told, a piece at a time
        self._voices: list[VoiceWindows] = []  # diarized: each chunk's speaker windows, in file time

    @classmethod
    def of_audio(cls, audio: np.ndarray, request: BatchRequest, **tuning: Any) -> FileTranscription:
        """A plan for audio in memory (the VAD finds its speech)."""
        return cls(audio.shape[0], speech_regions(audio), request, **tuning)

    def job(self, piece: Span, language: str | None) -> DecodeJob:
        start, end = piece
        chunk = self._chunk_of[piece]
        audio = self._audio[chunk][start - chunk[0] : end - chunk[0]]
        r = self.request
        options = DecodeOptions(
            language=language,
            task=r.task,
            prompt=r.prompt,
            temperatures=temperature_schedule(r.temperature),
            word_timestamps=True,  # always: ``missed`` needs them, and segment times come from them
            segment_timestamps=True,
        )
        return DecodeJob(audio, options, Priority.BATCH, model=r.model)

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
        if self._unsettled[chunk] == 0:
            self._audio.pop(chunk, None)  # every piece of it is decoded
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
        text = "".join(parts)
        return redact_text(self._told_redactor, text) if self._told_redactor is not None and text else text

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

    def steps(self, engine: Engine, source: ChunkSource) -> Generator[Future[Any], Any, Transcription]:
        """The whole decoding, for a driver to run: yields futures (of a
        chunk's audio from ``source``, or of a piece's decoding) and is sent
        each one's result; returns the transcription. At most ``ahead``
        chunks are held at once (one until the language is known). Closing
        it early cancels the pieces still queued."""
        language = known_language(engine, self.request)
        pending: deque[tuple[Span, Future[Any], bool]] = deque()  # a piece's decoding, or (True) a chunk's voices
        taken = 0  # chunks taken from the source
        diarization = self.request.diarization
        references = [engine.submit(reference_job(k)) for k in diarization.known] if diarization else []

        def submit(pieces: list[Span]) -> None:
            pending.extend((p, engine.submit(self.job(p, language)), False) for p in pieces)

        try:
            while True:
                while taken < len(self.chunks) and len(self._audio) < (self.ahead if language is not None else 1):
                    chunk: Chunk | None = yield source.next()
                    if chunk is None:
                        raise BatchInputError("the file's audio ended before its planned chunks")  # not expected: same bytes
                    span, audio = chunk
                    assert span == self.chunks[taken], (span, self.chunks[taken])
                    taken += 1
                    self._audio[span] = audio
                    submit([span])
                    if diarization:
                        pending.append((span, engine.submit(embed_job(span, audio, self.regions)), True))
                if not pending:
                    break
                piece, future, voices = pending[0]
                result = yield future
                pending.popleft()
                if voices:
                    self._voices.append(result.shifted(piece[0] / SAMPLE_RATE))
                    continue
                if language is None:  # the first chunk, decoded alone: its language is kept
                    language = result.language
                submit(self.settle(piece, result))
            assert language is not None, "a file has at least one chunk"
            transcription = self.join(language)
            if diarization is None:
                return self.finish(transcription)
            heard = []
            for reference in references:
                heard.append((yield reference))
            r = self.request
            labelled: Transcription = yield label_later(
                transcription, VoiceWindows.join(self._voices), heard, diarization,
                lambda text: engine.text_tokens(r.model, text, language, r.task),
            )
            return self.finish(labelled)
        finally:
            for _, future, _ in pending:
                future.cancel()
            for reference in references:
                reference.cancel()

    def join(self, language: str) -> Transcription:
        """The settled pieces in file time, in order, as one transcription."""
        duration = self.samples / SAMPLE_RATE
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
                )
            )
        text = "".join(s.text for s in segments).strip()
        return Transcription(text, self.request.task, language, duration, segments)

    def finish(self, result: Transcription) -> Transcription:
        """The result as asked: redacted (each sensitive span a placeholder,
        in text, segments, words and tokens), its words kept only when asked for."""
        r = self.request
        segments = redact_segments(result.segments, r.redact)
        if not r.word_timestamps and r.diarization is None:
            segments = [replace(s, words=()) for s in segments]
        text = "".join(s.text for s in segments).strip() if r.redact else result.text
        return replace(result, text=text, segments=segments)


def known_language(engine: Engine, request: BatchRequest) -> str | None:
    """The language before any decoding: asked for, or English for an English-only model."""
    if request.language:
        return request.language
    registry = engine.registry
    return "en" if registry.is_multilingual(registry.resolve(request.model)) is False else None


def run_steps(steps: Generator[Future[Any], Any, Transcription]) -> Transcription:
    """Blocking driver (CLI, benchmarks)."""
    try:
        future = next(steps)
        while True:
            future = steps.send(future.result())
    except StopIteration as done:
        result: Transcription = done.value  # what the generator returned
        return result
    finally:
        steps.close()


def transcribe(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Audio in memory, blocking."""
    plan = FileTranscription.of_audio(audio, request)
    return run_steps(plan.steps(engine, ArrayChunks(audio, plan.chunks)))


async def text_as_decoded(engine: Engine, plan: FileTranscription, source: ChunkSource) -> AsyncGenerator[str | Transcription, None]:
    """Event-loop driver that tells the text as it is decoded: pieces of
    text in file order (joined, the whole text), then the transcription.
    Closing it early cancels the pieces still queued."""
    steps = plan.steps(engine, source)
    try:
        future = next(steps)
        while True:
            result = await asyncio.wrap_future(future)
            future = steps.send(result)
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


async def transcribe_planned(engine: Engine, plan: FileTranscription, source: ChunkSource) -> Transcription:
    """Event-loop driver (HTTP API): ``text_as_decoded`` without the
    pieces; a cancelled request cancels its queued pieces."""
    pieces = text_as_decoded(engine, plan, source)
    try:
        async for piece in pieces:
            if isinstance(piece, Transcription):
                return piece
    finally:
        await pieces.aclose()
    raise AssertionError("text_as_decoded ends with the transcription")


async def transcribe_async(engine: Engine, audio: np.ndarray, request: BatchRequest) -> Transcription:
    """Audio in memory, on the event loop; the plan (a VAD pass: seconds
    for an hour of audio) is made on a worker thread, so that the event
    loop keeps serving streams."""
    loop = asyncio.get_running_loop()
    plan = await loop.run_in_executor(None, FileTranscription.of_audio, audio, request)
    return await transcribe_planned(engine, plan, ArrayChunks(audio, plan.chunks))


async def transcribe_channels(
    engine: Engine, plans: Sequence[FileTranscription], sources: Sequence[ChunkSource], labels: Sequence[str]
) -> Transcription:
    """A multichannel file: each channel transcribed on its own, at once
    (their chunks share the workers), then joined in time order, each
    segment marked with its channel and label."""
    results = await asyncio.gather(*(transcribe_planned(engine, p, s) for p, s in zip(plans, sources, strict=True)))
    return join_channels(results, labels)


def join_channels(results: Sequence[Transcription], labels: Sequence[str]) -> Transcription:
    """Diarized, each channel was on its own: a speaker is the channel's
    label, ``label/A`` only where a channel holds more than one voice."""
    marked = [
        replace(s, channel=c, label=labels[c], speaker=_channel_speaker(labels[c], s.speaker, r))
        for c, r in enumerate(results)
        for s in r.segments
    ]
    marked.sort(key=lambda s: (s.start, s.channel or 0))
    segments = [replace(s, id=i) for i, s in enumerate(marked)]
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    language = next((r.language for r in results if any(s.text.strip() for s in r.segments)), results[0].language)
    return Transcription(text, results[0].task, language, max(r.duration for r in results), segments)


def _channel_speaker(label: str, speaker: str | None, result: Transcription) -> str | None:
    if speaker is None:
        return None
    voices = {s.speaker for s in result.segments if s.speaker is not None}
    return f"{label}/{speaker}" if len(voices) > 1 else label
