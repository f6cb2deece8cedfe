"""The Twilio Media Streams dialect, byte-driven: Twilio's documented messages in, core commands out."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from gateway.core.commands import Audio, End, Signal
from gateway.core.errors import ProtocolError
from gateway.core.events import SessionClosed
from gateway.frontdoors.dialect import Opening, Refusal, Upgrade
from gateway.frontdoors.twilio import TrackAligner, TwilioDialect, TwilioSettings, twilio_signature

from .opening import dialect_of


def test_the_aligner_places_chunks_by_timestamp():
    aligner = TrackAligner(["inbound", "outbound"], max_lag_ms=100)
    a, b = bytes([1]) * 160, bytes([2]) * 160
    assert aligner.add("inbound", 0, a) == b""  # outbound has nothing yet
    out = aligner.add("outbound", 0, b)
    assert out == bytes([1, 2]) * 160
    assert aligner.add("outbound", 0, b) == b""  # a duplicate: already sent
    aligner.add("inbound", 40, a)  # inbound skipped 20 ms: silence there
    out = aligner.add("outbound", 20, b) + aligner.add("outbound", 40, b)
    frames = np.frombuffer(out, np.uint8).reshape(-1, 2)
    assert list(frames[:160, 0]) == [0xFF] * 160 and list(frames[160:, 0]) == [1] * 160
    # a silent party does not hold the other up: past max_lag, it is padded
    for t in range(60, 400, 20):
        aligner.add("inbound", t, a)
    assert aligner.sent >= 400 * 8 - 100 * 8
    assert len(aligner.flush()) % 2 == 0


def test_the_aligner_rebases_a_track_whose_clock_jumps():
    aligner = TrackAligner(["inbound"], max_gap_ms=2000)
    chunk = bytes([1]) * 160
    out = b"".join(aligner.add("inbound", t, chunk) for t in (0, 20, 40))
    out += aligner.add("inbound", 1500, chunk)  # a real gap: 1.44 s of silence, then the chunk
    assert len(out) == 1520 * 8 and out.count(0xFF) == 1440 * 8
    out = aligner.add("inbound", 36_001_520, chunk) + aligner.add("inbound", 36_001_540, chunk)  # +10 h: re-based
    assert out == chunk * 2 and aligner.rebased == 1
    assert aligner.add("inbound", 36_001_560, chunk) == chunk  # later chunks follow by their timestamps
    assert aligner.add("inbound", 60, chunk) == chunk and aligner.rebased == 2  # back 10 h: re-based again


# -- the opening and the call, byte by byte -----------------------------------------------
TOKEN, PUBLIC = "twilio-auth-token", "https://gateway.example.com"
CALL = "CA" + "0123456789abcdef" * 2
START = {
    "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "1" * 32,
    "start": {
        "accountSid": "AC" + "2" * 32, "streamSid": "MZ" + "1" * 32, "callSid": CALL, "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"api_key": "k1", "language": "en", "inbound_label": "caller"},
    },
}
CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def media(track: str, timestamp: str, payload: bytes = b"\xff" * 160) -> str:
    body = {"track": track, "chunk": "1", "timestamp": timestamp, "payload": base64.b64encode(payload).decode()}
    return json.dumps({"event": "media", "sequenceNumber": "2", "media": body, "streamSid": START["streamSid"]})


def test_an_unsigned_upgrade_is_refused_before_anything_else_when_the_server_has_a_token():
    settings = TwilioSettings(TOKEN, PUBLIC)
    forged = TwilioDialect.opening(Upgrade("/v0/telephony/twilio", headers={"x-twilio-signature": "forged"}), settings)
    assert isinstance(forged, Refusal) and forged.unauthorized and forged.status == 403 and forged.code == "bad_signature"
    assert forged.body is None  # told in the gateway's one error body
    signature = twilio_signature(TOKEN, "wss://gateway.example.com/v0/telephony/twilio")  # Twilio signs the wss:// URL
    signed = TwilioDialect.opening(Upgrade("/v0/telephony/twilio", headers={"x-twilio-signature": signature}), settings)
    assert isinstance(signed, Opening) and signed.signed and signed.in_band
    unsigned = TwilioDialect.opening(Upgrade("/v0/telephony/twilio"))
    assert isinstance(unsigned, Opening) and not unsigned.signed and unsigned.in_band
    with pytest.raises(ValueError, match="needs --public-url"):
        TwilioSettings(TOKEN, None)


def test_connected_then_start_complete_the_opening():
    upgraded = TwilioDialect.opening(Upgrade("/v0/telephony/twilio"))
    assert isinstance(upgraded, Opening)
    assert TwilioDialect.opening_frame(json.dumps(CONNECTED), upgraded) is None
    opening = TwilioDialect.opening_frame(json.dumps(START), upgraded)
    assert isinstance(opening, Opening) and not opening.in_band
    assert opening.session_id == CALL and opening.api_key == "k1"
    assert dict(opening.options) == {
        "language": "en", "sample_rate": 8000, "encoding": "mulaw", "channels": 2, "channel_labels": "caller,outbound",
    }
    with pytest.raises(ProtocolError, match="connected and start"):
        TwilioDialect.opening_frame(json.dumps({"event": "media"}), upgraded)
    wrong_rate = {**START, "start": {**START["start"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 16000}}}
    with pytest.raises(ProtocolError, match="8000 Hz"):
        TwilioDialect.opening_frame(json.dumps(wrong_rate), upgraded)


def test_the_calls_messages_are_commands():
    dialect = dialect_of(TwilioDialect, Upgrade("/v0/telephony/twilio"), in_band=[json.dumps(CONNECTED), json.dumps(START)])
    # Both tracks' first 20 ms: one interleaved stereo chunk once both are in.
    assert dialect.commands(media("inbound", "0")) == []
    [audio] = dialect.commands(media("outbound", "0"))
    assert isinstance(audio, Audio) and len(audio.data) == 2 * 160
    dtmf = {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "7"}}
    assert dialect.commands(json.dumps(dtmf)) == [Signal("dtmf", "7", 0)]
    assert dialect.commands(json.dumps({"event": "mark", "mark": {"name": "x"}})) == []
    with pytest.raises(ProtocolError, match="did not announce"):
        dialect.commands(media("video", "20"))
    with pytest.raises(ProtocolError, match="base64"):
        dialect.commands(json.dumps({"event": "media", "media": {"track": "inbound", "payload": "%%%", "timestamp": "20"}}))
    assert dialect.commands(json.dumps({"event": "stop", "stop": {"callSid": CALL}}))[-1] == End()
    assert dialect.frames(SessionClosed(1.0, "", 0, None)) == []  # one-way: Twilio reads nothing
