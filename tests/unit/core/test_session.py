"""The session state machine, driven directly: real audio and VAD, scripted decodes.

These are unit tests of the sans-I/O core, so the decoder answers are
scripted (the end-to-end tests use the real model). That makes ordering,
cancellation and exactly-once finalisation checkable exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gateway.audio import encode_samples
from gateway.core.commands import (
    Audio,
    Cancel,
    Configure,
    ConnectionLost,
    DecodeCancelled,
    Decoded,
    DecodeFailed,
    End,
    Flush,
    Invalid,
    LoadReport,
    Submit,
)
from gateway.core.errors import ProtocolError, SessionStateError
from gateway.core.options import SessionOptions
from gateway.core.session import REFUSALS, TRANSITIONS, TRIGGERS, SessionState, StreamSession
from gateway.core.settings import StreamSettings
from gateway.core.utterance import Utterance, UtteranceState
from gateway.inference.models import UnknownModelError
from gateway.inference.records import DecodedSegment, Decoding, Word
from tests.clips import load_clip
from vad import FrameClassifier

SR = 16000


class Catalog:
    def resolve(self, name):
        if name in (None, "whisper-1", "tiny.en"):
            return "tiny.en"
        if name == "base":
            return "base"
        raise UnknownModelError(name, ["whisper-1", "tiny.en", "base"])

    def is_multilingual(self, model_id):
        return model_id == "base"


LANGS = {"en", "de", "fr"}


def decoding(
    text: str, duration: float, is_speech: bool = True, language: str = "en", language_probability: float = 1.0
) -> Decoding:
    words = text.split()
    step = duration / max(1, len(words))
    decoded = tuple(Word(" " + w, i * step, (i + 1) * step * 0.9, 0.9) for i, w in enumerate(words))
    segment = DecodedSegment(0.0, duration, " " + text, tuple(range(len(words))), decoded)
    return Decoding(
        segments=(segment,) if text else (), language=language, language_probability=language_probability,
        avg_logprob=-0.2, compression_ratio=1.2, no_speech_prob=0.01, temperature=0.0,
        is_speech=is_speech, window="short", duration=duration,
    )


class DrivenSession(StreamSession):
    """A session driven as a runner drives it, with its engine actions sorted
    by kind so that a test can look at each (their order is checked apart)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests, self.cancellations, self.promotions = [], [], []

    def _sort_actions(self) -> None:
        for action in self.take_actions():
            if isinstance(action, Submit):
                self.requests.append(action.request)
            elif isinstance(action, Cancel):
                self.cancellations.append(action.request_id)
            else:
                self.promotions.append(action.request_id)

    def take_requests(self):
        self._sort_actions()
        out, self.requests = self.requests, []
        return out

    def take_cancellations(self):
        self._sort_actions()
        out, self.cancellations = self.cancellations, []
        return out

    def take_promotions(self):
        self._sort_actions()
        out, self.promotions = self.promotions, []
        return out

    def decoded(self, request_id, result, error=None):
        if error is not None:
            self.handle(DecodeFailed(request_id, error))
        elif result is None:
            self.handle(DecodeCancelled(request_id))
        else:
            self.handle(Decoded(request_id, result))


class Deafenable:
    """webrtcvad, unless deafened: then every frame is non-speech. Lets a test
    play loud sound that the VAD calls non-speech without depending on
    webrtcvad's mood."""

    def __init__(self, config):
        self.vad = FrameClassifier(config.aggressiveness, config.sample_rate, config.frame_ms)
        self.frame_samples = self.vad.frame_samples
        self.deaf = False

    def is_speech(self, frame) -> bool:
        return False if self.deaf else self.vad.is_speech(frame)


def make_session(classifier_factory=None, **options) -> DrivenSession:
    return DrivenSession(
        SessionOptions(model="tiny.en", **options), Catalog(), LANGS, StreamSettings(), classifier_factory=classifier_factory
    )


def feed(session: StreamSession, samples: np.ndarray, chunk: int = 1600, encoding: str = "pcm_s16le") -> None:
    for i in range(0, len(samples), chunk):
        session.handle(Audio(encode_samples(samples[i : i + chunk], encoding)))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def answer_all(session: DrivenSession, text_for=lambda r: "hello world") -> list:
    """Answer every outstanding request (repeatedly), return the requests seen."""
    seen = []
    while True:
        requests = session.take_requests()
        if not requests:
            return seen
        for r in requests:
            seen.append(r)
            session.decoded(r.id, decoding(text_for(r), len(r.job.audio) / SR))


def final_texts(session: StreamSession) -> list[str]:
    """Texts of the finals among the session's pending events (taken)."""
    return [e.segment.text.strip() for e in session.take_events() if e.type == "transcript.final"]


def types(events) -> list[str]:
    return [e.type for e in events]


def test_created_event_carries_effective_options():
    session = make_session(endpoint_ms=700)
    [created] = session.take_events()
    assert created.type == "session.created"
    assert created.session["endpoint_ms"] == 700 and created.session["model"] == "tiny.en"


def test_speech_silence_speech_gives_two_finals_exactly_once():
    session = make_session()
    speech = load_clip("ds-arctic-a0024")
    feed(session, np.concatenate([speech, silence(2.0), speech, silence(1.0)]))
    requests = answer_all(session, lambda r: "it was my reports")
    session.handle(End())
    requests += answer_all(session)
    events = session.take_events()
    assert types(events).count("speech.started") == 2
    finals = [e for e in events if e.type == "transcript.final"]
    assert [f.segment.id for f in finals] == [0, 1]
    assert events[-1].type == "session.closed"
    assert events[-1].segments == 2
    assert events[-1].text == "it was my reports it was my reports"
    assert session.state is SessionState.CLOSED
    # Partials of a segment come before its final.
    for f in finals:
        index = events.index(f)
        assert all(e.segment_id != f.segment.id for e in events[index:] if e.type == "transcript.partial")
    # The second utterance's final was asked with the first one's text as context.
    second_final = [r for r in requests if r.kind == "final" and r.segment_id == 1][-1]
    assert "it was my reports" in second_final.job.options.prompt


def test_speculative_final_is_cancelled_when_speech_resumes():
    session = make_session(endpoint_ms=800)
    speech = load_clip("ds-arctic-a0024")
    a, b = speech_bounds_samples(speech)
    voiced = speech[a:b]
    feed(session, voiced, chunk=480)
    feed(session, silence(0.45), chunk=480)  # past speculate_after_ms, short of the endpoint
    speculative = [r for r in session.take_requests() if r.kind == "final"]
    assert len(speculative) == 1
    assert session.take_cancellations() == []
    feed(session, voiced[: SR // 2], chunk=480)  # the speaker goes on
    assert session.take_cancellations() == [speculative[0].id]
    # A late answer for the cancelled request changes nothing.
    session.decoded(speculative[0].id, decoding("stale", 1.0))
    feed(session, silence(1.2), chunk=480)
    answer_all(session, lambda r: "fresh words")
    finals = [e for e in session.take_events() if e.type == "transcript.final"]
    assert [f.segment.text.strip() for f in finals] == ["fresh words"]


@pytest.mark.parametrize("chunk", [480, 1600, 1234])
def test_speculation_that_holds_becomes_the_final_without_a_new_decode(chunk):
    session = make_session(endpoint_ms=600)
    speculative = speculate(session, "the final", chunk=chunk)
    assert speculative.job.priority.name == "SPECULATIVE"
    session.decoded(speculative.id, decoding("the final words", len(speculative.job.audio) / SR))
    assert not [e for e in session.take_events() if e.type == "transcript.final"]  # not yet: no endpoint
    feed(session, silence(0.5), chunk=chunk)
    assert not session.take_cancellations()
    assert not [r for r in session.take_requests() if r.kind == "final"]
    assert final_texts(session) == ["the final words"]


def speculate(session: StreamSession, partial_text: str, pause_s: float = 0.3, chunk: int = 480):
    """Speech (answered with ``partial_text`` partials), then a pause long
    enough for a speculative final but short of the endpoint: returns it."""
    speech = load_clip("ds-arctic-a0024")
    a, b = speech_bounds_samples(speech)
    feed(session, speech[a:b], chunk=chunk)
    answer_all(session, lambda r: partial_text)
    feed(session, silence(pause_s), chunk=chunk)
    [speculative] = [r for r in session.take_requests() if r.kind == "final"]
    return speculative


def speech_bounds_samples(samples: np.ndarray) -> tuple[int, int]:
    from tests.clips import speech_bounds

    start, end = speech_bounds(samples)
    return int(start * SR), int(end * SR)


def _partials_then_end(session, hypotheses):
    """Feed 7 s of speech, answering partials in turn; returns the partial
    requests' prefixes and the stable texts shown."""
    speech = load_clip("lhotse-libri-2412-153948-0000")
    answers = iter(hypotheses)
    prefixes, stables = [], []
    for i in range(0, 7 * SR, 1600):
        feed(session, speech[i : i + 1600])
        for r in session.take_requests():
            if r.kind == "partial":
                prefixes.append(r.job.options.prefix)
                session.decoded(r.id, decoding(next(answers, hypotheses[-1]), (i + 1600) / SR))
        stables += [e.stable_text for e in session.take_events() if e.type == "transcript.partial"]
    session.handle(End())
    return prefixes, stables


def test_stable_text_needs_agreement_over_two_seconds_and_never_shrinks():
    session = make_session()
    lag_partials = session.settings.stable_lag_ms // session.settings.partial_interval_ms
    # The first guess is revised before two seconds pass: never stable.
    hypotheses = ["if a reader"] * 2 + ["if the reader will"] * (lag_partials + 2) + ["if the reader will excuse me"]
    prefixes, stables = _partials_then_end(session, hypotheses)
    assert not any(s.startswith("if a") for s in stables)
    assert "if the reader will" in stables
    first_stable = stables.index("if the reader will")
    assert first_stable >= lag_partials + 2  # not before a hypothesis 2 s older agreed
    for a, b in zip(stables, stables[1:]):
        assert b.startswith(a)
    assert "if the reader will" in prefixes  # later partials are held to it


def test_final_is_decoded_freely_and_again_only_if_it_breaks_stable_text():
    session = make_session()
    prefixes, stables = _partials_then_end(session, ["if the reader will"] * 20)
    assert stables[-1] == "if the reader will"
    [free] = [r for r in session.take_requests() if r.kind == "final"]
    assert free.job.options.prefix is None
    # The final disagrees with what clients were promised: decoded again,
    # held to the stable prefix this time.
    session.decoded(free.id, decoding("if a reader will", 7.0))
    assert not [e for e in session.take_events() if e.type == "transcript.final"]
    [held] = [r for r in session.take_requests() if r.kind == "final"]
    assert held.job.options.prefix == "if the reader will"
    session.decoded(held.id, decoding("if the reader will excuse me", 7.0))
    assert final_texts(session) == ["if the reader will excuse me"]


def test_a_final_that_keeps_stable_text_is_not_decoded_again():
    session = make_session()
    _partials_then_end(session, ["if the reader will"] * 20)
    [free] = [r for r in session.take_requests() if r.kind == "final"]
    session.decoded(free.id, decoding("if the reader will excuse me", 7.0))
    assert not session.take_requests()
    assert final_texts(session) == ["if the reader will excuse me"]


def test_backpressure_while_finals_are_pending():
    session = make_session(endpoint_ms=300)
    speech = load_clip("ds-arctic-a0024")
    a, b = speech_bounds_samples(speech)
    assert session.wants_audio
    for _ in range(3):
        feed(session, np.concatenate([speech[a:b], silence(0.6)]))
    # Finals are chained; none answered yet, so they pile up.
    assert session.pending_finals >= 2
    assert not session.wants_audio
    answer_all(session)
    assert session.pending_finals == 0 and session.wants_audio


def test_connection_lost_finalises_what_was_received():
    session = make_session()
    feed(session, load_clip("ds-arctic-a0024"))
    session.handle(ConnectionLost())
    assert session.detached and session.state is SessionState.CLOSING
    answer_all(session, lambda r: "kept anyway")
    events = session.take_events()
    assert [e.segment.text.strip() for e in events if e.type == "transcript.final"] == ["kept anyway"]
    assert session.state is SessionState.CLOSED


def test_a_failed_decode_reports_and_still_closes_the_segment():
    session = make_session()
    feed(session, load_clip("ds-arctic-a0024"))
    session.handle(End())
    for r in session.take_requests():
        if r.kind == "final":
            session.decoded(r.id, None, "model exploded")
        else:
            session.decoded(r.id, None)
    answer_all(session)
    events = session.take_events()
    errors = [e for e in events if e.type == "error"]
    assert errors and errors[0].code == "decode_failed" and not errors[0].fatal and errors[0].segment_id == 0
    assert errors[0].to_dict()["segment_id"] == 0
    finals = [e for e in events if e.type == "transcript.final"]
    assert len(finals) == 1 and finals[0].segment.text == ""
    assert events[-1].type == "session.closed"


def test_non_speech_decodes_become_empty_finals():
    session = make_session()
    feed(session, load_clip("ds-arctic-a0024"))
    session.handle(End())
    for r in session.take_requests():
        session.decoded(r.id, decoding("Thank you.", 1.0, is_speech=False))
    events = session.take_events()
    [final] = [e for e in events if e.type == "transcript.final"]
    assert final.segment.text == "" and final.segment.words == ()
    assert events[-1].text == ""


def test_bad_input_errors_leave_the_session_usable():
    session = make_session()
    session.take_events()
    session.handle(Audio(b"\x00"))
    session.handle(Invalid(ProtocolError("invalid_message", "not JSON")))
    assert session.state is SessionState.CONFIGURING  # bad audio is not audio
    errors = session.take_events()
    assert [(e.code, e.fatal) for e in errors] == [("invalid_audio", False), ("invalid_message", False)]
    feed(session, load_clip("ds-arctic-a0024"))
    assert session.state is SessionState.STREAMING
    session.handle(Configure({"endpoint_ms": 900}))
    assert [e.code for e in session.take_events() if e.type == "error"] == ["invalid_state"]
    assert session.options.endpoint_ms == 500
    session.handle(End())
    for late in (Audio(encode_samples(silence(0.1), "pcm_s16le")), Flush(), End(), Configure({})):
        session.handle(late)
        assert [e.code for e in session.take_events() if e.type == "error"] == ["invalid_state"], late


def test_an_update_before_audio_applies_and_is_confirmed():
    session = make_session()
    session.take_events()
    session.handle(Configure({"endpoint_ms": "900", "language": "EN"}))
    [updated] = session.take_events()
    assert updated.type == "session.updated" and updated.session["endpoint_ms"] == 900
    assert session.options.language == "en" and session.state is SessionState.CONFIGURING


def test_an_update_that_changes_nothing_is_confirmed_mid_stream_and_a_change_refused():
    # OpenAI Realtime clients send their whole configuration again mid-stream.
    session = make_session(endpoint_ms=700)
    session.take_events()
    feed(session, load_clip("ds-arctic-a0024")[:8000])
    session.take_events()
    session.handle(Configure({"endpoint_ms": "700", "model": "tiny.en"}))
    [updated] = session.take_events()
    assert updated.type == "session.updated" and updated.session["endpoint_ms"] == 700
    for change in ({"endpoint_ms": 900}, {"endpoint_ms": "bad"}):
        session.handle(Configure(change))
        [error] = session.take_events()
        assert (error.code, error.fatal) == ("invalid_state", False), change
    assert session.state is SessionState.STREAMING and session.options.endpoint_ms == 700


def test_a_flush_is_confirmed_once_its_finals_are_out():
    session = make_session()
    session.take_events()
    session.handle(Flush())  # nothing in progress: confirmed at once
    assert [(e.type, e.segment_id) for e in session.take_events()] == [("flushed", None)]
    speech = load_clip("ds-arctic-a0024")
    feed(session, np.concatenate([speech, silence(2.0), speech]))
    session.handle(Flush())
    session.handle(Flush())  # a second flush before the first is done waits for the same finals
    assert "flushed" not in types(session.take_events())  # the finals are still being decoded
    answer_all(session, lambda r: "it was my reports")
    events = session.take_events()
    finals = [e.segment.id for e in events if e.type == "transcript.final"]
    assert finals == [0, 1]
    assert [e.segment_id for e in events if e.type == "flushed"] == [1, 1]
    assert types(events)[-2:] == ["flushed", "flushed"]


def test_invalid_update_before_audio_is_fatal():
    session = make_session()
    session.take_events()
    session.handle(Configure({"sample_rate": 12345}))
    [error] = session.take_events()
    assert error.code == "invalid_config" and error.fatal and "12345" in error.message
    assert session.state is SessionState.CLOSED


def test_a_closed_session_takes_only_engine_results():
    session = make_session()
    session.handle(End())
    assert session.state is SessionState.CLOSED and types(session.take_events())[-1] == "session.closed"
    session.handle(DecodeCancelled(99))  # a late result: nothing happens
    session.handle(ConnectionLost())
    assert session.take_events() == []
    with pytest.raises(SessionStateError, match="closed"):
        session.handle(Audio(b"\x00\x00"))


def test_every_client_command_in_every_open_state_is_either_a_move_or_a_refusal():
    open_states = [s for s in SessionState if s is not SessionState.CLOSED]
    for state in open_states:
        for trigger in [*TRIGGERS.values(), "confirm"]:
            assert ((state, trigger) in TRANSITIONS) != ((state, trigger) in REFUSALS), (state, trigger)


def test_an_utterance_refuses_a_move_its_state_does_not_allow():
    u = Utterance(0, 0)
    u.move("speculate")
    u.move("withdrawn")
    u.move("ended")
    assert u.state is UtteranceState.FINAL_PENDING
    with pytest.raises(SessionStateError, match="final pending"):
        u.move("speculate")
    u.move("emitted")
    with pytest.raises(SessionStateError):
        u.move("emitted")


def test_a_request_is_submitted_before_it_is_cancelled():
    session = make_session(endpoint_ms=800)
    speech = load_clip("ds-arctic-a0024")
    a, b = speech_bounds_samples(speech)
    feed(session, np.concatenate([speech[a:b], silence(0.45)]), chunk=480)
    seen: dict[int, list[str]] = {}
    feed(session, speech[a : a + SR // 2], chunk=480)  # the speaker goes on: the speculation is void
    for action in session.take_actions():
        rid = action.request.id if isinstance(action, Submit) else action.request_id
        seen.setdefault(rid, []).append(type(action).__name__)
    cancelled = [rid for rid, kinds in seen.items() if "Cancel" in kinds]
    assert cancelled and all(seen[rid] == ["Submit", "Cancel"] for rid in cancelled), seen


def test_english_only_model_refuses_other_languages_and_translation():
    with pytest.raises(ProtocolError, match="English-only"):
        make_session(language="de")
    with pytest.raises(ProtocolError, match="translate"):
        make_session(task="translate")
    with pytest.raises(ProtocolError, match="available models"):
        StreamSession(SessionOptions(model="nope"), Catalog(), LANGS)
    assert StreamSession(SessionOptions(model="base", language="de", task="translate"), Catalog(), LANGS)


@pytest.mark.parametrize("rate, encoding", [(48000, "pcm_f32le"), (8000, "mulaw"), (22050, "pcm_s16le")])
def test_times_are_sample_counts_at_any_rate_and_encoding(rate, encoding):
    import soxr

    speech = load_clip("ds-arctic-a0024")
    audio = np.concatenate([silence(1.0), speech, silence(1.0)])
    resampled = soxr.resample(audio, SR, rate).astype(np.float32)
    session = make_session(sample_rate=rate, encoding=encoding)
    feed(session, resampled, chunk=rate // 10, encoding=encoding)
    session.handle(End())
    answer_all(session, lambda r: "it was my reports")
    events = session.take_events()
    [started] = [e for e in events if e.type == "speech.started"]
    a, _ = speech_bounds_samples(speech)
    assert abs(started.start - (1.0 + a / SR)) < 0.45  # pre-roll reaches back 0.3 s
    assert events[-1].type == "session.closed"
    assert abs(events[-1].duration - len(audio) / SR) < 0.01


def test_under_pressure_the_session_spaces_its_partials():
    def partial_ends(pressure: float) -> tuple[list[int], int]:
        session = make_session(endpoint_ms=900)
        session.handle(LoadReport(pressure))
        speech = load_clip("lhotse-libri-2412-153948-0000")[: 6 * SR]
        ends, finals = [], 0
        for i in range(0, len(speech), 480):
            feed(session, speech[i : i + 480], chunk=480)
            for r in session.take_requests():
                if r.kind == "partial":
                    ends.append(r.audio_end)
                    session.decoded(r.id, decoding("if the reader", 1.0))
                else:
                    finals += 1
        feed(session, silence(0.6), chunk=480)  # a pause longer than the speculation wait
        finals += sum(r.kind == "final" for r in session.take_requests())
        return ends, finals

    relaxed, speculated = partial_ends(0.0)
    pressed, still_speculated = partial_ends(0.95)
    # Speculative finals queue behind confirmed ones, so they stay on.
    assert speculated >= 1 and still_speculated >= 1
    gaps = lambda ends: [b - a for a, b in zip(ends[1:], ends[2:])]
    interval = StreamSettings().partial_interval_ms * SR // 1000
    assert min(gaps(relaxed)) >= interval and min(gaps(pressed)) >= 3 * interval
    assert len(pressed) < len(relaxed)

def _speculate_then_loud_tail(session, classifiers):
    speculative = speculate(session, "it was my reports", pause_s=0.35)
    speech = load_clip("ds-arctic-a0024")
    a, _ = speech_bounds_samples(speech)
    # Loud sound (-10 dB) that this VAD calls non-speech.
    classifiers[-1].deaf = True
    feed(session, np.concatenate([speech[a : a + SR // 2] * 0.3, silence(0.6)]), chunk=480)
    assert session.take_cancellations() == []
    assert session.take_promotions() == [speculative.id]
    return speculative


def deafenable_session(**options):
    classifiers = []

    def factory(config):
        classifiers.append(Deafenable(config))
        return classifiers[-1]

    return make_session(classifier_factory=factory, **options), classifiers


def test_a_speculation_whose_words_run_into_its_end_is_decoded_again():
    session, classifiers = deafenable_session(endpoint_ms=600)
    speculative = _speculate_then_loud_tail(session, classifiers)
    duration = len(speculative.job.audio) / SR
    cut_short = decoding("it was my reports from the", duration)
    words = cut_short.segments[0].words
    last = words[-1]
    running = words[:-1] + (Word(last.word, last.start, duration - 0.05, 0.5),)
    segment = cut_short.segments[0]
    cut_short = dataclasses.replace(cut_short, segments=(dataclasses.replace(segment, words=running),))
    session.decoded(speculative.id, cut_short)
    assert session.take_cancellations() == [speculative.id]
    [redo] = [r for r in session.take_requests() if r.kind == "final"]
    assert redo.audio_end > speculative.audio_end and redo.job.priority.name == "FINAL"
    assert not [e for e in session.take_events() if e.type == "transcript.final"]
    session.decoded(redo.id, decoding("it was my reports from the north", len(redo.job.audio) / SR))
    assert final_texts(session) == ["it was my reports from the north"]


def test_a_speculation_followed_by_a_breath_stands():
    session, classifiers = deafenable_session(endpoint_ms=600)
    speculative = _speculate_then_loud_tail(session, classifiers)
    session.decoded(speculative.id, decoding("it was my reports", len(speculative.job.audio) / SR))
    assert session.take_cancellations() == [] and not session.take_requests()
    assert final_texts(session) == ["it was my reports"]


def test_a_speculation_stands_when_only_quiet_noise_follows_it():
    session = make_session(endpoint_ms=600)
    speculate(session, "it was my reports")
    hiss = (np.random.default_rng(0).standard_normal(SR) * 0.001).astype(np.float32)
    feed(session, hiss, chunk=480)
    assert session.take_cancellations() == []
    assert not [r for r in session.take_requests() if r.kind == "final"]


def test_a_speculation_still_running_at_the_endpoint_is_promoted():
    session = make_session(endpoint_ms=600)
    speculative = speculate(session, "the final")
    assert session.take_promotions() == []
    feed(session, silence(0.5), chunk=480)  # the endpoint, the result not in yet
    assert session.take_promotions() == [speculative.id]
    assert not session.take_requests()
    session.decoded(speculative.id, decoding("the final words", 1.0))
    assert final_texts(session) == ["the final words"]


def test_a_partial_fixes_the_language_only_when_its_detection_is_sure():
    session = DrivenSession(SessionOptions(model="base"), Catalog(), LANGS, StreamSettings())
    speech = np.tile(load_clip("wlk-libri-7902-96591-0000"), 2)  # 4 s of speech
    languages = []
    for i in range(0, len(speech), 480):
        feed(session, speech[i : i + 480], chunk=480)
        for r in session.take_requests():
            if r.kind != "partial":
                continue
            seconds = len(r.job.audio) / SR
            languages.append((seconds, r.job.options.language))
            # Early and unsure: Spanish (as base said on 0.5 s of English);
            # later and sure: English.
            answer = ("es", 0.6) if seconds < 1.5 else ("en", 0.97)
            session.decoded(r.id, decoding("words", seconds, language=answer[0], language_probability=answer[1]))
    assert len(languages) >= 4
    assert all(language is None for seconds, language in languages if seconds < 1.9)
    sure = [seconds for seconds, language in languages if language is not None]
    assert sure and all(language == "en" for seconds, language in languages if seconds >= min(sure))


def test_partials_suppress_the_lone_space_and_finals_do_not():
    session = make_session()
    feed(session, np.concatenate([load_clip("ds-arctic-a0024"), silence(1.0)]))
    requests = answer_all(session)
    kinds = {(r.kind, r.job.options.suppress_lone_space) for r in requests}
    assert kinds == {("partial", True), ("final", False)}


def test_a_signal_is_told_at_its_stream_time_and_refused_after_end():
    from gateway.core.commands import Signal

    session = make_session(channels=2)
    session.take_events()
    feed(session, np.zeros(2 * SR, np.float32), chunk=3200)  # one second of two channels
    session.handle(Signal("dtmf", "7", 1))
    [signal] = [e for e in session.take_events() if e.type == "signal"]
    assert (signal.kind, signal.value, signal.channel, signal.at) == ("dtmf", "7", 1, 1.0)
    assert signal.to_dict() == {"type": "signal", "kind": "dtmf", "value": "7", "at": 1.0, "channel": 1}
    feed(session, stereo(load_clip("ds-arctic-a0024"), silence(1.0)), chunk=3200)
    session.handle(End())  # the final is still to be decoded: closing
    assert session.state is SessionState.CLOSING
    session.take_events()
    session.handle(Signal("dtmf", "8"))
    assert [e.code for e in session.take_events() if e.type == "error"] == ["invalid_state"]


def test_the_pre_roll_is_a_session_option():
    speech = np.concatenate([silence(1.0), load_clip("ds-arctic-a0024")])
    starts = []
    for pre_roll_ms in (0, 600):
        session = make_session(pre_roll_ms=pre_roll_ms)
        feed(session, speech)
        starts.append(next(e.start for e in session.take_events() if e.type == "speech.started"))
    assert starts[0] - starts[1] == pytest.approx(0.6, abs=0.011)


# -- several channels ---------------------------------------------------------------
def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    n = max(len(left), len(right))
    both = np.zeros((n, 2), np.float32)
    both[: len(left), 0], both[: len(right), 1] = left, right
    return both.reshape(-1)  # interleaved


def by_channel(r) -> str:
    return "agent words here" if r.job.stream.endswith("/0") else "caller words here"


def test_each_channel_is_transcribed_on_its_own():
    session = make_session(channels=2, channel_labels="agent,caller")
    [created] = session.take_events()
    assert created.session["channels"] == 2
    a, b = load_clip("ds-arctic-a0024"), load_clip("wlk-libri-7902-96591-0000")
    # the caller starts later and speaks while the agent is still talking
    feed(session, stereo(np.concatenate([a, silence(2.0)]), np.concatenate([silence(1.0), b, silence(2.5)])), chunk=3200)
    requests = answer_all(session, by_channel)
    assert {r.job.stream for r in requests} == {f"{session.session_id}/0", f"{session.session_id}/1"}
    session.handle(End())
    answer_all(session, by_channel)
    events = session.take_events()
    started = [e for e in events if e.type == "speech.started"]
    assert [(e.channel, e.label) for e in started] == [(0, "agent"), (1, "caller")]
    assert [e.segment_id for e in started] == [0, 1]  # one sequence, in order of start
    finals = {e.segment.id: e for e in events if e.type == "transcript.final"}
    assert (finals[0].channel, finals[0].label, finals[0].segment.text.strip()) == (0, "agent", "agent words here")
    assert (finals[1].channel, finals[1].label, finals[1].segment.text.strip()) == (1, "caller", "caller words here")
    assert all(e.channel == (0 if e.segment_id == 0 else 1) for e in events if e.type == "transcript.partial")
    closed = events[-1]
    assert closed.type == "session.closed" and closed.segments == 2
    assert closed.text == "agent words here caller words here"  # in order of start
    assert [(c.channel, c.label, c.text, c.segments) for c in closed.channels] == [
        (0, "agent", "agent words here", 1), (1, "caller", "caller words here", 1)
    ]
    assert closed.to_dict()["channels"][1]["label"] == "caller"
    assert closed.duration == pytest.approx(len(a) / SR + 2.0, abs=0.01)


def test_one_channel_never_holds_back_another():
    session = make_session(channels=2)
    session.take_events()
    long_talk = np.concatenate([load_clip("lhotse-libri-2412-153948-0000")] * 2)  # 23 s without a long pause... mostly
    short = np.concatenate([silence(1.0), load_clip("ds-arctic-a0024"), silence(2.0)])
    feed(session, stereo(long_talk[: len(short) + SR], short), chunk=3200)
    answer_all(session, by_channel)
    events = session.take_events()
    finals = [e for e in events if e.type == "transcript.final"]
    assert [f.channel for f in finals] == [1], "the caller's final came while the agent was still speaking"
    assert any(e.type == "speech.started" and e.channel == 0 for e in events)


def test_a_frame_must_hold_whole_multichannel_frames_and_a_flush_waits_for_every_channel():
    session = make_session(channels=2)
    session.take_events()
    session.handle(Audio(encode_samples(silence(0.001)[:3], "pcm_s16le")))  # 3 samples: not 2-channel frames
    [error] = session.take_events()
    assert error.code == "invalid_audio" and "2-sample frames" in error.message and session.state is SessionState.CONFIGURING
    a = load_clip("ds-arctic-a0024")
    feed(session, stereo(a, np.concatenate([silence(0.5), a[: len(a) // 2]])), chunk=3200)
    session.handle(Flush())
    answer_all(session, by_channel)
    events = session.take_events()
    kinds = types(events)
    assert kinds.count("transcript.final") == 2 and kinds[-1] == "flushed"
    assert events[-1].segment_id == 1




def test_a_resumed_stream_continues_the_times_and_ids_it_is_given():
    """time_offset and first_segment_id (resuming a dropped stream): every time
    point is shifted, ids go on from the given one; durations are not times."""
    speech = np.concatenate([silence(0.5), load_clip("ds-arctic-a0024"), silence(1.0)])
    plain, resumed = make_session(), make_session(time_offset=100.0, first_segment_id=7)
    for session in (plain, resumed):
        session.take_events()
        feed(session, speech)
        answer_all(session, lambda r: "it was my reports")
        session.handle(End())
        answer_all(session)
    a, b = plain.take_events(), resumed.take_events()
    assert types(a) == types(b)
    for x, y in zip(a, b):
        if x.type in ("speech.started", "transcript.partial"):
            assert y.segment_id == x.segment_id + 7 and y.start == pytest.approx(x.start + 100.0)
        if x.type == "transcript.final":
            assert y.segment.id == x.segment.id + 7 and y.ended_at == pytest.approx(x.ended_at + 100.0)
            assert (y.segment.start, y.segment.end) == pytest.approx((x.segment.start + 100.0, x.segment.end + 100.0))
            assert [w.start for w in y.segment.words] == pytest.approx([w.start + 100.0 for w in x.segment.words])
            assert y.segment.seek == x.segment.seek + 100 * 100  # seek counts 10 ms frames
        if x.type == "session.closed":
            assert y.duration == x.duration and y.text == x.text


def test_partials_are_decoded_on_the_configured_least_window():
    session = make_session()
    speech = load_clip("lhotse-libri-2412-153948-0000")
    partials = []
    for i in range(0, 3 * SR, 1600):
        feed(session, speech[i : i + 1600])
        for r in session.take_requests():
            if r.kind == "partial":
                partials.append(r)
                session.decoded(r.id, decoding("if the reader", (i + 1600) / SR))
    assert len(partials) >= 2
    assert all(p.job.options.min_window_s == session.settings.partial_window_s == 10.0 for p in partials)
