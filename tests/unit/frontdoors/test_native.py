"""The native dialect: control messages to commands, events to JSON frames."""

from __future__ import annotations

import json

import pytest

from gateway.core.commands import Audio, Configure, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import ErrorEvent, SessionClosed, TranscriptFinal
from gateway.core.records import Segment, Word
from gateway.frontdoors.dialect import CLOSE_GOING_AWAY, CLOSE_POLICY, Upgrade
from gateway.frontdoors.native import NativeDialect, parse_message

from .opening import dialect_of


def native(query=()) -> NativeDialect:
    dialect = dialect_of(NativeDialect, Upgrade("/v0/audio/stream", query=tuple(query)))
    assert isinstance(dialect, NativeDialect)
    return dialect


def test_client_messages():
    assert parse_message('{"type": "flush"}') == Flush()
    assert parse_message('{"type": "end"}') == End()
    assert parse_message('{"type": "session.update", "session": {"language": "de"}}') == Configure({"language": "de"})
    deep = "[" * 100_000 + "]" * 100_000
    for bad in ("nope", "[1]", '{"kind": "flush"}', '{"type": "hop"}', '{"type": "session.update", "session": 3}', deep):
        with pytest.raises(ProtocolError) as error:
            parse_message(bad)
        assert error.value.code == "invalid_message" and not error.value.fatal


def test_binary_frames_are_audio_and_the_query_is_the_options():
    door = native([("sample_rate", "8000"), ("language", "fr"), ("language", "de")])
    assert door.commands(b"\x00\x01") == [Audio(b"\x00\x01")]
    assert door.commands('{"type": "end"}') == [End()]
    assert door.opened.options == {"sample_rate": "8000", "language": "de"}  # the last of a repeated key


def test_final_event_is_the_verbose_json_segment_in_one_text_frame():
    segment = Segment(3, 120, 1.23456, 2.5, " Hi there.", (1, 2), 0.0, -0.123456, 1.1, 0.01, (Word(" Hi", 1.23456, 1.5, 0.98765),))
    [frame] = native().frames(TranscriptFinal(segment, "en"))
    body = json.loads(frame)
    assert body["type"] == "transcript.final" and body["language"] == "en"
    assert body["segment"]["start"] == 1.235 and body["segment"]["tokens"] == [1, 2]
    assert body["segment"]["words"] == [{"word": " Hi", "start": 1.235, "end": 1.5, "probability": 0.9877}]
    assert json.loads(native().frames(SessionClosed(1.0, "Grüße", 1, "de"))[0])["text"] == "Grüße"


def test_close_codes():
    door = native()
    assert door.close_code(ErrorEvent("invalid_config", "bad", fatal=True)) == CLOSE_POLICY
    assert door.close_code(ErrorEvent("server_shutdown", "bye", fatal=True)) == CLOSE_GOING_AWAY
    assert door.close_code(ErrorEvent("invalid_audio", "odd", fatal=False)) is None


def test_redact_may_be_repeated_in_the_query():
    opening = NativeDialect.opening(Upgrade("/v0/stream", query=(("redact", "pci"), ("redact", "ssn,phone"))))
    assert opening.options["redact"] == "pci,ssn,phone"
