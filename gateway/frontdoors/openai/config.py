"""An OpenAI transcription session's configuration: what a ``session.update``
asks of the core, and the session object it is answered with.

Two spellings are read: the GA ``session.update`` (``session.audio.input``)
and the beta ``transcription_session.update`` some clients still send
(LiveKit's STT up to 1.x: ``input_audio_format``, ``input_audio_transcription``).
What only this door keeps (turn detection off or on, noise reduction) is a
``TurnConfig``; the rest are the core's session options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.core.errors import ProtocolError
from gateway.core.options import LIMITS

from .. import wire

# Audio formats: the OpenAI name -> (sample rate, the core's encoding).
FORMATS = {"audio/pcm": (24000, "pcm_s16le"), "audio/pcmu": (8000, "mulaw"), "audio/pcma": (8000, "alaw")}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
# semantic_vad's eagerness -> the endpoint (ms of trailing silence).
EAGERNESS_ENDPOINT_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}
DEFAULT_VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


@dataclass(frozen=True)
class TurnConfig:
    """This door's own part of a session."""

    turn_detection: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_VAD))
    noise_reduction: Any = None  # accepted and echoed, not applied (docs/doors/openai.md)

    @property
    def manual(self) -> bool:
        """turn_detection null: the client commits."""
        return self.turn_detection is None


@dataclass(frozen=True)
class Update:
    """A session update read: the core options to change, this door's part,
    and which spelling the answer must use."""

    changes: dict[str, Any]
    turns: TurnConfig
    beta: bool


INVALID_VALUE = wire.Problem("invalid_value", False)  # OpenAI's code for a bad field; the session goes on


def _aggressiveness(threshold: Any) -> int:
    """server_vad's threshold (0..1, higher: louder speech needed) -> webrtcvad's mode 0..3."""
    value = wire.number(threshold, "turn_detection.threshold", INVALID_VALUE, low=0.0, high=1.0)
    return 0 if value < 0.3 else 1 if value < 0.45 else 2 if value < 0.65 else 3


def _clamp(name: str, ms: Any, option: str) -> int:
    """A turn_detection duration, brought within the gateway's bounds for ``option``."""
    return wire.milliseconds(ms, f"turn_detection.{name}", LIMITS[option], INVALID_VALUE)


def _choice(value: Any, name: str, allowed: Any) -> str:
    """One of ``allowed``'s keys (a string), or the error naming them."""
    if not isinstance(value, str) or value not in allowed:
        raise INVALID_VALUE(f"{name} must be one of {', '.join(allowed)}, got {wire.shown(value)}")
    return value


def read_update(session: Any, beta: bool, current: TurnConfig) -> Update:
    """A ``session.update`` (or, ``beta``, a ``transcription_session.update``)."""
    if not isinstance(session, dict):
        raise ProtocolError("invalid_request_error", "session.update needs a 'session' object")
    if beta:
        beta_format = session.get("input_audio_format")
        fmt: Any = {"type": BETA_FORMATS[_choice(beta_format, "input_audio_format", BETA_FORMATS)]} if beta_format else {}
        transcription = session.get("input_audio_transcription") or {}
        audio_in = {k: session[k] for k in ("turn_detection",) if k in session}
        if "input_audio_noise_reduction" in session:
            audio_in["noise_reduction"] = session["input_audio_noise_reduction"]
    else:
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise ProtocolError("invalid_request_error", f"session.type {kind!r} is not served: this is a transcription session")
        audio = session.get("audio") or {}
        audio_in = (audio.get("input") if isinstance(audio, dict) else None) or {}
        if not isinstance(audio_in, dict):
            raise ProtocolError("invalid_request_error", "session.audio.input must be an object")
        fmt = audio_in.get("format")
        transcription = audio_in.get("transcription") or {}
    changes: dict[str, Any] = {}
    if isinstance(fmt, dict) and fmt.get("type"):
        rate, encoding = FORMATS[_choice(fmt["type"], "audio format", FORMATS)]
        changes["sample_rate"], changes["encoding"] = fmt.get("rate") or rate, encoding
    if isinstance(transcription, dict):
        changes |= _transcription(transcription)
    turn = current.turn_detection
    if "turn_detection" in audio_in:
        turn = _turn_detection(audio_in["turn_detection"], changes)
    turns = TurnConfig(turn, audio_in.get("noise_reduction", current.noise_reduction))
    return Update(changes, turns, beta)


def _transcription(transcription: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    model = transcription.get("model")
    if model:
        changes["model"] = model  # OpenAI's names resolve to the default model; gpt-4o-transcribe-diarize diarizes
    if transcription.get("diarize") is not None:  # an extension: speaker labels with any model
        changes["diarize"] = wire.flag(transcription["diarize"], "transcription.diarize", False, INVALID_VALUE)
    if transcription.get("redact") is not None:  # an extension: kinds never sent (docs/protocol.md section 10)
        redact = transcription["redact"]
        if not isinstance(redact, (str, list)):
            raise INVALID_VALUE(f"transcription.redact must name kinds, comma-separated or a list; got {wire.shown(redact)}")
        changes["redact"] = redact
    languages = transcription.get("languages")
    language = transcription.get("language") or (languages[0] if isinstance(languages, list) and len(languages) == 1 else None)
    if language:
        changes["language"] = language
    prompt = wire.text(transcription.get("prompt"), "transcription.prompt", INVALID_VALUE) or ""
    keywords = transcription.get("keywords")
    if keywords:
        prompt = " ".join(p for p in (prompt, ", ".join(wire.words(keywords, "transcription.keywords", INVALID_VALUE))) if p)
    if prompt:
        changes["prompt"] = prompt
    return changes


def _turn_detection(turn: Any, changes: dict[str, Any]) -> dict[str, Any] | None:
    """The effective turn detection (None: the client commits); its VAD settings go into ``changes``."""
    if turn is None:
        return None
    if not isinstance(turn, dict) or turn.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
        raise ProtocolError("invalid_value", "turn_detection must be null or of type server_vad or semantic_vad")
    effective = dict(DEFAULT_VAD) | {k: v for k, v in turn.items() if v is not None}
    if effective["type"] == "semantic_vad":
        eagerness = _choice(turn.get("eagerness") or "auto", "turn_detection.eagerness", EAGERNESS_ENDPOINT_MS)
        changes["endpoint_ms"] = EAGERNESS_ENDPOINT_MS[eagerness]
    else:
        changes["endpoint_ms"] = _clamp("silence_duration_ms", effective["silence_duration_ms"], "endpoint_ms")
        changes["vad_aggressiveness"] = _aggressiveness(effective["threshold"])
        changes["pre_roll_ms"] = _clamp("prefix_padding_ms", effective["prefix_padding_ms"], "pre_roll_ms")
    return effective


def session_object(session_id: str, options: dict[str, Any], turns: TurnConfig) -> dict[str, Any]:
    """The whole effective session, as ``session.created`` and ``session.updated`` carry it."""
    encoding = options["encoding"]
    fmt: dict[str, Any] = {"type": "audio/pcma" if encoding == "alaw" else "audio/pcmu" if encoding == "mulaw" else "audio/pcm"}
    if encoding == "pcm_s16le":
        fmt["rate"] = options["sample_rate"]
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {
                    "model": options["model"], "language": options["language"], "prompt": options["prompt"] or "",
                    **({"diarize": True} if options.get("diarize") else {}),
                },
                "turn_detection": turns.turn_detection,
                "noise_reduction": turns.noise_reduction,
            }
        },
        "include": [],
    }


def beta_session_object(session_id: str, options: dict[str, Any], turns: TurnConfig) -> dict[str, Any]:
    """The same, spelled as ``transcription_session.updated`` carries it."""
    ga = session_object(session_id, options, turns)["audio"]["input"]
    return {
        "id": session_id, "object": "realtime.transcription_session",
        "input_audio_format": {v: k for k, v in BETA_FORMATS.items()}[ga["format"]["type"]],
        "input_audio_transcription": ga["transcription"],
        "turn_detection": turns.turn_detection, "input_audio_noise_reduction": turns.noise_reduction, "include": [],
    }
