"""Hostile values at every door: an error or a refusal, never an exception.

Each dialect is fed arbitrary JSON values (and arbitrary query strings) for
every field it reads, through to the core session, as the runner would:
the dialect's ``Opening`` and ``parse_options`` and a ``StreamSession`` at the
opening (``opening.open_door``), ``dialect.commands(frame)`` then ``session.handle`` for each frame,
then ``dialect.frames(event)`` for what comes out. The only exception
allowed is ``ProtocolError`` (which the runner answers with the door's error
and, at the opening, a refusal). Model-free: the registry resolves names
without loading anything, and no audio long enough to decode is sent.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.core.commands import Invalid
from gateway.core.errors import ProtocolError
from gateway.core.options import OPTION_KEYS
from gateway.core.session import StreamSession
from gateway.frontdoors.assemblyai import AssemblyAIDialect
from gateway.frontdoors.deepgram import DeepgramDialect
from gateway.frontdoors.dialect import Dialect, Refusal, Upgrade
from gateway.frontdoors.native import NativeDialect
from gateway.frontdoors.openai import OpenAIRealtimeDialect
from gateway.frontdoors.twilio import TwilioDialect

from .opening import open_door

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
query_values = st.text(max_size=12) | st.sampled_from(["1", "2", "0", "-1", "²", "true", "false", "1e400", "nan", "[1]", '["a"]', "[[[]]]", "16000", "8000"])


def values(*plausible: Any) -> st.SearchStrategy[Any]:
    """Any JSON value, or one of the plausible ones (which reach deeper code)."""
    return json_values | st.sampled_from(plausible) if plausible else json_values


def fields(spec: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=spec)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def opened(door: type[Dialect], upgrade: Upgrade, in_band: list[str] | tuple[str, ...] = ()) -> tuple[Dialect, StreamSession] | None:
    """The opening as ``StreamDoors.open`` does it; None when it is refused."""
    result = open_door(door, upgrade, in_band=in_band)
    return None if isinstance(result, Refusal) else result


def converse(dialect: Dialect, session: StreamSession, frames: list[str | bytes]) -> None:
    """Frames through the dialect into the session, events back out, as the runner does."""
    for frame in frames:
        try:
            commands = dialect.commands(frame)
        except ProtocolError as exc:
            commands = [Invalid(exc)]
        for command in commands:
            if session.state.value == "closed":
                break
            session.handle(command)
        session.take_actions()
        for event in session.take_events():
            for out in dialect.frames(event):
                assert isinstance(out, (str, bytes))
            dialect.close_code(event)


def messages(kind: st.SearchStrategy[Any], body: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[str]]:
    one = st.builds(lambda t, b: json.dumps({"type": t, **b}), kind, body)
    return st.lists(one | st.text(max_size=20), max_size=4)


# -- the native door --------------------------------------------------------------------
native_query = fields({key: query_values for key in (*OPTION_KEYS, "session_id", "webhook_url")})
native_session = fields({key: values("en", 16000, "pcm_s16le", 1, 2, "0,1") for key in OPTION_KEYS})


@PROPERTY
@given(native_query, messages(values("session.update", "flush", "end"), fields({"session": native_session | json_values})))
def test_native_door(query, frames):
    door = opened(NativeDialect, Upgrade("/v0/audio/stream", tuple(query.items())))
    if door is not None:
        converse(*door, frames)


# -- Deepgram ---------------------------------------------------------------------------
DEEPGRAM_QUERY = ("model", "language", "encoding", "sample_rate", "channels", "multichannel", "endpointing",
                  "utterance_end_ms", "interim_results", "vad_events", "keyterm", "keywords")


@PROPERTY
@example({"channels": "²", "multichannel": "true"}, [])  # "²".isdigit() is true
@example({"utterance_end_ms": "1e400", "endpointing": "nan"}, [json.dumps({"type": "Configure", "keyterms": [[1]]})])
@given(
    fields({key: query_values for key in DEEPGRAM_QUERY}),
    messages(values("KeepAlive", "Finalize", "CloseStream", "Configure"), fields({"keyterms": values(["a", "b"], [])})),
)
def test_deepgram_door(query, frames):
    door = opened(DeepgramDialect, Upgrade("/v1/listen", tuple(query.items())))
    if door is not None:
        converse(*door, frames)


# -- AssemblyAI -------------------------------------------------------------------------
TURNS = {
    "min_turn_silence": values(400, "400"), "max_turn_silence": values(1200), "min_end_of_turn_silence_when_confident": values(160),
    "keyterms_prompt": values(["a"], '["a", "b"]', '[[["x"]]]', "[" * 2000), "prompt": values("hello"), "format_turns": values(True, "true"),
}


@PROPERTY
@example({"keyterms_prompt": "[" * 5000}, [])
@example({"prompt": "x"}, [json.dumps({"type": "UpdateConfiguration", "keyterms_prompt": "[" * 5000, "prompt": 7})])
@example({}, [json.dumps({"type": "UpdateConfiguration", "prompt": {"a": 1}, "min_turn_silence": [1]})])
@given(
    fields({key: query_values for key in ("sample_rate", "encoding", "language_code", "format_turns", "formatted_finals", *TURNS)}),
    messages(values("KeepAlive", "ForceEndpoint", "UpdateConfiguration", "Terminate"), fields(TURNS)),
)
def test_assemblyai_door(query, frames):
    door = opened(AssemblyAIDialect, Upgrade("/v3/ws", tuple(query.items())))
    if door is not None:
        converse(*door, frames)


def test_assemblyai_nested_keyterms_are_an_error_not_a_crash():
    deep = "[" * 100_000 + "]" * 100_000
    assert opened(AssemblyAIDialect, Upgrade("/v3/ws", (("keyterms_prompt", deep),))) is None
    door = opened(AssemblyAIDialect, Upgrade("/v3/ws"))
    assert door is not None
    converse(*door, [json.dumps({"type": "UpdateConfiguration", "keyterms_prompt": deep})])


# -- OpenAI Realtime --------------------------------------------------------------------
transcription = fields({
    "model": values("gpt-4o-transcribe", "whisper-1"), "language": values("en"), "languages": values(["en"]),
    "prompt": values("names"), "keywords": values(["a", "b"]),
})
turn_detection = values(None) | fields({
    "type": values("server_vad", "semantic_vad"), "threshold": values(0.5), "silence_duration_ms": values(500),
    "prefix_padding_ms": values(300), "eagerness": values("low", "auto"),
})
audio_input = fields({
    "format": values() | fields({"type": values("audio/pcm", "audio/pcmu"), "rate": values(24000)}),
    "transcription": values() | transcription, "turn_detection": turn_detection, "noise_reduction": values(None),
})
ga_session = fields({"type": values("transcription"), "audio": values() | fields({"input": values() | audio_input})})
beta_session = fields({
    "input_audio_format": values("pcm16", "g711_ulaw"), "input_audio_transcription": values() | transcription,
    "turn_detection": turn_detection, "input_audio_noise_reduction": values(None),
})
openai_frames = st.lists(
    st.builds(lambda s: json.dumps({"type": "session.update", "session": s}), ga_session | json_values)
    | st.builds(lambda s: json.dumps({"type": "transcription_session.update", "session": s}), beta_session | json_values)
    | st.builds(lambda a: json.dumps({"type": "input_audio_buffer.append", "audio": a}), values(base64.b64encode(b"\0\0" * 240).decode()))
    | st.builds(lambda t, e: json.dumps({"type": t, "event_id": e}), values("input_audio_buffer.commit", "input_audio_buffer.clear"), json_values)
    | st.text(max_size=20),
    max_size=5,
)


@PROPERTY
@example({}, [json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"type": ["audio/pcm"]}}}}})])
@example({}, [json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": ["low"]}}}}})])
@example({}, [json.dumps({"type": "session.update", "session": {"audio": {"input": {"transcription": {"prompt": 5, "keywords": ["a"]}}}}})])
@example({}, [json.dumps({"type": "transcription_session.update", "session": {"input_audio_format": ["pcm16"]}})])
@given(fields({"intent": query_values | st.just("transcription"), "model": query_values}), openai_frames)
def test_openai_door(query, frames):
    door = opened(OpenAIRealtimeDialect, Upgrade("/v1/realtime", (("intent", "transcription"), *query.items())))
    if door is not None:
        converse(*door, frames)


# -- Twilio -----------------------------------------------------------------------------
start = fields({
    "callSid": values("CA" + "0" * 32), "tracks": values(["inbound"], ["inbound", "outbound"], 5),
    "mediaFormat": values({"encoding": "audio/x-mulaw", "sampleRate": 8000}, {"encoding": "audio/x-mulaw", "sampleRate": "abc"}),
    "customParameters": values({"language": "en"}, {"endpoint_ms": "300"}),
})
media = fields({
    "track": values("inbound", "outbound"), "payload": values(base64.b64encode(b"\xff" * 160).decode()),
    "timestamp": values(0, "20", 1e30, float("inf"), -5),
})
twilio_frames = st.lists(
    st.builds(lambda m: json.dumps({"event": "media", "media": m}), media | json_values)
    | st.builds(lambda d: json.dumps({"event": "dtmf", "dtmf": d}), fields({"digit": values("1"), "track": values("inbound_track")}) | json_values)
    | st.builds(lambda e: json.dumps({"event": e}), values("stop", "mark"))
    | st.text(max_size=20),
    max_size=5,
)


@PROPERTY
@example({"tracks": ["inbound"]}, [json.dumps({"event": "media", "media": {"track": "inbound", "payload": "", "timestamp": float("inf")}})])
@example({"tracks": ["inbound"]}, [json.dumps({"event": "media", "media": {"track": "inbound", "payload": "", "timestamp": "9" * 5000}})])
@example({"mediaFormat": "mulaw"}, [])
@example({"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "abc"}}, [])
@example({"tracks": 5}, [])
@example({"customParameters": {"endpoint_ms": ["1"], "prompt": {"x": 1}}}, [json.dumps({"event": "dtmf", "dtmf": {"digit": ["1"]}})])
@given(start | json_values, twilio_frames)
def test_twilio_door(start_message, frames):
    opening = [json.dumps({"event": "connected"}), json.dumps({"event": "start", "start": start_message})]
    door = opened(TwilioDialect, Upgrade("/v0/telephony/twilio"), opening)
    if door is not None:
        converse(*door, frames)


@pytest.mark.parametrize("frame", ["[" * 100_000, '{"type": ' * 50_000, "\ud800", "null", "[]", '"text"', "1e999"])
@pytest.mark.parametrize("door", [NativeDialect, DeepgramDialect, AssemblyAIDialect, OpenAIRealtimeDialect])
def test_frames_that_are_not_messages_are_errors(door, frame):
    opened_door = opened(door, Upgrade("/", (("intent", "transcription"),) if door is OpenAIRealtimeDialect else ()))
    assert opened_door is not None
    converse(*opened_door, [frame])
