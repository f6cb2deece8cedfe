"""Properties of the session core under any sequence of inputs (hypothesis).

Random sequences of real speech, silence, garbage audio, option updates
(good and bad), flushes, ends, dropped connections, server stops, load
reports and engine answers (results, failures, cancellations, in any
order) never raise out of the core, and the contract holds: segment ids
increase from 0, each utterance is finalised exactly once and in order,
partials come before their final, times lie inside the audio received,
nothing follows session.closed.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

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
    Stop,
    Submit,
)
from gateway.core.errors import ProtocolError
from gateway.core.options import OPTION_KEYS, SessionOptions, parse_options
from gateway.core.session import SessionState, StreamSession
from tests.clips import load_clip

from .test_session import LANGS, Catalog, decoding

SR = 16000
SPEECH = np.concatenate([load_clip("ds-arctic-a0024"), load_clip("wlk-libri-7902-96591-0000")])
TEXTS = ("", "it was", "it was my reports.", "words words words", "Thank you.")

speech = st.tuples(st.just("speech"), st.integers(0, len(SPEECH) - SR), st.integers(SR // 2, 3 * SR))
silence = st.tuples(st.just("silence"), st.integers(SR // 20, 2 * SR))
garbage = st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=9))
configure = st.tuples(
    st.just("configure"),
    st.dictionaries(
        st.sampled_from(["endpoint_ms", "language", "interim_results", "prompt", "colour", "max_segment_s"]),
        st.one_of(st.integers(-10, 10_000), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(), st.none()),
        max_size=3,
    ),
)
ending = st.sampled_from([("end",), ("lost",), ("stop",)])
control = st.sampled_from([("flush",), ("invalid",)])
answer = st.tuples(st.just("answer"), st.integers(0, 5), st.sampled_from(["ok", "fail", "cancel"]), st.sampled_from(TEXTS))
load = st.tuples(st.just("load"), st.floats(0.0, 1.0))
# Mostly speech, pauses and engine answers, so that utterances happen; the
# rest now and then; an ending (end, a lost client, a server stop) rarely.
step = st.one_of(speech, speech, speech, silence, silence, answer, answer, answer, garbage, configure, control, load)
some_steps = st.lists(st.one_of(step, step, step, step, step, step, step, step, step, step, step, ending), min_size=3, max_size=40)
# Half the examples open with three seconds of real speech.
steps = st.one_of(some_steps, some_steps.map(lambda s: [("speech", 0, 3 * SR), *s]))


class Driver:
    """Feeds a session and plays a scripted engine: requests wait until an
    ``answer`` step picks them."""

    def __init__(self, session: StreamSession):
        self.session = session
        self.pending: dict[int, float] = {}  # request id -> audio seconds
        self.events: list = []

    def handle(self, command) -> None:
        self.session.handle(command)
        for action in self.session.take_actions():
            if isinstance(action, Submit):
                self.pending[action.request.id] = len(action.request.job.audio) / SR
            elif isinstance(action, Cancel) and action.request_id in self.pending:
                del self.pending[action.request_id]
                self.session.handle(DecodeCancelled(action.request_id))
        self.events += self.session.take_events()

    def client(self, command) -> None:
        if self.session.state is not SessionState.CLOSED:  # a transport stops feeding a closed session
            self.handle(command)

    def answer(self, index: int, how: str, text: str) -> None:
        if not self.pending:
            return
        request_id = sorted(self.pending)[index % len(self.pending)]
        seconds = self.pending.pop(request_id)
        if how == "ok":
            self.handle(Decoded(request_id, decoding(text, seconds, is_speech=bool(text))))
        elif how == "fail":
            self.handle(DecodeFailed(request_id, "model exploded"))
        else:
            self.handle(DecodeCancelled(request_id))

    def run(self, step) -> None:
        kind = step[0]
        if kind == "speech":
            _, at, n = step
            self.client(Audio(encode_samples(SPEECH[at : at + n], "pcm_s16le")))
        elif kind == "silence":
            self.client(Audio(encode_samples(np.zeros(step[1], np.float32), "pcm_s16le")))
        elif kind == "garbage":
            self.client(Audio(step[1]))
        elif kind == "configure":
            self.client(Configure(step[1]))
        elif kind == "flush":
            self.client(Flush())
        elif kind == "end":
            self.client(End())
        elif kind == "invalid":
            self.client(Invalid(ProtocolError("invalid_message", "not JSON")))
        elif kind == "lost":
            self.handle(ConnectionLost())
        elif kind == "stop":
            self.handle(Stop("idle_timeout", "no speech"))
        elif kind == "load":
            self.handle(LoadReport(step[1], 0.3))
        else:
            self.answer(*step[1:])

    def finish(self) -> None:
        """The client ends; the engine answers everything, in order."""
        self.client(End())
        for _ in range(1000):
            if not self.pending:
                break
            self.answer(0, "ok", "the end.")
        assert not self.pending, "the session kept asking for decodes after its end"


def check_contract(events, session: StreamSession) -> None:
    kinds = [e.type for e in events]
    assert kinds[0] == "session.created"
    fatal_config = any(e.type == "error" and e.fatal and e.code == "invalid_config" for e in events)
    if fatal_config:  # refused options: closed at once, nothing owed
        assert session.state is SessionState.CLOSED and "session.closed" not in kinds
        return
    assert kinds.count("session.closed") == 1 and kinds[-1] == "session.closed", kinds[-5:]
    started = [e.segment_id for e in events if e.type == "speech.started"]
    finals = [e for e in events if e.type == "transcript.final"]
    assert started == list(range(len(started)))
    assert [f.segment.id for f in finals] == started  # each utterance finalised once, in order
    closed = events[-1]
    assert closed.segments == len(started)
    assert closed.text == " ".join(f.segment.text.strip() for f in finals if f.segment.text.strip())
    final_at = {f.segment.id: i for i, f in enumerate(events) if f.type == "transcript.final"}
    for i, e in enumerate(events):
        if e.type == "transcript.partial":
            assert i < final_at[e.segment_id] and e.text.startswith(e.stable_text)
    for f in finals:
        s = f.segment
        assert 0 <= s.start <= s.end <= closed.duration + 0.05, (s.start, s.end, closed.duration)
        assert all(s.start <= w.start <= w.end <= s.end for w in s.words)


@settings(max_examples=int(os.environ.get("STT_GATEWAY_PROPERTY_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_any_input_sequence_keeps_the_contract(steps):
    session = StreamSession(SessionOptions(model="tiny.en", endpoint_ms=300), Catalog(), LANGS)
    driver = Driver(session)
    driver.events += session.take_events()
    for step in steps:
        driver.run(step)
    driver.finish()
    assert session.state is SessionState.CLOSED
    check_contract(driver.events, session)
    kinds = [e.type for e in driver.events]
    event(f"utterances: {min(kinds.count('speech.started'), 3)}{'+' if kinds.count('speech.started') > 3 else ''}")
    event("with partials" if "transcript.partial" in kinds else "no partials")
    event("errors: " + ",".join(sorted({e.code for e in driver.events if e.type == "error"})))


option_values = st.one_of(
    st.integers(), st.floats(), st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(raw=st.dictionaries(st.sampled_from([*OPTION_KEYS, "colour"]), option_values, max_size=4))
def test_any_options_are_taken_or_refused_with_invalid_config(raw):
    try:
        options = parse_options(raw, SessionOptions(), LANGS)
    except ProtocolError as error:
        assert error.code == "invalid_config" and error.fatal and error.message
    else:
        assert 100 <= options.endpoint_ms <= 5000 and 2.0 <= options.max_segment_s <= 28.0
