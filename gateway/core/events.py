"""What a session tells its client: small immutable records, one ``to_dict``.

These are the native wire events (docs/protocol.md section 1); other front
doors translate them into their own messages. Serialising to JSON is the
front door's business, not the core's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .records import Segment
from .voices import SpeakerSummary


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


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
    channel: int = 0  # which channel of the stream (0-based)
    label: str = "0"  # that channel's name


@dataclass(frozen=True)
class TranscriptPartial(Event):
    type: ClassVar[str] = "transcript.partial"
    segment_id: int
    start: float
    end: float
    text: str
    stable_text: str
    channel: int = 0
    label: str = "0"
    speaker: str | None = None  # diarize: who the speech so far sounds like (its final may correct it)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.speaker is None:
            del out["speaker"]
        return out


@dataclass(frozen=True)
class TranscriptFinal(Event):
    type: ClassVar[str] = "transcript.final"
    segment: Segment
    language: str | None
    end_reason: str = "endpoint"  # "endpoint", "max_length" (a forced cut) or "flush" (flush, end, close)
    ended_at: float = 0.0  # stream time at which the utterance was closed
    channel: int = 0
    label: str = "0"

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"segment": self.segment.to_dict()}


@dataclass(frozen=True)
class Signalled(Event):
    """A ``Signal`` (a DTMF digit) at stream time ``at``, on ``channel``."""

    type: ClassVar[str] = "signal"
    kind: str
    value: str
    at: float
    channel: int = 0


@dataclass(frozen=True)
class Flushed(Event):
    """Every utterance a ``Flush`` ended has its final out (``segment_id``:
    the last of them; None: nothing was in progress). Front doors whose
    clients wait for a flush to complete (a Deepgram ``Finalize``, an OpenAI
    ``commit``) need it; the native door sends nothing for it."""

    type: ClassVar[str] = "flushed"
    segment_id: int | None


@dataclass(frozen=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False
    segment_id: int | None = None  # the utterance it concerns (decode_failed), if one

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.segment_id is None:
            del out["segment_id"]
        return out


@dataclass(frozen=True)
class SessionClosed(Event):
    type: ClassVar[str] = "session.closed"
    duration: float
    text: str  # every final, in order of start time
    segments: int
    language: str | None
    channels: tuple[ChannelSummary, ...] = ()
    speakers: tuple[SpeakerSummary, ...] | None = None  # diarize: each speaker's talk time and finals

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict() | {"channels": [c.to_dict() for c in self.channels]}
        if self.speakers is None:
            del out["speakers"]
        else:
            out["speakers"] = [s.to_dict() for s in self.speakers]
        return out


@dataclass(frozen=True)
class ChannelSummary:
    """One channel's part of a closed session."""

    channel: int
    label: str
    text: str
    segments: int
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "label": self.label, "text": self.text, "segments": self.segments, "duration": _t(self.duration)}
