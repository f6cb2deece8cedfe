"""The AssemblyAI dialect, byte-driven: the SDK's frames in, core commands out; core events in, AssemblyAI frames out."""

from __future__ import annotations

import json

import pytest

from gateway.frontdoors.assemblyai import AssemblyAIDialect
from gateway.frontdoors.dialect import Opening, Upgrade

from .opening import dialect_of


def test_pipecat_asks_for_formatted_turns_by_their_earlier_name():
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Upgrade

    for query, formatted in ((("formatted_finals", "true"),), True), ((("format_turns", "False"),), False), ((), False):
        dialect = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws", query=query))
        assert isinstance(dialect, AssemblyAIDialect) and dialect.format_turns is formatted, query


@pytest.mark.parametrize("speech_model, ends", [
    ("universal-3-6-pro", ["formatted"]),  # pipecat 1.14's and LiveKit 1.8's default
    ("u3-rt-pro", ["formatted"]),
    ("u3-pro", ["formatted"]),
    ("universal-3-5-pro", ["formatted"]),
    ("universal-streaming-english", ["plain"]),
    (None, ["plain"]),
])
def test_universal_3_pro_models_end_every_turn_formatted(speech_model, ends):
    """Issue 20: AssemblyAI's U3 Pro models always format turns; LiveKit's
    plugin takes the first end-of-turn Turn as final, and got it lower-case."""

    from gateway.core.events import SpeechStarted, TranscriptFinal, TranscriptPartial
    from gateway.core.records import make_segment
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Upgrade
    from gateway.inference.records import Word

    query = (("speech_model", speech_model),) if speech_model else ()
    dialect = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws", query=query))
    words = (Word(" Hello,", 0.1, 0.5, 0.9), Word(" world.", 0.6, 1.0, 0.9))
    final = TranscriptFinal(make_segment(0, 0, " Hello, world.", (), None, words, 0.0, 0.1, 1.0), "en", end_reason="endpoint")
    sent = [json.loads(f) for e in (SpeechStarted(0, 0.1), TranscriptPartial(0, 0.1, 0.8, "Hello world", "Hello"), final) for f in dialect.frames(e)]
    turn_ends = [m for m in sent if m["type"] == "Turn" and m["end_of_turn"]]
    assert ["formatted" if m["turn_is_formatted"] else "plain" for m in turn_ends] == ends
    assert turn_ends[0]["transcript"] == ("Hello, world." if ends == ["formatted"] else "hello world")


# -- the opening and the messages, byte by byte ---------------------------------------------
# What the assemblyai SDK's StreamingClient puts on the wire (v3).
SDK_QUERY = (("sample_rate", "16000"), ("encoding", "pcm_s16le"), ("format_turns", "true"), ("min_turn_silence", "400"),
             ("keyterms_prompt", '["Whisper", "gateway"]'))


def test_the_sdks_upgrade_is_one_opening_record():
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Opening, Upgrade

    opening = AssemblyAIDialect.opening(Upgrade("/v3/ws", query=SDK_QUERY, headers={"authorization": "aai-key"}))
    assert isinstance(opening, Opening) and opening.api_key == "aai-key"
    assert dict(opening.options) == {
        "interim_results": True, "sample_rate": "16000", "encoding": "pcm_s16le", "endpoint_ms": 400, "prompt": "Whisper, gateway",
    }
    assert opening.wire.format_turns and not opening.wire.always_formatted
    # Browsers pass a temporary token in the query.
    assert AssemblyAIDialect.opening(Upgrade("/v3/ws", query=(("token", "tmp"),))).api_key == "tmp"


def test_a_refused_opening_is_assemblyais_error_message_then_a_policy_close():
    from gateway.core.events import ErrorEvent
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import CLOSE_POLICY, Refusal, Upgrade

    refusal = AssemblyAIDialect.opening(Upgrade("/v3/ws", query=(("encoding", "opus"),)))
    assert isinstance(refusal, Refusal) and refusal.status is None  # not over HTTP: an Error message
    speaker = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws"))
    event = ErrorEvent(refusal.code, refusal.message, True)
    [frame] = speaker.frames(event)
    assert json.loads(frame) == {"type": "Error", "error": refusal.message, "error_code": 3005}
    assert speaker.close_code(event) == CLOSE_POLICY


def test_the_sdks_messages_are_commands():
    from gateway.core.commands import Audio, Configure, End, Flush
    from gateway.core.errors import ProtocolError
    from gateway.core.events import SessionClosed, SessionCreated
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Upgrade

    dialect = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws", query=SDK_QUERY))
    assert dialect.commands(b"\x00\x01") == [Audio(b"\x00\x01")]
    assert dialect.commands(json.dumps({"type": "KeepAlive"})) == []
    assert dialect.commands(json.dumps({"type": "ForceEndpoint"})) == [Flush()]
    assert dialect.commands(json.dumps({"type": "Terminate"})) == [End()]
    assert dialect.commands(json.dumps({"type": "UpdateConfiguration", "max_turn_silence": 900})) == [Configure({"endpoint_ms": 900})]
    with pytest.raises(ProtocolError):
        dialect.commands(json.dumps({"type": "Pause"}))
    [begin] = [json.loads(f) for f in dialect.frames(SessionCreated("s1", {}, "1"))]
    assert begin["type"] == "Begin" and begin["id"] == "s1" and begin["expires_at"] > 0
    [end] = [json.loads(f) for f in dialect.frames(SessionClosed(4.6, "", 0, None))]
    assert end["type"] == "Termination" and end["audio_duration_seconds"] == 5


def test_speaker_labels_put_a_speaker_label_on_turns_and_a_speaker_on_final_words():
    import dataclasses

    from gateway.core.events import SpeechStarted, TranscriptFinal, TranscriptPartial
    from gateway.core.records import make_segment
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Opening, Upgrade
    from gateway.inference.records import Word

    opening = AssemblyAIDialect.opening(Upgrade("/v3/ws", query=(("speaker_labels", "True"), ("format_turns", "true"))))
    assert isinstance(opening, Opening) and opening.options["diarize"] is True
    dialect = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws", query=(("speaker_labels", "True"), ("format_turns", "true"))))
    words = (Word(" Hello,", 0.1, 0.5, 0.9), Word(" world.", 0.6, 1.0, 0.9))
    segment = make_segment(0, 0, " Hello, world.", (), None, words, 0.0, 0.1, 1.0)
    final = TranscriptFinal(dataclasses.replace(segment, speaker="B", word_speakers=("A", "B")), "en")
    events = (SpeechStarted(0, 0.1), TranscriptPartial(0, 0.1, 0.8, "Hello world", "Hello", speaker="A"), final)
    turns = [json.loads(f) for e in events for f in dialect.frames(e) if json.loads(f)["type"] == "Turn"]
    assert [t["speaker_label"] for t in turns] == ["A", "B", "B"]  # the partial's is provisional
    assert [[w["speaker"] for w in t["words"]] for t in turns if t["end_of_turn"]] == [["A", "B"], ["A", "B"]]
    plain = dialect_of(AssemblyAIDialect, Upgrade("/v3/ws"))
    sent = [json.loads(f) for e in (SpeechStarted(0, 0.1), TranscriptFinal(segment, "en")) for f in plain.frames(e)]
    assert all("speaker_label" not in m and all("speaker" not in w for w in m.get("words", [])) for m in sent)


def test_redact_pii_and_its_policies_are_the_cores_kinds_and_unserved_policies_are_refused():
    import pytest

    from gateway.core.errors import ProtocolError

    def kinds(*query: tuple[str, str]):
        opening = AssemblyAIDialect.opening(Upgrade("/v3/ws", query=query))
        assert isinstance(opening, Opening), opening
        return opening.options.get("redact")

    assert kinds(("redact_pii", "true"), ("redact_pii_policies", "credit_card_number,us_social_security_number")) == "pci,ssn"
    assert kinds(("redact_pii", "true"), ("redact_pii_policies", '["phone_number", "number_sequence"]')) == "phone,numbers"
    assert kinds(("redact_pii", "true")) == "pci,ssn,phone,email"  # no policies: every one served but number_sequence
    assert kinds(("redact_pii_policies", "phone_number")) is None  # policies alone do not ask for redaction
    with pytest.raises(ProtocolError, match="person_name not served"):
        AssemblyAIDialect.read_opening(
            Upgrade("/v3/ws", query=(("redact_pii", "true"), ("redact_pii_policies", "person_name,phone_number"))), None, Opening()
        )
