"""Speaker labels on a live stream (``diarize``), driven directly: real audio and VAD, scripted decodes and embeddings."""

from __future__ import annotations

import itertools

import numpy as np

from gateway.core.commands import Embedded
from gateway.inference.jobs import EmbedJob, Priority, VoiceWindows
from tests.clips import load_clip

from .test_session import SR, decoding, feed, make_session, silence

VOICES = np.eye(3, 256)  # three voices, far apart


def conversation() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Two voices taking turns (leopard-en, lhotse-libri, leopard-en), 1.2 s apart: audio and (start, end, voice)."""
    a, b = load_clip("leopard-en"), load_clip("lhotse-libri-2412-153948-0000")
    parts, spans, at = [silence(0.5)], [], int(0.5 * SR)
    for clip, voice in ((a, 0), (b, 1), (a, 0)):
        parts += [clip, silence(1.2)]
        spans.append((at, at + clip.size, voice))
        at += clip.size + int(1.2 * SR)
    return np.concatenate(parts), spans


def voice_of(spans, sample: int) -> int:
    return next((v for s, e, v in spans if s <= sample < e + SR), spans[-1][2])


def embedding(request, spans) -> VoiceWindows:
    """One window per 0.75 s of the embedded audio, of the voice speaking there."""
    start = request.audio_end - len(request.job.audio)
    centres = np.arange(0.8, max(0.81, len(request.job.audio) / SR - 0.79), 0.75)
    return VoiceWindows(np.array([VOICES[voice_of(spans, start + int(c * SR))] for c in centres]), centres)


def answer(session, spans, leave_embeddings: bool = False) -> list:
    """Answer every outstanding request (repeatedly); embeddings too unless left; returns the requests."""
    seen, left = [], []
    while requests := session.take_requests():
        for r in requests:
            seen.append(r)
            if isinstance(r.job, EmbedJob):
                if leave_embeddings:
                    left.append(r)
                else:
                    session.handle(Embedded(r.id, embedding(r, spans)))
            else:
                session.decoded(r.id, decoding("one two three four" if r.kind == "final" else "one two", len(r.job.audio) / SR))
    session.left = left
    return seen


def run(**options):
    audio, spans = conversation()
    session = make_session(diarize=True, **options)
    requests = []
    for i in range(0, len(audio), 1600):
        feed(session, audio[i : i + 1600])
        requests += answer(session, spans)
    from gateway.core.commands import End

    session.handle(End())
    requests += answer(session, spans)
    return session, requests, spans


def test_finals_and_their_words_carry_the_speaker_and_closed_counts_talk_time():
    session, _, _ = run(interim_results=False)
    events = session.take_events()
    finals = [e for e in events if e.type == "transcript.final"]
    assert [k for k, _ in itertools.groupby(f.segment.speaker for f in finals)] == ["A", "B", "A"]  # lhotse-libri pauses once
    for f in finals:
        wire = f.to_dict()["segment"]
        assert wire["speaker"] == f.segment.speaker and {w["speaker"] for w in wire["words"]} == {f.segment.speaker}
    closed = events[-1].to_dict()
    assert closed["type"] == "session.closed"
    speakers = {s["speaker"]: s for s in closed["speakers"]}
    assert speakers["A"]["segments"] == 2 and speakers["B"]["segments"] == len(finals) - 2
    assert speakers["B"]["talk_time_s"] > 10  # lhotse-libri is 11.7 s


def test_embeddings_are_asked_for_as_speech_goes_by_and_go_ahead_with_the_final():
    audio, spans = conversation()
    session = make_session(diarize=True, interim_results=False)
    requests = []
    for i in range(0, spans[0][1] + SR, 1600):  # the first turn and its endpoint; embeddings left waiting
        feed(session, audio[i : i + 1600])
        requests += answer(session, spans, leave_embeddings=True)
    promoted = set(session.take_promotions())
    embeds = [r for r in requests if isinstance(r.job, EmbedJob)]
    final = next(r for r in requests if r.kind == "final")
    blocks = [r for r in embeds if r.job.priority is Priority.PARTIAL]
    assert blocks and all(r.id < final.id for r in blocks)  # while speech goes on: background work
    assert {r.id for r in blocks} <= promoted  # promoted when the final is asked for
    rest = [r for r in embeds if r.id > blocks[-1].id]
    assert all(r.id < final.id and r.job.priority is final.job.priority for r in rest)  # asked for first, at its priority
    # the pre-roll and the silence before the endpoint are left out
    assert min(r.audio_end - len(r.job.audio) for r in embeds) > final.audio_end - len(final.job.audio)
    assert max(r.audio_end for r in embeds) < final.audio_end


def test_a_final_waits_for_its_embedding_and_one_that_failed_takes_the_last_speaker():
    audio, spans = conversation()
    session = make_session(diarize=True, interim_results=False)
    feed(session, audio[: spans[0][1] + SR])  # the first turn and its endpoint
    answer(session, spans, leave_embeddings=True)
    assert not [e for e in session.take_events() if e.type == "transcript.final"]  # decoded, but who said it is not known yet
    for r in session.left:
        session.decoded(r.id, None, "the speaker model is unavailable")
    finals = [e for e in session.take_events() if e.type == "transcript.final"]
    assert [f.segment.speaker for f in finals] == ["A"]


def test_partials_carry_a_provisional_speaker():
    session, _, _ = run()
    partials = [e for e in session.take_events() if e.type == "transcript.partial"]
    assert partials and all(p.to_dict()["speaker"] in ("A", "B") for p in partials)
    assert {p.speaker for p in partials} == {"A", "B"}


def test_without_diarize_nothing_is_embedded_and_no_event_names_a_speaker():
    audio, spans = conversation()
    session = make_session()
    feed(session, audio[: spans[1][1] + SR])
    from gateway.core.commands import End

    session.handle(End())
    requests = answer(session, spans)
    assert requests and not [r for r in requests if isinstance(r.job, EmbedJob)]
    for event in session.take_events():
        wire = event.to_dict()
        assert "speaker" not in wire and "speakers" not in wire
        assert "speaker" not in wire.get("segment", {})


def test_a_stream_of_several_channels_names_a_channels_first_voice_by_its_label():
    from gateway.core.voices import TrackVoices

    voices = TrackVoices("agent")
    names = []
    for segment, voice in ((0, 0), (1, 1), (2, 0)):
        voices.started(segment, 0)
        voices.asked(segment, 10 + segment, 0, 5 * SR)
        assert not voices.ready(segment)
        windows = VoiceWindows(np.repeat(VOICES[voice : voice + 1], 5, axis=0), np.arange(5) * 0.75 + 0.8)
        voices.embedded(10 + segment, windows)
        assert voices.ready(segment)
        names.append(voices.final(segment, True, 4.0, np.array([1.0, 2.0])))
    assert names == [("agent", ("agent", "agent")), ("agent/B", ("agent/B", "agent/B")), ("agent", ("agent", "agent"))]
    assert [s.to_dict() for s in voices.summary()] == [
        {"speaker": "agent", "talk_time_s": 8.0, "segments": 2}, {"speaker": "agent/B", "talk_time_s": 4.0, "segments": 1},
    ]
