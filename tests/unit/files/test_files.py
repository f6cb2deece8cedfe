"""Whole-file transcription without a model: chunking, skipped-speech repair, joining, both drivers."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

import numpy as np
import pytest

from gateway.files.chunks import SpeechRegion, plan_chunks, subtract_spans
from gateway.files.transcription import BatchInputError, BatchRequest, FileTranscription, transcribe, transcribe_async
from gateway.inference.records import DecodedSegment, Decoding, Word
from tests.clips import load_clip

SR = 16000


def s(seconds: float) -> int:
    return int(round(seconds * SR))


def decoding(words: list[tuple[str, float, float]], is_speech: bool = True, duration: float = 28.0) -> Decoding:
    """A decoding of one segment per sentence-ending word, times from the piece's start."""
    segments, current = [], []
    for text, start, end in words:
        current.append(Word(text, start, end, 0.9))
        if text.endswith("."):
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    return Decoding(
        segments=tuple(
            DecodedSegment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), (1,) * len(ws), tuple(ws)) for ws in segments
        ),
        language="en", language_probability=1.0, avg_logprob=-0.2, compression_ratio=1.3,
        no_speech_prob=0.01, temperature=0.0, is_speech=is_speech, window="short", duration=duration,
    )


def plan_with_speech(seconds: float, voiced: list[tuple[float, float]]) -> FileTranscription:
    """A plan over silence whose speech regions are given (one chunk covering them)."""
    regions = [SpeechRegion((s(a) - s(0.3), s(b) + s(0.3)), (s(a), s(b))) for a, b in voiced]
    return FileTranscription(s(seconds), regions, BatchRequest(word_timestamps=True))


def test_subtract_spans():
    assert subtract_spans([(0, 10), (20, 30)], [(2, 4), (8, 22), (25, 26)]) == [(0, 2), (4, 8), (22, 25), (26, 30)]
    assert subtract_spans([(0, 10)], []) == [(0, 10)]
    assert subtract_spans([(0, 10)], [(-5, 15)]) == []


def test_chunks_join_speech_up_to_the_limit_and_skip_long_silences():
    audio = np.zeros(s(100), np.float32)
    regions = [SpeechRegion((s(a), s(b)), (s(a), s(b))) for a, b in [(1, 10), (11, 20), (21, 27), (28, 31), (40, 45), (46, 70)]]
    chunks = plan_chunks(len(audio), regions)
    seconds = [(a / SR, b / SR) for a, b in chunks]
    # Pauses under 2 s join speech up to 28 s, with 0.2 s of padding; longer silences are skipped.
    assert seconds == [(0.8, 27.2), (27.8, 31.2), (39.8, 45.2), (45.8, 70.2)]
    assert plan_chunks(s(60), []) == [(0, s(28)), (s(28), s(56)), (s(56), s(60))]


def test_empty_audio_is_refused():
    with pytest.raises(BatchInputError):
        FileTranscription(0, [], BatchRequest())


def test_voice_without_words_is_decoded_again_between_the_words_found():
    plan = plan_with_speech(30, [(1.0, 9.0), (10.0, 20.0)])
    (chunk,) = plan.chunks
    offset = chunk[0] / SR
    # Words for 4..9 and 10..14 s only: 1..4 (head) and 14..20 (tail) were left out.
    found = [(" w", t - offset, t + 0.4 - offset) for t in np.arange(4.0, 9.0, 0.5)]
    found += [(" x.", t - offset, t + 0.4 - offset) for t in np.arange(10.0, 14.0, 0.5)]
    again = plan.settle(chunk, decoding(found))
    # Between the found words: 0.3 s of slack around each, 0.2 s of padding, never over a found word.
    assert [(round(a / SR, 2), round(b / SR, 2)) for a, b in again] == [(0.8, 3.9), (14.0, 20.2)]
    # A piece decoded again that leaves out speech in turn is retried, up to max_retries levels.
    tail = again[1]
    deeper = plan.settle(tail, decoding([(" y.", 0.1, 1.0)]))
    assert deeper and plan.settle(deeper[0], decoding([(" z.", 0.1, 0.5)])) == []


def test_no_retry_for_short_gaps_non_speech_or_the_whole_piece():
    plan = plan_with_speech(30, [(1.0, 9.0)])
    (chunk,) = plan.chunks
    offset = chunk[0] / SR
    words = [(" w", t - offset, t + 0.3 - offset) for t in np.arange(1.0, 9.0, 0.5) if not 4.0 <= t < 4.6]
    assert plan.missed(chunk, decoding(words)) == []  # a 0.6 s gap is not worth a decode
    assert plan.missed(chunk, decoding([], is_speech=False)) == []
    assert plan.missed(chunk, decoding([])) == []  # no word at all: the same audio would get the same answer


class ScriptedEngine:
    """Stands in for ``Engine``: answers each job by the file time it starts at."""

    class Registry:
        def resolve(self, name):
            return name or "tiny.en"

        def is_multilingual(self, model_id):
            return model_id != "tiny.en"

    def __init__(self, answers):
        self.answers = answers  # callable(start_s, end_s, language) -> Decoding
        self.registry = self.Registry()
        self.jobs: list[tuple[float, float, str | None]] = []
        self.audio: np.ndarray | None = None

    def submit(self, job) -> Future:
        start = self._locate(job.audio)
        span = (round(start / SR, 2), round((start + len(job.audio)) / SR, 2), job.options.language)
        self.jobs.append(span)
        future: Future = Future()
        future.set_result(self.answers(*span))
        return future

    def decode(self, job) -> Decoding:
        return self.submit(job).result()

    def _locate(self, piece: np.ndarray) -> int:
        # Pieces are views of the file's samples: their offset is where they start.
        return (piece.__array_interface__["data"][0] - self.audio.__array_interface__["data"][0]) // piece.itemsize


def two_clips_with_a_pause() -> tuple[np.ndarray, float]:
    first, second = load_clip("ds-arctic-a0024"), load_clip("wlk-libri-7902-96591-0000")
    gap = np.zeros(s(3.0), np.float32)
    return np.concatenate([first, gap, second]), (len(first) + len(gap)) / SR


@pytest.mark.parametrize("driver", ["blocking", "async"])
def test_drivers_repair_a_dropped_tail_and_join_in_file_time(driver):
    audio, second_at = two_clips_with_a_pause()

    def answers(start, end, language):
        if start == 0.0:  # the first chunk: Whisper leaves its last 2 s out
            return decoding([(" early", 0.5, 1.0), (" words.", 1.0, 1.5)])
        if start < second_at - 1:  # that tail, decoded again
            return decoding([(" late", 0.1, 1.2), (" words.", 1.2, 2.4)])
        return decoding([(" second", 0.4, 1.0), (" clip.", 1.0, 2.0)])

    engine = ScriptedEngine(answers)
    engine.audio = audio
    request = BatchRequest(model="tiny.en", word_timestamps=True)
    result = transcribe(engine, audio, request) if driver == "blocking" else asyncio.run(transcribe_async(engine, audio, request))

    assert result.text == "early words. late words. second clip."
    assert result.language == "en" and abs(result.duration - len(audio) / SR) < 1e-9
    # English-only model: the language is known, every chunk is queued at once, then the repair.
    assert [j[2] for j in engine.jobs] == ["en"] * len(engine.jobs) and len(engine.jobs) == 3
    starts = [seg.start for seg in result.segments]
    assert starts == sorted(starts) and result.segments[-1].start > second_at
    assert [seg.id for seg in result.segments] == [0, 1, 2]
    for seg in result.segments:
        assert seg.words and seg.words[0].start == seg.start and seg.words[-1].end == seg.end


def test_language_detected_on_the_first_chunk_then_kept():
    audio, second_at = two_clips_with_a_pause()

    def answers(start, end, language):
        words = [(" hallo.", t, t + 0.5) for t in np.arange(0.0, end - start, 0.5)]
        d = decoding(words)
        return Decoding(**{**d.__dict__, "language": language or "de"})

    engine = ScriptedEngine(answers)
    engine.audio = audio
    result = transcribe(engine, audio, BatchRequest(model="base"))
    assert [j[2] for j in engine.jobs] == [None, "de"]
    assert result.language == "de" and all(not seg.words for seg in result.segments)  # words only when asked


# -- reading a file without holding it (gateway.files.feed) ------------------------------
def test_the_cutter_hands_each_span_exactly_whatever_the_block_sizes():
    from gateway.files.feed import ChunkCutter

    rng = np.random.default_rng(3)
    audio = rng.standard_normal(s(60)).astype(np.float32)
    spans = [(s(1), s(9)), (s(9), s(20)), (s(31), s(45)), (s(59), s(61))]  # the last runs past the end
    cutter, got, at = ChunkCutter(spans), [], 0
    while at < len(audio):
        n = int(rng.integers(1, 40000))
        got += cutter.feed(audio[at : at + n])
        at += n
    got += cutter.finish()
    assert [span for span, _ in got] == spans
    for (lo, hi), chunk in got:
        assert np.array_equal(chunk, audio[lo:hi])


def test_the_feed_hands_every_channel_its_chunks_in_order_and_stops_when_closed():
    from gateway.files.feed import ChunkFeed

    audio = np.arange(3 * s(30), dtype=np.float32).reshape(3, -1)
    plans = [[(0, s(5)), (s(10), s(12))], [(s(1), s(29))], []]
    blocks = lambda: (audio[:, at : at + 1000] for at in range(0, audio.shape[1], 1000))
    feed = ChunkFeed(blocks, plans, ahead=1)
    try:
        for c, plan in enumerate(plans):  # one channel after another: each takes all of its chunks
            channel = feed.channel(c)
            for lo, hi in plan:
                span, chunk = channel.next().result(timeout=10)
                assert span == (lo, hi) and np.array_equal(chunk, audio[c, lo:hi])
            assert channel.next().result(timeout=10) is None
    finally:
        feed.close()
    # With room for one chunk per channel, a channel that does not read holds the
    # decoder (nothing piles up); closing lets every waiting reader go.
    held = ChunkFeed(blocks, [[(0, 10), (20, 30)], [(s(20), s(21))]], ahead=1)
    waiting = held.channel(1).next()
    assert not waiting.done() or waiting.cancelled()
    held.close()
    assert waiting.cancelled() or waiting.result() is None
