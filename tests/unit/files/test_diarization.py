"""Labelling a file's words and segments by speaker, model-free: made-up windows, segments and engines."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from gateway.core.records import Segment, Transcription, Word
from gateway.files.chunks import SpeechRegion
from gateway.files.diarization import Diarization, KnownSpeaker, embed_job, label, split
from gateway.files.feed import ArrayChunks
from gateway.files.transcription import BatchRequest, FileTranscription, join_channels, run_steps
from gateway.formats import render
from gateway.inference.jobs import DecodeJob, EmbedJob, VoiceWindows
from gateway.inference.records import DecodedSegment, Decoding

SR = 16000
VOICES = np.eye(4, 256)  # four voices, orthogonal unit vectors


def windows(voice_at: list[tuple[float, int]]) -> VoiceWindows:
    """A window centred at each time, of that voice."""
    return VoiceWindows(np.array([VOICES[v] for _, v in voice_at]), np.array([t for t, _ in voice_at]))


def every(start: float, end: float, voice: int, hop: float = 0.75) -> list[tuple[float, int]]:
    return [(t, voice) for t in np.arange(start, end, hop)]


def segment(i: int, words: list[tuple[str, float, float]]) -> Segment:
    ws = tuple(Word(w, a, b, 0.9) for w, a, b in words)
    return Segment(i, 0, ws[0].start, ws[-1].end, "".join(w for w, _, _ in words), (1, 2, 3), 0.0, -0.2, 1.2, 0.01, ws)


def tokens(text: str) -> tuple[int, ...]:
    return tuple(len(w) for w in text.split())


def result(*segments: Segment) -> Transcription:
    return Transcription("".join(s.text for s in segments).strip(), "transcribe", "en", 30.0, list(segments))


def test_a_segment_is_split_where_the_voice_changes():
    seg = segment(0, [(" Are", 0.0, 0.4), (" you", 0.4, 0.8), (" there?", 0.8, 1.6), (" Yes,", 2.0, 2.4),
                      (" I", 2.4, 2.6), (" am.", 2.6, 3.6)])
    w = windows(every(0.0, 1.8, 0) + every(2.25, 4.0, 1))
    labels = np.array([0] * 3 + [1] * 3)
    parts = split(seg, w, labels, tokens)
    assert [(p.text, voice) for p, voice in parts] == [(" Are you there?", 0), (" Yes, I am.", 1)]
    first, second = (p for p, _ in parts)
    assert (first.start, first.end, second.start, second.end) == (0.0, 1.6, 2.0, 3.6)
    assert first.tokens == (3, 3, 6) and second.tokens == (4, 1, 3)  # each part's own text's
    assert [w.word for w in second.words] == [" Yes,", " I", " am."]


def test_a_flicker_inside_one_voice_is_not_a_turn():
    """One window of another voice inside a segment (a laugh, a turn's edge) does not split it."""
    seg = segment(0, [(f" w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(8)])
    w = windows([(0.25, 0), (1.0, 0), (1.75, 1), (2.5, 0), (3.25, 0)])
    parts = split(seg, w, np.array([0, 0, 1, 0, 0]), tokens)
    assert [(p.text, voice) for p, voice in parts] == [(seg.text, 0)]
    assert parts[0][0] is seg  # untouched: its own text and tokens


def test_labels_are_letters_in_order_of_first_appearance_and_known_voices_are_named():
    segs = [segment(0, [(" one", 0.0, 2.0)]), segment(1, [(" two", 3.0, 5.0)]), segment(2, [(" three", 6.0, 8.0)]),
            segment(3, [(" four", 9.0, 11.0)])]
    voice_at = every(0.0, 2.25, 2) + every(3.0, 5.25, 0) + every(6.0, 8.25, 1) + every(9.0, 11.25, 2)
    w = windows(voice_at)
    plain = label(result(*segs), w, [], Diarization(), tokens)
    assert [s.speaker for s in plain.segments] == ["A", "B", "C", "A"]
    # A reference clip of voice 1 (the third heard) names it; the others keep letters in order.
    known = Diarization(known=(KnownSpeaker("carol", np.zeros(3 * SR, np.float32)),))
    named = label(result(*segs), w, [windows([(1.0, 1), (1.75, 1)])], known, tokens)
    assert [s.speaker for s in named.segments] == ["A", "B", "carol", "A"]
    # A reference that matches no voice names nobody.
    stranger = label(result(*segs), w, [windows([(1.0, 3)])], known, tokens)
    assert [s.speaker for s in stranger.segments] == ["A", "B", "C", "A"]
    # The count given: two voices.
    two = label(result(*segs), w, [], Diarization(speakers_expected=1), tokens)
    assert {s.speaker for s in two.segments} == {"A"}


def test_no_speech_no_speakers_and_speech_too_short_to_embed_one_voice():
    nothing = result()
    assert label(nothing, VoiceWindows.empty(), [], Diarization(), tokens) == nothing
    short = label(result(segment(0, [(" Yes.", 0.0, 0.5)])), VoiceWindows.empty(), [], Diarization(), tokens)
    assert [s.speaker for s in short.segments] == ["A"]


def test_a_known_name_never_doubles_as_a_letter():
    segs = [segment(0, [(" one", 0.0, 2.0)]), segment(1, [(" two", 3.0, 5.0)])]
    w = windows(every(0.0, 2.25, 0) + every(3.0, 5.25, 1))
    known = Diarization(known=(KnownSpeaker("A", np.zeros(3 * SR, np.float32)),))
    named = label(result(*segs), w, [windows([(1.0, 1)])], known, tokens)
    assert [s.speaker for s in named.segments] == ["B", "A"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"speakers_expected": 0}, "speakers_expected"),
    ({"speakers_expected": 9}, "speakers_expected"),
    ({"known": tuple(KnownSpeaker(str(i), np.zeros(1)) for i in range(5))}, "at most 4"),
    ({"known": (KnownSpeaker("a", np.zeros(1)), KnownSpeaker("a", np.zeros(1)))}, "differ"),
])
def test_bad_diarization_requests_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Diarization(**fields)


def test_a_chunk_embeds_only_its_voiced_speech_of_a_second_or_more():
    regions = [SpeechRegion((0, 5 * SR), (SR, 4 * SR)), SpeechRegion((5 * SR, 9 * SR), (6 * SR, 8 * SR)),
               SpeechRegion((9 * SR, 12 * SR), (10 * SR, 11 * SR + SR // 2)), SpeechRegion((12 * SR, 14 * SR), (12 * SR, 13 * SR - 1))]
    job = embed_job((4 * SR, 13 * SR), np.zeros(9 * SR, np.float32), regions)
    # the first region's voice ends where the chunk starts; the last is under a second
    assert job.spans == ((2 * SR, 4 * SR), (6 * SR, 7 * SR + SR // 2))


def test_multichannel_speakers_are_the_channel_unless_it_holds_several_voices():
    agent = result(segment(0, [(" hello", 0.0, 1.0)]), segment(1, [(" sir", 2.0, 3.0)]))
    agent.segments[:] = [s.__class__(**{**s.__dict__, "speaker": "A"}) for s in agent.segments]
    room = result(segment(0, [(" hi", 1.0, 1.5)]), segment(1, [(" hey", 2.5, 3.5)]))
    room.segments[:] = [s.__class__(**{**s.__dict__, "speaker": v}) for s, v in zip(room.segments, "AB", strict=True)]
    joined = join_channels([agent, room], ["agent", "room"])
    assert [s.speaker for s in joined.segments] == ["agent", "room/A", "agent", "room/B"]
    plain = join_channels([result(segment(0, [(" hi", 0.0, 1.0)]))], ["agent"])
    assert plain.segments[0].speaker is None


def test_formats_carry_the_speaker():
    seg = segment(0, [(" Yes.", 0.5, 1.0)])
    labelled = result(Segment(**{**seg.__dict__, "speaker": "B"}))
    import json

    body = json.loads(render(labelled, "verbose_json", True))
    assert body["segments"][0]["speaker"] == "B" and body["words"][0]["speaker"] == "B"
    assert json.loads(render(labelled, "diarized_json", False))["segments"][0]["speaker"] == "B"
    assert "B: Yes." in render(labelled, "srt", False)
    assert "<v B>Yes." in render(labelled, "vtt", False)
    assert "speaker" not in json.loads(render(result(seg), "verbose_json", True))["segments"][0]


class VoicesEngine:
    """Decodes every piece as one word per second and embeds every span as
    one window at its middle, of voice 0 before 30 s of the file, voice 1 after: a scripted engine."""

    class Registry:
        def resolve(self, name):
            return "tiny.en"

        def is_multilingual(self, model_id):
            return False

    def __init__(self, audio: np.ndarray):
        self.audio, self.registry, self.embedded = audio, self.Registry(), []

    def _start(self, piece: np.ndarray) -> float:
        return (piece.__array_interface__["data"][0] - self.audio.__array_interface__["data"][0]) // piece.itemsize / SR

    def submit(self, job) -> Future:
        future: Future = Future()
        start = self._start(job.audio)
        if isinstance(job, EmbedJob):
            self.embedded.append([(start + a / SR, start + b / SR) for a, b in job.spans])
            centres = np.array([(a + b) / 2 / SR for a, b in job.spans])
            future.set_result(VoiceWindows(np.array([VOICES[int(start + c >= 30)] for c in centres]), centres))
        else:
            assert isinstance(job, DecodeJob)
            n = int(len(job.audio) / SR)
            words = tuple(Word(f" w{int(start) + i}", i + 0.1, i + 0.6, 0.9) for i in range(n))
            segs = (DecodedSegment(0.0, float(n), "".join(w.word for w in words), (1,), words),)
            future.set_result(Decoding(
                segments=segs, language="en", language_probability=1.0, avg_logprob=-0.2, compression_ratio=1.3,
                no_speech_prob=0.01, temperature=0.0, is_speech=True, window="short", duration=len(job.audio) / SR,
            ))
        return future

    def text_tokens(self, model, text, language, task="transcribe"):
        return tokens(text)


def test_a_file_is_embedded_chunk_by_chunk_and_labelled_in_file_time():
    """Two chunks apart (a long silence between): the second's windows are placed in file time."""
    audio = np.zeros(60 * SR, np.float32)
    regions = [SpeechRegion((0, 8 * SR), (SR, 4 * SR)), SpeechRegion((38 * SR, 52 * SR), (40 * SR, 50 * SR))]
    plan = FileTranscription(audio.shape[0], regions, BatchRequest(diarization=Diarization()), ahead=2)
    assert len(plan.chunks) == 2
    engine = VoicesEngine(audio)
    out = run_steps(plan.steps(engine, ArrayChunks(audio, plan.chunks)))
    assert engine.embedded == [[(1.0, 4.0)], [(40.0, 50.0)]]
    said = [(w.start, s.speaker) for s in out.segments for w in s.words]
    assert said and all(speaker == ("A" if start < 30 else "B") for start, speaker in said), said
    assert all(s.words for s in out.segments)  # kept for labelling
