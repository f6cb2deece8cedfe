"""The live-caption benchmark's measurements, on a stream whose events and times are made up."""

from __future__ import annotations

import numpy as np

from bench.captions import Run, measure_stream
from bench.corpus import Clip, playlist
from gateway.client import StreamResult


def spoken_playlist():
    """1 s of silence, 2 s of sound (stream time 1.0 to 3.0), then silence."""
    t = np.arange(32000) / 16000
    samples = np.concatenate([np.zeros(16000), 0.3 * np.sin(2 * np.pi * 220 * t), np.zeros(8000)]).astype(np.float32)
    return playlist([Clip("tone", "hello world", samples, 1.0, 3.0)])


def partial(at_text: str, stable: str) -> dict:
    return {"type": "transcript.partial", "segment_id": 0, "start": 0.7, "end": 2.0, "text": at_text, "stable_text": stable}


def final(text: str) -> dict:
    words = [{"word": " Hello", "start": 1.0, "end": 1.5}, {"word": " world.", "start": 1.6, "end": 2.9}]
    return {"type": "transcript.final", "segment": {"id": 0, "start": 0.7, "end": 3.0, "text": text, "words": words}, "ended_at": 3.5}


def stream(events_at: list[tuple[float, dict]]) -> Run:
    closed = {"type": "session.closed", "text": "", "duration": 4.5, "segments": 1, "language": "en"}
    events = [e for _, e in events_at] + [closed]
    return Run(spoken_playlist(), 0.0, StreamResult(events=events, arrivals=[at for at, _ in events_at] + [4.6]))


def test_each_measure_is_taken_from_the_sound_and_the_arrivals():
    m = measure_stream(stream([
        (1.4, partial("Hello", "")),
        (1.8, partial("Hello world", "Hello")),
        (2.3, partial("Hello world", "Hello")),  # the same text: the caption did not move
        (3.6, final(" Hello world.")),
    ]))
    assert m.first_words == [1.4 - 1.0]  # from the energy onset, not the segment's start (0.7)
    assert np.allclose(m.caption_update, [0.4, 1.8])
    assert np.allclose(m.word_emission, [1.4 - 1.5, 1.8 - 2.9])  # shown before it ended: negative
    assert np.allclose(m.stable_word, [1.8 - 1.5, 3.6 - 2.9])  # "world" was stable only in the final
    assert np.allclose(m.final, [3.6 - 3.0])
    assert m.violations == 0


def test_a_stable_word_that_changes_later_is_a_violation():
    m = measure_stream(stream([(1.8, partial("Hello word", "Hello word")), (3.6, final(" Hello world."))]))
    assert m.violations == 1
    assert m.first_words == [1.8 - 1.0]
