"""The wire contract (README "Streaming protocol"): records, built and serialised here.

Session options are one typed object parsed from query parameters or a
``session.update`` message; server events are small immutable records with
one ``to_dict``. The batch API's verbose_json segments use the same
``Segment`` and ``Word`` records, so both front doors speak one schema.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
ENCODINGS = ("pcm_s16le", "pcm_f32le", "mulaw")
TASKS = ("transcribe", "translate")


class ProtocolError(Exception):
    """Bad input from a client, carried to it as an ``error`` event."""

    def __init__(self, code: str, message: str, fatal: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


# -- session options --------------------------------------------------------
@dataclass(frozen=True)
class SessionOptions:
    model: str = "whisper-1"
    language: str | None = None
    task: str = "transcribe"
    prompt: str | None = None
    sample_rate: int = 16000
    encoding: str = "pcm_s16le"
    interim_results: bool = True
    vad_aggressiveness: int = 2
    endpoint_ms: int = 500
    max_segment_s: float = 15.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


OPTION_KEYS = tuple(f.name for f in fields(SessionOptions))
LIMITS = {"endpoint_ms": (100, 5000), "max_segment_s": (2.0, 28.0), "vad_aggressiveness": (0, 3)}


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_config", message, fatal=True)


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise _invalid(f"{key} must be true or false, got {value!r}")


def _as_number(key: str, value: Any, kind: type) -> int | float:
    if isinstance(value, bool):
        raise _invalid(f"{key} must be a number, got {value!r}")
    try:
        number = kind(value)
        if kind is int and isinstance(value, float) and value != int(value):
            raise ValueError
    except (TypeError, ValueError):
        raise _invalid(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    low, high = LIMITS.get(key, (None, None))
    if low is not None and not low <= number <= high:
        raise _invalid(f"{key} must be between {low} and {high}, got {value!r}")
    return number


def parse_options(raw: Mapping[str, Any], base: SessionOptions, languages: set[str]) -> SessionOptions:
    """Apply client-given options over ``base``; refuse unknown keys and bad values.

    Model names are checked by the caller, which knows the registry.
    """
    unknown = sorted(set(raw) - set(OPTION_KEYS))
    if unknown:
        raise _invalid(
            f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(OPTION_KEYS)}"
        )
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("model", "prompt"):
            if value is not None and not isinstance(value, str):
                raise _invalid(f"{key} must be a string")
            changes[key] = value if key == "prompt" else (value or base.model)
        elif key == "language":
            if value in (None, "", "auto"):
                changes[key] = None
            elif not isinstance(value, str) or value.lower() not in languages:
                raise _invalid(
                    f"language must be an ISO-639-1 code Whisper knows (e.g. en, de, es) or omitted for auto-detection, got {value!r}"
                )
            else:
                changes[key] = value.lower()
        elif key == "task":
            if value not in TASKS:
                raise _invalid(f"task must be one of {', '.join(TASKS)}, got {value!r}")
            changes[key] = value
        elif key == "encoding":
            if value not in ENCODINGS:
                raise _invalid(f"encoding must be one of {', '.join(ENCODINGS)}, got {value!r}")
            changes[key] = value
        elif key == "sample_rate":
            rate = _as_number(key, value, int)
            if rate not in SAMPLE_RATES:
                raise _invalid(
                    f"sample_rate {value!r} is not supported; use one of {', '.join(map(str, SAMPLE_RATES))}"
                )
            changes[key] = rate
        elif key == "interim_results":
            changes[key] = _as_bool(key, value)
        elif key in ("vad_aggressiveness", "endpoint_ms"):
            changes[key] = _as_number(key, value, int)
        elif key == "max_segment_s":
            changes[key] = float(_as_number(key, value, float))
    return replace(base, **changes)


# -- records shared with the batch API ----------------------------------------
@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float

    def to_dict(self, probability: bool = True) -> dict[str, Any]:
        out = {"word": self.word, "start": _t(self.start), "end": _t(self.end)}
        if probability:
            out["probability"] = round(self.probability, 4)
        return out


def stream_words(words, offset: float, start: float, end: float) -> list[Word]:
    """Decoder words (times from ``offset``) in stream/file time, inside [start, end], monotonic."""
    out: list[Word] = []
    floor = start
    for w in words:
        s = min(max(offset + w.start, floor), end)
        e = min(max(offset + w.end, s), end)
        out.append(Word(w.word, s, e, w.probability))
        floor = s
    return out


@dataclass(frozen=True)
class Segment:
    """One verbose_json segment (OpenAI schema), plus words."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()

    def to_dict(self, words: bool = True, word_probability: bool = True) -> dict[str, Any]:
        out = {
            "id": self.id,
            "seek": self.seek,
            "start": _t(self.start),
            "end": _t(self.end),
            "text": self.text,
            "tokens": list(self.tokens),
            "temperature": self.temperature,
            "avg_logprob": round(self.avg_logprob, 4),
            "compression_ratio": round(self.compression_ratio, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
        }
        if words:
            out["words"] = [w.to_dict(word_probability) for w in self.words]
        return out


# -- server events ----------------------------------------------------------
@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``type`` first, times rounded to milliseconds."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = _t(value) if isinstance(value, float) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class SessionCreated(Event):
    type: ClassVar[str] = "session.created"
    session_id: str
    session: dict[str, Any]
    version: str


@dataclass(frozen=True)
class SessionUpdated(Event):
    type: ClassVar[str] = "session.updated"
    session: dict[str, Any]


@dataclass(frozen=True)
class SpeechStarted(Event):
    type: ClassVar[str] = "speech.started"
    segment_id: int
    start: float


@dataclass(frozen=True)
class TranscriptPartial(Event):
    type: ClassVar[str] = "transcript.partial"
    segment_id: int
    start: float
    end: float
    text: str
    stable_text: str


@dataclass(frozen=True)
class TranscriptFinal(Event):
    type: ClassVar[str] = "transcript.final"
    segment: Segment
    language: str | None
    end_reason: str = "endpoint"  # "endpoint", "max_length" (a forced cut) or "flush" (flush, end, close)
    ended_at: float = 0.0  # stream time at which the utterance was closed

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"segment": self.segment.to_dict()}


@dataclass(frozen=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False


@dataclass(frozen=True)
class SessionClosed(Event):
    type: ClassVar[str] = "session.closed"
    duration: float
    text: str
    segments: int
    language: str | None


# -- client messages --------------------------------------------------------
@dataclass(frozen=True)
class SessionUpdate:
    session: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class End:
    pass


CLIENT_MESSAGES = ("session.update", "flush", "end")


def parse_client_message(text: str) -> SessionUpdate | Flush | End:
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError(
            "invalid_message",
            "text frames must be JSON objects such as {\"type\": \"flush\"}; send audio as binary frames",
        ) from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("invalid_message", 'a message must be a JSON object with a "type" string')
    kind = message["type"]
    if kind == "flush":
        return Flush()
    if kind == "end":
        return End()
    if kind == "session.update":
        session = message.get("session", {})
        if not isinstance(session, dict):
            raise ProtocolError("invalid_message", '"session" must be an object of session options')
        return SessionUpdate(session)
    raise ProtocolError(
        "invalid_message",
        f"unknown message type {kind!r}; known types: {', '.join(CLIENT_MESSAGES)}",
    )
