"""Redaction in the core: a live session's partials, finals and summary; a
file's segments; the options' floor (model-free: scripted decodes)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gateway.core.commands import End
from gateway.core.errors import ProtocolError
from gateway.core.options import SessionOptions, parse_options
from gateway.core.records import make_segment
from gateway.core.redact import redact_segments
from gateway.inference.records import Word
from tests.clips import load_clip
from tests.unit.core.test_session import LANGS, SR, answer_all, decoding, feed, make_session, silence

CARD = "4111 1111 1111 1111"
DIGITS = re.compile(r"\d|four|one")


def said(session, hypotheses: list[str], final: str) -> list:
    """Speech answered with growing partial ``hypotheses``, then ``final``; the events."""
    speech = load_clip("lhotse-libri-2412-153948-0000")[: 6 * SR]
    answers = iter(hypotheses)
    for i in range(0, len(speech), 1600):
        feed(session, speech[i : i + 1600])
        for r in session.take_requests():
            text = next(answers, hypotheses[-1]) if r.kind == "partial" else final
            session.decoded(r.id, decoding(text, len(r.job.audio) / SR))
    feed(session, silence(1.5))
    answer_all(session, lambda r: final)
    session.handle(End())
    answer_all(session, lambda r: final)
    return session.take_events()


HYPOTHESES = ["my card", "my card number is four", "my card number is 4111 1111", f"my card number is {CARD}", f"my card number is {CARD} thanks"]


def test_no_partial_final_or_summary_of_a_redacted_stream_shows_the_card_number():
    events = said(make_session(redact=("pci",)), HYPOTHESES, f"My card number is {CARD}. Thanks.")
    partials = [e for e in events if e.type == "transcript.partial"]
    assert len(partials) >= len(HYPOTHESES)
    for p in partials:
        assert not DIGITS.search(p.text) and not DIGITS.search(p.stable_text), p
        assert p.text.startswith(p.stable_text)
    [final] = [e.segment for e in events if e.type == "transcript.final"]
    assert final.text == " My card number is [PCI]. Thanks."
    assert final.tokens == ()  # they would spell the digits
    placeholder = next(w for w in final.words if "[PCI]" in w.word)
    first_digit = 4  # "My card number is" then the four groups
    assert placeholder.start < placeholder.end and [w.word for w in final.words][first_digit:] == [" [PCI].", " Thanks."]
    closed = events[-1]
    assert closed.type == "session.closed" and closed.text == "My card number is [PCI]. Thanks."
    assert "1111" not in str([e.to_dict() for e in events])


def test_a_stream_without_redaction_shows_the_number():
    events = said(make_session(), HYPOTHESES, f"My card number is {CARD}. Thanks.")
    assert any(CARD in e.text for e in events if e.type == "transcript.partial")
    assert CARD in events[-1].text


def test_the_next_utterance_is_still_decoded_with_what_was_said():
    session = make_session(redact=("pci",))
    speech = load_clip("ds-arctic-a0024")
    feed(session, np.concatenate([speech, silence(2.0), speech, silence(1.0)]))
    requests = answer_all(session, lambda r: f"card {CARD}")
    session.handle(End())
    requests += answer_all(session, lambda r: f"card {CARD}")
    second = [r for r in requests if r.kind == "final" and r.segment_id == 1][-1]
    assert CARD in second.job.options.prompt  # the prompt stays in the gateway
    assert all("[PCI]" in e.segment.text for e in session.take_events() if e.type == "transcript.final")


def test_the_servers_redaction_is_a_floor_a_client_adds_to_and_never_lowers():
    floor = SessionOptions(redact=("pci", "ssn"))
    assert parse_options({"redact": "email"}, floor, LANGS).redact == ("pci", "ssn", "email")
    assert parse_options({"redact": ""}, floor, LANGS).redact == ("pci", "ssn")
    assert parse_options({"redact": ["numbers", "PCI"]}, SessionOptions(), LANGS).redact == ("pci", "numbers")
    assert parse_options({}, floor, LANGS).redact == ("pci", "ssn")
    with pytest.raises(ProtocolError, match="unknown kind.*names"):
        parse_options({"redact": "pci,names"}, floor, LANGS)
    with pytest.raises(ProtocolError, match="redact must name kinds"):
        parse_options({"redact": 3}, floor, LANGS)


def segment(i: int, text: str, start: float):
    words = tuple(Word(" " + w, start + k * 0.5, start + k * 0.5 + 0.4, 0.9) for k, w in enumerate(text.split()))
    return make_segment(i, 0, " " + text, (1, 2, 3), None, words, 0.0, start, start + 10)


def test_a_files_number_cut_by_a_segment_boundary_is_one_run():
    segments = [segment(0, "please call me at 555 123", 0.0), segment(1, "4567 after six", 5.0), segment(2, "we sold 250 units", 9.0)]
    out = redact_segments(segments, {"phone"})
    assert [s.text for s in out] == [" please call me at [PHONE]", " [PHONE] after six", " we sold 250 units"]
    assert out[0].words[-1].start == segments[0].words[4].start and out[0].words[-1].end == segments[0].words[5].end
    assert out[0].tokens == () and out[2].tokens == (1, 2, 3)  # untouched segments keep theirs
    no_words = [make_segment(0, 0, " my ssn is 123-45-6789", (), None, (), 0.0, 0.0, 3.0, keep_words=False)]
    assert redact_segments(no_words, {"ssn"})[0].text == " my ssn is [SSN]"
