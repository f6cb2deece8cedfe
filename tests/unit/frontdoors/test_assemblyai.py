"""The AssemblyAI dialect, byte-driven: the SDK's frames in, core commands out; core events in, AssemblyAI frames out."""

from __future__ import annotations

import json

import pytest


def test_pipecat_asks_for_formatted_turns_by_their_earlier_name():
    from gateway.frontdoors.assemblyai import AssemblyAIDialect
    from gateway.frontdoors.dialect import Upgrade

    for query, formatted in ((("formatted_finals", "true"),), True), ((("format_turns", "False"),), False), ((), False):
        dialect = AssemblyAIDialect(Upgrade("/v3/ws", query=query))
        dialect.options()
        assert dialect.format_turns is formatted, query


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
    dialect = AssemblyAIDialect(Upgrade("/v3/ws", query=query))
    dialect.options()
    words = (Word(" Hello,", 0.1, 0.5, 0.9), Word(" world.", 0.6, 1.0, 0.9))
    final = TranscriptFinal(make_segment(0, 0, " Hello, world.", (), None, words, 0.0, 0.1, 1.0), "en", end_reason="endpoint")
    sent = [json.loads(f) for e in (SpeechStarted(0, 0.1), TranscriptPartial(0, 0.1, 0.8, "Hello world", "Hello"), final) for f in dialect.frames(e)]
    turn_ends = [m for m in sent if m["type"] == "Turn" and m["end_of_turn"]]
    assert ["formatted" if m["turn_is_formatted"] else "plain" for m in turn_ends] == ends
    assert turn_ends[0]["transcript"] == ("Hello, world." if ends == ["formatted"] else "hello world")
