"""The OpenAI Realtime dialect, byte-driven: the SDK's frames in, core commands out; core events in, OpenAI events out."""

from __future__ import annotations

import base64

from .opening import dialect_of


def session_update(fmt: dict, turn_detection, **transcription) -> dict:
    """A transcription session.update as the openai SDK sends it (GA shape)."""
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {"model": "gpt-4o-transcribe", "language": "en", **transcription},
                "turn_detection": turn_detection,
                "noise_reduction": None,
            }
        },
        "include": [],
    }


def test_an_utterance_the_model_failed_on_is_a_failed_item_and_the_next_goes_on():
    """The dialect alone, fed the core's events: a decode_failed error names
    its utterance, whose item then fails instead of completing."""
    import json

    from gateway.core.events import ErrorEvent, SpeechStarted, TranscriptFinal, TranscriptPartial
    from gateway.core.records import make_segment
    from gateway.frontdoors.dialect import Upgrade
    from gateway.frontdoors.openai import OpenAIRealtimeDialect

    dialect = dialect_of(OpenAIRealtimeDialect, Upgrade("/v1/realtime", query=(("intent", "transcription"),)))

    def final(segment_id: int, text: str) -> TranscriptFinal:
        return TranscriptFinal(make_segment(segment_id, 0, text, (), None, (), 0.0, segment_id * 2.0, segment_id * 2.0 + 1), "en")

    sent = []
    for event in (
        SpeechStarted(0, 0.0), TranscriptPartial(0, 0.0, 0.8, "hello there", "hello"),
        ErrorEvent("decode_failed", "segment 0: out of memory", segment_id=0), final(0, ""),
        SpeechStarted(1, 2.0), final(1, " Fine, thanks."),
    ):
        sent += [json.loads(frame) for frame in dialect.frames(event)]
    kinds = [(m["type"], m.get("item_id")) for m in sent]
    first, second = sent[0]["item_id"], next(m["item_id"] for m in sent if m["type"] == "input_audio_buffer.speech_started" and m["item_id"] != sent[0]["item_id"])
    assert ("conversation.item.input_audio_transcription.failed", first) in kinds
    assert ("conversation.item.input_audio_transcription.completed", first) not in kinds
    failed = next(m for m in sent if m["type"].endswith("transcription.failed"))
    assert failed["error"]["message"] == "segment 0: out of memory"
    completed = next(m for m in sent if m["type"].endswith("transcription.completed"))
    assert completed["item_id"] == second and completed["transcript"] == "Fine, thanks."
    assert not [m for m in sent if m["type"] == "error"]  # one item failed; the session is fine


def test_with_client_commits_each_item_owns_the_audio_between_its_commits():
    """Issue 20: speech that goes on after a commit starts the next utterance
    before the committed one's final is back; its text went to the committed
    (already completed) item, and the next item completed empty. The dialect
    alone, fed the core's events in that order, as pipecat's default
    (turn_detection null) meets them."""
    import json

    from gateway.core.events import Flushed, SessionUpdated, SpeechStarted, TranscriptFinal, TranscriptPartial
    from gateway.core.records import make_segment
    from gateway.frontdoors.dialect import Upgrade
    from gateway.frontdoors.openai import OpenAIRealtimeDialect

    dialect = dialect_of(OpenAIRealtimeDialect, Upgrade("/v1/realtime", query=(("intent", "transcription"),)))
    options = dict(dialect.opened.options)
    sent: list[dict] = []

    def out(*events) -> None:
        for event in events:
            sent.extend(json.loads(frame) for frame in dialect.frames(event))

    def final(segment_id: int, start: float, end: float, text: str) -> TranscriptFinal:
        return TranscriptFinal(make_segment(segment_id, 0, text, (), None, (), 0.0, start, end), "en")

    dialect.commands(json.dumps({"type": "session.update", "session": session_update({"type": "audio/pcm", "rate": 24000}, None)}))
    out(SessionUpdated({**options, "model": "whisper-1", "language": "en", "prompt": None}))
    dialect.commands(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0\0" * 2400).decode()}))
    out(SpeechStarted(0, 0.3), TranscriptPartial(0, 0.3, 1.9, "Hello there", "Hello"))
    dialect.commands(json.dumps({"type": "input_audio_buffer.commit"}))  # mid-utterance, at 2.0 s
    # The caller goes on speaking: the next utterance starts before the first's final is back.
    out(SpeechStarted(1, 2.1), TranscriptPartial(1, 2.1, 3.0, "How are", "How"))
    out(final(0, 0.3, 2.0, " Hello there."), Flushed(0))
    out(TranscriptPartial(1, 2.1, 3.8, "How are you", "How are"))
    dialect.commands(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0\0" * 2400).decode()}))
    dialect.commands(json.dumps({"type": "input_audio_buffer.commit"}))  # at 3.9 s
    out(final(1, 2.1, 3.9, " How are you?"), Flushed(1))

    completed = [m for m in sent if m["type"].endswith("transcription.completed")]
    assert [c["transcript"] for c in completed] == ["Hello there.", "How are you?"]
    first, second = (c["item_id"] for c in completed)
    assert first != second
    committed = [m["item_id"] for m in sent if m["type"] == "input_audio_buffer.committed"]
    assert committed == [first, second]
    deltas = [(m["item_id"], m["delta"]) for m in sent if m["type"].endswith("transcription.delta")]
    assert "".join(d for i, d in deltas if i == first) == "Hello there."
    assert "".join(d for i, d in deltas if i == second) == "How are you?"
    done_at = sent.index(completed[0])
    assert all(m.get("item_id") != first for m in sent[done_at + 1 :]), "an event for an item after its completed"
    assert completed[1]["usage"]["seconds"] > 0


def test_only_transcription_sessions_open_and_the_audio_is_24k_pcm16():
    from gateway.frontdoors.dialect import Opening, Refusal, Upgrade
    from gateway.frontdoors.openai import OpenAIRealtimeDialect

    # The openai SDK: realtime.connect(extra_query={"intent": "transcription"}), Authorization: Bearer.
    upgrade = Upgrade("/v1/realtime", query=(("intent", "transcription"),), headers={"authorization": "Bearer sk-1"})
    opening = OpenAIRealtimeDialect.opening(upgrade)
    assert isinstance(opening, Opening) and opening.api_key == "sk-1"
    assert dict(opening.options) == {"sample_rate": 24000, "encoding": "pcm_s16le"}
    refusal = OpenAIRealtimeDialect.opening(Upgrade("/v1/realtime", query=(("model", "gpt-realtime"),)))
    assert isinstance(refusal, Refusal) and refusal.status is None and "intent=transcription" in refusal.message


def test_the_sdks_client_events_are_commands():
    import json

    import pytest

    from gateway.core.commands import Audio, Configure, Flush
    from gateway.core.errors import ProtocolError
    from gateway.frontdoors.dialect import Upgrade
    from gateway.frontdoors.openai import OpenAIRealtimeDialect

    dialect = dialect_of(OpenAIRealtimeDialect, Upgrade("/v1/realtime", query=(("intent", "transcription"),)))
    pcm = b"\x01\x00" * 240
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    assert dialect.commands(json.dumps(append)) == [Audio(pcm)]
    assert dialect.commands(json.dumps({"type": "input_audio_buffer.commit"})) == [Flush()]
    with pytest.raises(ProtocolError) as empty:
        dialect.commands(json.dumps({"type": "input_audio_buffer.commit"}))  # nothing appended since
    assert empty.value.code == "input_audio_buffer_commit_empty"
    [configure] = dialect.commands(json.dumps({"type": "session.update", "session": session_update({"type": "audio/pcm", "rate": 24000}, None)}))
    assert isinstance(configure, Configure) and configure.changes["language"] == "en"
    with pytest.raises(ProtocolError, match="binary"):
        dialect.commands(pcm)
    with pytest.raises(ProtocolError, match="not served"):
        dialect.commands(json.dumps({"type": "response.create"}))


def test_the_diarize_extension_asks_for_speakers_and_a_bad_value_is_refused():
    import pytest

    from gateway.core.errors import ProtocolError
    from gateway.frontdoors.openai.config import TurnConfig, read_update

    asked = read_update(session_update({"type": "audio/pcm"}, None, diarize=True), False, TurnConfig())
    assert asked.changes["diarize"] is True
    # the diarizing model's name is read by the core's option parser, at every door
    named = read_update(session_update({"type": "audio/pcm"}, None, model="gpt-4o-transcribe-diarize"), False, TurnConfig())
    assert named.changes["model"] == "gpt-4o-transcribe-diarize" and "diarize" not in named.changes
    with pytest.raises(ProtocolError, match="transcription.diarize"):
        read_update(session_update({"type": "audio/pcm"}, None, diarize="sometimes"), False, TurnConfig())


def test_a_completed_item_carries_the_speaker_that_said_most_and_each_word_its_own():
    import dataclasses
    import json

    from gateway.core.events import SpeechStarted, TranscriptFinal
    from gateway.core.records import make_segment
    from gateway.frontdoors.dialect import Upgrade
    from gateway.frontdoors.openai import OpenAIRealtimeDialect
    from gateway.inference.records import Word

    dialect = dialect_of(OpenAIRealtimeDialect, Upgrade("/v1/realtime", query=(("intent", "transcription"),)))
    words = (Word(" Yes.", 0.1, 0.4, 0.9), Word(" No,", 0.6, 0.9, 0.9), Word(" never.", 0.9, 1.3, 0.9))
    segment = make_segment(0, 0, " Yes. No, never.", (), None, words, 0.0, 0.1, 1.3)
    final = TranscriptFinal(dataclasses.replace(segment, speaker="B", word_speakers=("A", "B", "B")), "en")
    sent = [json.loads(f) for e in (SpeechStarted(0, 0.1), final) for f in dialect.frames(e)]
    [completed] = [m for m in sent if m["type"] == "conversation.item.input_audio_transcription.completed"]
    assert completed["speaker"] == "B" and [w["speaker"] for w in completed["words"]] == ["A", "B", "B"]
    plain = TranscriptFinal(make_segment(1, 0, " Hi.", (), None, words[:1], 0.0, 2.0, 2.5), "en")
    sent = [json.loads(f) for e in (SpeechStarted(1, 2.0), plain) for f in dialect.frames(e)]
    [completed] = [m for m in sent if m["type"] == "conversation.item.input_audio_transcription.completed"]
    assert "speaker" not in completed and "speaker" not in completed["words"][0]


def test_the_redact_extension_asks_for_kinds_and_a_bad_value_is_refused():
    import pytest

    from gateway.core.errors import ProtocolError
    from gateway.frontdoors.openai.config import TurnConfig, read_update

    asked = read_update(session_update({"type": "audio/pcm"}, None, redact=["pci", "ssn"]), False, TurnConfig())
    assert asked.changes["redact"] == ["pci", "ssn"]
    with pytest.raises(ProtocolError, match="transcription.redact"):
        read_update(session_update({"type": "audio/pcm"}, None, redact=True), False, TurnConfig())
