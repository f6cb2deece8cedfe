"""What goes into a session, and the engine work that comes out of it.

Commands are a session's only inputs: what a client said (a front door
turns its frames into these), what the engine answered, and what the server
decided. Engine actions are the session's requests to the engine, kept in
the order the session made them; a runner that carries them out in that
order never cancels or promotes a request before submitting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.inference.jobs import Job, VoiceWindows
from gateway.inference.records import Decoding

from .errors import ProtocolError


# -- from the client ---------------------------------------------------------
@dataclass(frozen=True)
class Audio:
    """Audio in the session's encoding and sample rate, a whole number of samples."""

    data: bytes


@dataclass(frozen=True)
class Configure:
    """Change session options (core names; values as a query string or JSON gives them)."""

    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Flush:
    """Finalise the utterance in progress now."""


@dataclass(frozen=True)
class End:
    """No more audio: finalise everything, then close."""


@dataclass(frozen=True)
class Signal:
    """Something the caller's line said besides audio (a DTMF digit): told to
    the session's followers, at the stream time it came."""

    kind: str  # "dtmf"
    value: str  # the digit
    channel: int = 0


@dataclass(frozen=True)
class Invalid:
    """A client frame its front door could not read: answered with an error."""

    error: ProtocolError


ClientCommand = Audio | Configure | Flush | End | Signal | Invalid


# -- from the transport and the server ------------------------------------------
@dataclass(frozen=True)
class ConnectionLost:
    """The client went away without ``End``: finalise what was received."""


@dataclass(frozen=True)
class Stop:
    """The server ends the stream (shutting down, a time limit): say why
    with a fatal error ``code``, then finalise like ``End``."""

    code: str  # "server_shutdown", "idle_timeout", "session_timeout"
    message: str


@dataclass(frozen=True)
class LoadReport:
    """The engine's state as the transport last saw it."""

    pressure: float  # 0 (idle) .. 1 (finals saturate the workers)
    final_decode_s: float = 0.0  # how long a final decode takes these days


# -- from the engine -------------------------------------------------------------
@dataclass(frozen=True)
class Decoded:
    request_id: int
    decoding: Decoding


@dataclass(frozen=True)
class Embedded:
    """The speaker embeddings of an ``embed`` request."""

    request_id: int
    windows: VoiceWindows


@dataclass(frozen=True)
class DecodeFailed:
    request_id: int
    error: str


@dataclass(frozen=True)
class DecodeCancelled:
    request_id: int


EngineResult = Decoded | Embedded | DecodeFailed | DecodeCancelled
Command = ClientCommand | ConnectionLost | Stop | LoadReport | EngineResult


# -- to the engine ---------------------------------------------------------------
@dataclass(frozen=True)
class DecodeRequest:
    id: int
    kind: str  # "partial", "final" or "embed" (who is speaking)
    segment_id: int
    audio_end: int  # absolute sample index the decoded audio ends at
    job: Job


@dataclass(frozen=True)
class Submit:
    request: DecodeRequest


@dataclass(frozen=True)
class Cancel:
    """The result of this request is no longer wanted."""

    request_id: int


@dataclass(frozen=True)
class Promote:
    """A speculative final the endpoint confirmed: it is a final now."""

    request_id: int


EngineAction = Submit | Cancel | Promote
