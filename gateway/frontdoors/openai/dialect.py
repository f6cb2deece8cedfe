"""OpenAI Realtime transcription sessions, GA protocol (README "OpenAI Realtime").

A client turn is an *item*. With ``server_vad`` (the default) each of the
core's utterances is one item; with ``turn_detection: null`` the client
commits, and everything between two commits is one item (the core still
cuts it at pauses, which keeps each Whisper window short; their texts are
joined). Deltas are append-only: the words of the stable prefix as it
grows, and the rest of the final at the end (``SettledWords``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.core.commands import Audio, Command, Configure, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import (
    ErrorEvent,
    Event,
    Flushed,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
)
from gateway.core.options import LIMITS

from ..dialect import Dialect, Frame, Upgrade
from ..settled import SettledWords

# Audio formats: the OpenAI name -> (sample rate, the core's encoding).
FORMATS = {"audio/pcm": (24000, "pcm_s16le"), "audio/pcmu": (8000, "mulaw"), "audio/pcma": (8000, "alaw")}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
# OpenAI's own transcription models: a client written for OpenAI names one
# of these, and gets the server's default model.
OPENAI_MODELS = (
    "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-latest",
    "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize", "gpt-transcribe",
    "gpt-live-transcribe", "gpt-realtime-whisper",
)
# semantic_vad's eagerness -> the endpoint (ms of trailing silence).
EAGERNESS_ENDPOINT_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}
DEFAULT_VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
CLIENT_EVENTS = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
)


def _vad_threshold(aggressiveness: int) -> float:
    return (0.2, 0.4, 0.5, 0.8)[aggressiveness]


def _aggressiveness(threshold: Any) -> int:
    """server_vad's threshold (0..1, higher: louder speech needed) -> webrtcvad's mode 0..3."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ProtocolError("invalid_value", f"turn_detection.threshold must be a number from 0 to 1, got {threshold!r}")
    return 0 if threshold < 0.3 else 1 if threshold < 0.45 else 2 if threshold < 0.65 else 3


def _clamp(name: str, ms: Any, option: str) -> int:
    """A turn_detection duration, brought within the gateway's bounds for ``option``."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms != ms:
        raise ProtocolError("invalid_value", f"turn_detection.{name} must be a number of milliseconds, got {ms!r}")
    low, high = LIMITS[option]
    return int(min(max(ms, low), high))


def _clamp_endpoint(ms: Any) -> int:
    return _clamp("silence_duration_ms", ms, "endpoint_ms")


@dataclass(frozen=True)
class Pending:
    """A session update the core has not answered yet: what it will set here."""

    manual: bool
    turn_detection: dict[str, Any] | None
    noise_reduction: Any
    beta: bool


@dataclass
class Item:
    """One conversation item: a client turn."""

    id: str
    segments: list[int] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # sent so far, in deltas
    start: float | None = None
    end: float = 0.0
    timestamps: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None


class OpenAIRealtimeDialect(Dialect):
    name = "openai_realtime"

    def __init__(self, upgrade: Upgrade):
        super().__init__(upgrade)
        self._event_ids = itertools.count(1)
        self._item_ids = itertools.count(1)
        self._settled = SettledWords()
        self.manual = False  # turn_detection null: the client commits
        self.turn_detection: dict[str, Any] | None = dict(DEFAULT_VAD)
        self.noise_reduction: Any = None
        self._pending: deque[Pending] = deque()  # per session update in flight
        self._flushes: deque[str] = deque()  # "commit" or "clear", per Flush in flight
        self._items: dict[int, Item] = {}  # segment id -> its item
        self._open_item: Item | None = None  # manual mode: the turn being spoken
        self._last_item_id: str | None = None
        self._appended = False  # audio since the last commit
        self._cleared_through = -1  # segments up to this one were cleared: nothing is sent for them
        self._last_segment = -1

    # -- opening --------------------------------------------------------------
    def options(self) -> Mapping[str, Any]:
        intent = self.upgrade.params().get("intent")
        if intent != "transcription":
            raise ProtocolError(
                "invalid_config",
                "this gateway serves transcription sessions only: connect with ?intent=transcription",
                fatal=True,
            )
        return {"sample_rate": 24000, "encoding": "pcm_s16le"}

    # -- client events ------------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        if isinstance(frame, bytes):
            raise ProtocolError("invalid_request_error", "send audio as input_audio_buffer.append events (base64), not binary frames")
        try:
            event = json.loads(frame)
        except (ValueError, RecursionError):
            raise ProtocolError("invalid_request_error", "client events must be JSON objects") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError("invalid_request_error", 'a client event must be a JSON object with a "type" string')
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            return self._append(event)
        if kind == "input_audio_buffer.commit":
            if not self._appended:
                raise ProtocolError("input_audio_buffer_commit_empty", "the input audio buffer is empty: append audio before committing")
            self._appended = False
            self._flushes.append("commit")
            return [Flush()]
        if kind == "input_audio_buffer.clear":
            # What was said since the last commit is dropped: nothing more is
            # sent for its utterances (their decodes still run to completion).
            self._appended = False
            self._cleared_through = self._last_segment
            self._open_item = None
            self._flushes.append("clear")
            return [Flush()]
        if kind in ("session.update", "transcription_session.update"):
            return [self._update(event.get("session"), beta=kind == "transcription_session.update")]
        raise ProtocolError(
            "invalid_request_error",
            f"{kind!r} is not served in a transcription session; client events taken: {', '.join(CLIENT_EVENTS)}",
        )

    def _append(self, event: dict[str, Any]) -> list[Command]:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ProtocolError("invalid_request_error", "input_audio_buffer.append needs 'audio', base64-encoded")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid_audio", "input_audio_buffer.append: 'audio' is not valid base64") from None
        if data:
            self._appended = True
        return [Audio(data)] if data else []

    def _update(self, session: Any, beta: bool) -> Command:
        """A ``session.update`` (GA) or a ``transcription_session.update``
        (the beta protocol some clients still speak: LiveKit's STT up to 1.x)."""
        if not isinstance(session, dict):
            raise ProtocolError("invalid_request_error", "session.update needs a 'session' object")
        if beta:
            fmt: Any = {"type": BETA_FORMATS.get(session.get("input_audio_format") or "", session.get("input_audio_format"))}
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
            if fmt["type"] not in FORMATS:
                raise ProtocolError("invalid_value", f"audio format {fmt['type']!r} is not served; use one of {', '.join(FORMATS)}")
            rate, encoding = FORMATS[fmt["type"]]
            changes["sample_rate"], changes["encoding"] = fmt.get("rate") or rate, encoding
        if isinstance(transcription, dict):
            model = transcription.get("model")
            if model:
                changes["model"] = "whisper-1" if model in OPENAI_MODELS else model
            languages = transcription.get("languages")
            language = transcription.get("language") or (languages[0] if isinstance(languages, list) and len(languages) == 1 else None)
            if language:
                changes["language"] = language
            prompt = transcription.get("prompt") or ""
            keywords = transcription.get("keywords") or []
            if isinstance(keywords, list) and keywords:
                prompt = " ".join(p for p in (prompt, ", ".join(map(str, keywords))) if p)
            if prompt:
                changes["prompt"] = prompt
        manual, turn = self.manual, self.turn_detection
        if "turn_detection" in audio_in:
            manual, turn = self._turn_detection(audio_in["turn_detection"], changes)
        noise = audio_in.get("noise_reduction", self.noise_reduction)  # accepted, not applied (documented)
        self._pending.append(Pending(manual, turn, noise, beta))
        return Configure(changes)

    @staticmethod
    def _turn_detection(turn: Any, changes: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        if turn is None:
            return True, None
        if not isinstance(turn, dict) or turn.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
            raise ProtocolError("invalid_value", "turn_detection must be null or of type server_vad or semantic_vad")
        effective = dict(DEFAULT_VAD) | {k: v for k, v in turn.items() if v is not None}
        if effective["type"] == "semantic_vad":
            eagerness = turn.get("eagerness") or "auto"
            if eagerness not in EAGERNESS_ENDPOINT_MS:
                raise ProtocolError("invalid_value", f"eagerness must be one of {', '.join(EAGERNESS_ENDPOINT_MS)}")
            changes["endpoint_ms"] = EAGERNESS_ENDPOINT_MS[eagerness]
        else:
            changes["endpoint_ms"] = _clamp_endpoint(effective["silence_duration_ms"])
            changes["vad_aggressiveness"] = _aggressiveness(effective["threshold"])
            changes["pre_roll_ms"] = _clamp("prefix_padding_ms", effective["prefix_padding_ms"], "pre_roll_ms")
        return False, effective

    # -- server events ----------------------------------------------------------------
    def frames(self, event: Event) -> list[Frame]:
        out: list[dict[str, Any]] = []
        if isinstance(event, SessionCreated):
            out.append({"type": "session.created", "session": self._session(event.session)})
        elif isinstance(event, SessionUpdated):
            beta = False
            if self._pending:
                update = self._pending.popleft()
                self.manual, self.turn_detection, self.noise_reduction, beta = (
                    update.manual, update.turn_detection, update.noise_reduction, update.beta
                )
            if beta:
                out.append({"type": "transcription_session.updated", "session": self._beta_session(event.session)})
            else:
                out.append({"type": "session.updated", "session": self._session(event.session)})
        elif isinstance(event, SpeechStarted):
            self._speech_started(event, out)
        elif isinstance(event, TranscriptPartial):
            item = self._items.get(event.segment_id)
            if item is not None and event.segment_id > self._cleared_through:
                self._delta(item, self._settled.grow(event.segment_id, event.stable_text), out)
        elif isinstance(event, TranscriptFinal):
            self._final(event, out)
        elif isinstance(event, Flushed):
            self._flushed(event, out)
        elif isinstance(event, ErrorEvent):
            self._error(event, out)
        return [json.dumps({"event_id": f"event_{next(self._event_ids)}"} | m, ensure_ascii=False) for m in out]

    def _session(self, options: dict[str, Any]) -> dict[str, Any]:
        rate, encoding = options["sample_rate"], options["encoding"]
        fmt: dict[str, Any] = {"type": "audio/pcma" if encoding == "alaw" else "audio/pcmu" if encoding == "mulaw" else "audio/pcm"}
        if encoding == "pcm_s16le":
            fmt["rate"] = rate
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": f"sess_{id(self):x}",
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": {"model": options["model"], "language": options["language"], "prompt": options["prompt"] or ""},
                    "turn_detection": self.turn_detection,
                    "noise_reduction": self.noise_reduction,
                }
            },
            "include": [],
        }

    def _beta_session(self, options: dict[str, Any]) -> dict[str, Any]:
        ga = self._session(options)["audio"]["input"]
        beta_format = {v: k for k, v in BETA_FORMATS.items()}[ga["format"]["type"]]
        return {
            "id": f"sess_{id(self):x}", "object": "realtime.transcription_session",
            "input_audio_format": beta_format, "input_audio_transcription": ga["transcription"],
            "turn_detection": self.turn_detection, "input_audio_noise_reduction": self.noise_reduction, "include": [],
        }

    def _new_item(self) -> Item:
        return Item(f"item_{id(self):x}_{next(self._item_ids)}")

    def _item_for(self, segment_id: int) -> Item:
        """The item an utterance belongs to (made when it starts)."""
        if segment_id not in self._items:
            if self.manual:
                if self._open_item is None:
                    self._open_item = self._new_item()
                self._items[segment_id] = self._open_item
            else:
                self._items[segment_id] = self._new_item()
        return self._items[segment_id]

    def _speech_started(self, event: SpeechStarted, out: list[dict[str, Any]]) -> None:
        self._last_segment = event.segment_id
        item = self._item_for(event.segment_id)
        item.segments.append(event.segment_id)
        if item.start is None:
            item.start = event.start
            if not self.manual:
                out.append({"type": "input_audio_buffer.speech_started", "item_id": item.id, "audio_start_ms": round(event.start * 1000)})

    def _delta(self, item: Item, words: list[str], out: list[dict[str, Any]]) -> None:
        if not words:
            return
        text = " ".join(words)
        delta = text if not item.words else " " + text
        item.words.extend(words)
        out.append({"type": "conversation.item.input_audio_transcription.delta", "item_id": item.id, "content_index": 0, "delta": delta})

    def _final(self, event: TranscriptFinal, out: list[dict[str, Any]]) -> None:
        segment = event.segment
        item = self._items.pop(segment.id, None)
        if item is None or segment.id <= self._cleared_through:
            self._settled.forget(segment.id)
            return
        _, rest = self._settled.finish(segment.id, segment.text)
        self._delta(item, rest, out)
        item.end = max(item.end, segment.end)
        item.timestamps.extend({"word": w.word, "start": w.start, "end": w.end, "probability": w.probability} for w in segment.words)
        if not self.manual:
            out.append({"type": "input_audio_buffer.speech_stopped", "item_id": item.id, "audio_end_ms": round(segment.end * 1000)})
            self._complete(item, out)

    def _flushed(self, event: Flushed, out: list[dict[str, Any]]) -> None:
        purpose = self._flushes.popleft() if self._flushes else "commit"
        if purpose == "clear":
            out.append({"type": "input_audio_buffer.cleared"})
            return
        if self.manual or event.segment_id is None:
            item = self._open_item or self._new_item()
            self._open_item = None
            if item.start is None:
                item.start = item.end = 0.0
            self._complete(item, out)

    def _complete(self, item: Item, out: list[dict[str, Any]]) -> None:
        previous, self._last_item_id = self._last_item_id, item.id
        out.append({"type": "input_audio_buffer.committed", "item_id": item.id, "previous_item_id": previous})
        out.append({
            "type": "conversation.item.added",
            "previous_item_id": previous,
            "item": {
                "id": item.id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        })
        if item.failure is not None:
            out.append({
                "type": "conversation.item.input_audio_transcription.failed", "item_id": item.id, "content_index": 0,
                "error": {"type": "transcription_error", "code": "decode_failed", "message": item.failure, "param": None},
            })
            return
        seconds = max(0.0, item.end - (item.start or 0.0))
        out.append({
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item.id,
            "content_index": 0,
            "transcript": " ".join(item.words),
            "usage": {"type": "duration", "seconds": round(seconds, 3)},
            "words": item.timestamps,  # an extension: word timestamps, in seconds of stream audio
        })

    def _error(self, event: ErrorEvent, out: list[dict[str, Any]]) -> None:
        if event.code in ("invalid_config", "invalid_state") and self._pending:
            self._pending.popleft()  # the update it answers did not apply
        if event.code == "decode_failed" and event.segment_id is not None and event.segment_id in self._items:
            self._items[event.segment_id].failure = event.message
            return
        kind = "server_error" if event.code in ("server_shutdown", "idle_timeout", "session_timeout") else "invalid_request_error"
        out.append({"type": "error", "error": {"type": kind, "code": event.code, "message": event.message, "param": None, "event_id": None}})
