"""The Deepgram dialect, byte-driven: the upgrade and frames deepgram-sdk
sends in, core commands out; core events in, Deepgram's messages out."""

from __future__ import annotations

import json

import pytest

from gateway.core.commands import Audio, Configure, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import Flushed, SessionClosed, SpeechStarted, TranscriptFinal, TranscriptPartial
from gateway.core.options import SessionOptions, parse_options
from gateway.core.records import make_segment
from gateway.frontdoors.deepgram import DeepgramDialect
from gateway.frontdoors.dialect import Opening, Refusal, Upgrade
from gateway.inference.records import Word

from .opening import dialect_of, open_door

# What deepgram-sdk's listen.v1.connect(...) puts on the wire for a typical live session.
SDK_QUERY = (
    ("model", "nova-3"), ("encoding", "linear16"), ("sample_rate", "16000"), ("channels", "1"),
    ("interim_results", "true"), ("vad_events", "true"), ("utterance_end_ms", "1000"), ("endpointing", "300"),
    ("smart_format", "true"), ("keyterm", "Whisper"), ("keyterm", "gateway"),
)
SDK_HEADERS = {"authorization": "Token dg-key"}


def deepgram(query=SDK_QUERY, headers=None) -> DeepgramDialect:
    dialect = dialect_of(DeepgramDialect, Upgrade("/v1/listen", query=tuple(query), headers=headers or SDK_HEADERS))
    assert isinstance(dialect, DeepgramDialect)
    return dialect


def final(text: str, words: tuple[Word, ...], start: float, end: float, reason: str = "endpoint", segment_id: int = 0) -> TranscriptFinal:
    return TranscriptFinal(make_segment(segment_id, 0, text, (), None, words, 0.0, start, end), "en", end_reason=reason)


def sent(dialect: DeepgramDialect, *events) -> list[dict]:
    return [json.loads(frame) for event in events for frame in dialect.frames(event)]


def test_the_sdks_upgrade_is_one_opening_record():
    opening = DeepgramDialect.opening(Upgrade("/v1/listen", query=SDK_QUERY, headers=SDK_HEADERS))
    assert isinstance(opening, Opening)
    assert opening.api_key == "dg-key" and opening.subprotocol is None
    # Deepgram's own model names get the server's default; keyterms become the prompt.
    assert dict(opening.options) == {
        "interim_results": True, "encoding": "pcm_s16le", "sample_rate": "16000", "endpoint_ms": 300,
        "prompt": "Whisper, gateway",
    }
    listening = opening.wire
    assert (listening.vad_events, listening.endpointing, listening.utterance_end_ms, listening.channels) == (True, True, 1000, 1)


def test_a_browser_sends_its_key_as_the_second_subprotocol():
    opening = DeepgramDialect.opening(Upgrade("/v1/listen", subprotocols=("token", "dg-key")))
    assert isinstance(opening, Opening)
    assert opening.api_key == "dg-key" and opening.subprotocol == "token"


@pytest.mark.parametrize("query, says", [
    ((("encoding", "opus"),), "encoding 'opus' is not served"),
    ((("channels", "2"),), "needs multichannel=true"),
    ((("channels", "two"), ("multichannel", "true")), "channels"),
    ((("vad_events", "maybe"),), "vad_events"),
    ((("utterance_end_ms", "-5"),), "utterance_end_ms"),
])
def test_a_query_deepgram_would_refuse_is_a_400_in_deepgrams_body(query, says):
    refusal = DeepgramDialect.opening(Upgrade("/v1/listen", query=query, headers=SDK_HEADERS))
    assert isinstance(refusal, Refusal) and refusal.status == 400 and not refusal.unauthorized
    assert refusal.body is not None and refusal.body["err_code"] == "Bad Request" and says in refusal.body["err_msg"]
    assert refusal.api_key == "dg-key"  # the gates still run before the client is told


def test_options_the_core_refuses_are_refused_the_deepgram_way():
    refusal = open_door(DeepgramDialect, Upgrade("/v1/listen", query=(("sample_rate", "3"),)))
    assert isinstance(refusal, Refusal) and refusal.status == 400 and "sample_rate" in refusal.message


def test_the_sdks_messages_are_commands():
    dialect = deepgram()
    assert dialect.commands(b"\x01\x02") == [Audio(b"\x01\x02")]
    assert dialect.commands(json.dumps({"type": "KeepAlive"})) == []
    assert dialect.commands(json.dumps({"type": "Finalize"})) == [Flush()]
    assert dialect.commands(json.dumps({"type": "CloseStream"})) == [End()]
    assert dialect.commands(b"") == [End()]  # the SDK's old way to close
    configure = dialect.commands(json.dumps({"type": "Configure", "processors": {"keyterms": ["Kubernetes"]}}))
    assert len(configure) == 1 and isinstance(configure[0], Configure)
    with pytest.raises(ProtocolError):
        dialect.commands(json.dumps({"type": "Shout"}))


def test_partials_and_finals_are_results_with_deepgrams_flags():
    dialect = deepgram()
    words = (Word(" Hello,", 0.5, 0.9, 0.9), Word(" world.", 1.0, 1.4, 0.8))
    messages = sent(
        dialect, SpeechStarted(0, 0.48), TranscriptPartial(0, 0.48, 1.0, "Hello", ""), final(" Hello, world.", words, 0.48, 1.5)
    )
    assert [m["type"] for m in messages] == ["SpeechStarted", "Results", "Results", "UtteranceEnd"]
    started, partial, last, utterance_end = messages
    assert started == {"type": "SpeechStarted", "channel": [0], "timestamp": 0.48}
    assert (partial["is_final"], partial["speech_final"]) == (False, False)
    assert partial["channel"]["alternatives"][0]["transcript"] == "Hello"
    assert (last["is_final"], last["speech_final"], last["from_finalize"]) == (True, True, False)
    alternative = last["channel"]["alternatives"][0]
    assert alternative["transcript"] == "Hello, world."
    assert [(w["word"], w["punctuated_word"]) for w in alternative["words"]] == [("hello", "Hello,"), ("world", "world.")]
    assert last["metadata"]["request_id"] == dialect.request_id
    assert utterance_end == {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.4}


def test_a_finalize_is_answered_by_a_final_marked_from_finalize_or_an_empty_one():
    dialect = deepgram()
    dialect.commands(json.dumps({"type": "Finalize"}))
    [cut] = sent(dialect, final(" Hi.", (Word(" Hi.", 0.1, 0.3, 0.9),), 0.0, 0.4, reason="flush"))
    assert (cut["is_final"], cut["speech_final"], cut["from_finalize"]) == (True, False, True)
    dialect.commands(json.dumps({"type": "Finalize"}))
    [empty] = sent(dialect, Flushed(None))
    assert empty["is_final"] and empty["from_finalize"] and empty["channel"]["alternatives"][0]["transcript"] == ""


def test_without_vad_events_or_endpointing_deepgrams_extras_stay_quiet():
    dialect = deepgram(query=(("endpointing", "false"),))
    messages = sent(dialect, SpeechStarted(0, 0.1), final(" Hi.", (Word(" Hi.", 0.1, 0.3, 0.9),), 0.0, 0.4))
    assert [m["type"] for m in messages] == ["Results"] and messages[0]["speech_final"] is False


def test_the_close_is_deepgrams_metadata():
    dialect = deepgram(query=(("channels", "2"), ("multichannel", "true")))
    [metadata] = sent(dialect, SessionClosed(12.3456, "Hi.", 1, "en"))
    assert metadata["type"] == "Metadata" and metadata["duration"] == 12.346 and metadata["channels"] == 2
    assert metadata["request_id"] == dialect.request_id


def test_diarize_numbers_each_channels_speakers_from_zero_in_order_of_appearance():
    import dataclasses

    opening = DeepgramDialect.opening(Upgrade("/v1/listen", query=(("diarize", "true"),)))
    assert isinstance(opening, Opening) and opening.options["diarize"] is True
    dialect = deepgram(query=SDK_QUERY + (("diarize", "true"),))
    words = (Word(" Hi", 0.0, 0.4, 0.9), Word(" there.", 0.4, 0.9, 0.9))

    def said(speaker: str, start: float, word_speakers: tuple[str, ...] = (), channel: int = 0) -> TranscriptFinal:
        event = final(" Hi there.", tuple(dataclasses.replace(w, start=w.start + start, end=w.end + start) for w in words), start, start + 1)
        segment = dataclasses.replace(event.segment, speaker=speaker, word_speakers=word_speakers)
        return dataclasses.replace(event, segment=segment, channel=channel)

    out = sent(dialect, said("B", 0.0), said("A", 2.0), said("B", 4.0, ("B", "A")), said("A", 6.0, channel=1))
    speakers = [[w["speaker"] for w in m["channel"]["alternatives"][0]["words"]] for m in out if m["type"] == "Results"]
    assert speakers == [[0, 0], [1, 1], [0, 1], [0, 0]]  # the first voice heard is 0; each channel counts its own
    plain = sent(deepgram(), final(" Hi there.", words, 0.0, 1.0))
    assert "speaker" not in plain[0]["channel"]["alternatives"][0]["words"][0]
    with pytest.raises(ProtocolError, match="diarize"):
        DeepgramDialect.read_opening(Upgrade("/v1/listen", query=(("diarize", "perhaps"),)), None, Opening())


def test_redact_takes_deepgrams_values_repeated_or_comma_separated_and_refuses_entity_groups():
    def kinds(*values: str):
        opening = DeepgramDialect.read_opening(Upgrade("/v1/listen", query=tuple(("redact", v) for v in values)), None, Opening())
        return parse_options(opening.options, SessionOptions(), frozenset({"en"})).redact

    assert kinds("pci", "ssn") == ("pci", "ssn")
    assert kinds("pci,numbers") == ("pci", "numbers")
    assert kinds("true") == ("numbers",)  # Deepgram's true
    assert kinds("false") == ()
    with pytest.raises(ProtocolError, match="redact=pii is not served.*named-entity"):
        kinds("pci", "pii")


def test_a_redaction_placeholder_keeps_its_brackets_in_the_plain_word():
    words = (Word(" card", 0.0, 0.4, 0.9), Word(" [PCI].", 0.4, 2.0, 0.9))
    out = sent(deepgram(), final(" card [PCI].", words, 0.0, 2.0))
    said = out[0]["channel"]["alternatives"][0]["words"]
    assert [(w["word"], w["punctuated_word"]) for w in said] == [("card", "card"), ("[PCI]", "[PCI].")]
