"""The OpenAI Realtime dialect, byte-driven: the SDK's frames in, core commands out; core events in, OpenAI events out."""

from __future__ import annotations

import base64


def session_update(fmt: dict, turn_detection, **transcription) -> dict:
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

    dialect = OpenAIRealtimeDialect(Upgrade("/v1/realtime", query=(("intent", "transcription"),)))
    dialect.options()

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

    dialect = OpenAIRealtimeDialect(Upgrade("/v1/realtime", query=(("intent", "transcription"),)))
    options = dict(dialect.options())
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
