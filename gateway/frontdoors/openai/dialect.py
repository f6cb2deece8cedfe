"""OpenAI Realtime transcription sessions (docs/doors/openai.md); their configuration is ``session``.

A client turn is an *item*. With ``server_vad`` (the default) each of the
core's utterances is one item; with ``turn_detection: null`` the client
commits, and everything between two commits is one item (the core still
cuts it at pauses, which keeps each Whisper window short; their texts are
joined). An item owns exactly the audio up to its commit: the utterances
that started before the commit are its own, those after it the next
item's, even when the next one starts before this one's final is back. Deltas are append-only: the words of the stable prefix as it
grows, and the rest of the final at the end (``SettledWords``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections import deque
from dataclasses import dataclass, field, replace
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

from .. import wire
from ..dialect import Dialect, Frame, Opening, Upgrade
from ..settled import SettledWords
from .config import TurnConfig, Update, beta_session_object, read_update, session_object

CLIENT_EVENT = wire.Problem("invalid_request_error", False)  # OpenAI's error type for a bad client event
CLIENT_EVENTS = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
)



@dataclass
class Item:
    """One conversation item: a client turn."""

    id: str
    words: list[str] = field(default_factory=list)  # sent so far, in deltas
    start: float | None = None
    end: float = 0.0
    timestamps: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    speakers: list[str] = field(default_factory=list)  # diarize: each final's speaker, in order


class OpenAIRealtimeDialect(Dialect):
    name = "openai_realtime"

    def __init__(self, opened: Opening):
        super().__init__(opened)
        self._session_id = f"sess_{id(self):x}"
        self._event_ids = itertools.count(1)
        self._item_ids = itertools.count(1)
        self._settled = SettledWords()
        self.turns = TurnConfig()
        self._pending: deque[Update] = deque()  # session updates the core has not answered yet
        # Per Flush in flight: "commit" or "clear", and (client commits) the item it commits.
        self._flushes: deque[tuple[str, Item | None]] = deque()
        self._items: dict[int, Item] = {}  # segment id -> its item
        self._open_item: Item | None = None  # manual mode: the turn being spoken
        self._last_item_id: str | None = None
        self._appended = False  # audio since the last commit
        self._cleared_through = -1  # segments up to this one were cleared: nothing is sent for them
        self._last_segment = -1

    # -- opening --------------------------------------------------------------
    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening:
        if upgrade.params().get("intent") != "transcription":
            raise ProtocolError(
                "invalid_config",
                "this gateway serves transcription sessions only: connect with ?intent=transcription",
                fatal=True,
            )
        return replace(presented, options={"sample_rate": 24000, "encoding": "pcm_s16le"})

    # -- client events ------------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        if isinstance(frame, bytes):
            raise ProtocolError("invalid_request_error", "send audio as input_audio_buffer.append events (base64), not binary frames")
        event = wire.json_object(frame, "a client event", CLIENT_EVENT)
        if not isinstance(event.get("type"), str):
            raise ProtocolError("invalid_request_error", 'a client event must be a JSON object with a "type" string')
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            return self._append(event)
        if kind == "input_audio_buffer.commit":
            if not self._appended:
                raise ProtocolError("input_audio_buffer_commit_empty", "the input audio buffer is empty: append audio before committing")
            self._appended = False
            committed = None
            if self.turns.manual:
                # The item owns the audio up to this commit: speech after it
                # (which may start before this item's final is back) is the next item's.
                committed, self._open_item = self._open_item or self._new_item(), None
            self._flushes.append(("commit", committed))
            return [Flush()]
        if kind == "input_audio_buffer.clear":
            # What was said since the last commit is dropped: nothing more is
            # sent for its utterances (their decodes still run to completion).
            self._appended = False
            self._cleared_through = self._last_segment
            self._open_item = None
            self._flushes.append(("clear", None))
            return [Flush()]
        if kind in ("session.update", "transcription_session.update"):
            update = read_update(event.get("session"), kind == "transcription_session.update", self.turns)
            self._pending.append(update)
            return [Configure(update.changes)]
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

    # -- server events ----------------------------------------------------------------
    def frames(self, event: Event) -> list[Frame]:
        out: list[dict[str, Any]] = []
        if isinstance(event, SessionCreated):
            out.append({"type": "session.created", "session": session_object(self._session_id, event.session, self.turns)})
        elif isinstance(event, SessionUpdated):
            beta = False
            if self._pending:  # the core answers updates in order
                update = self._pending.popleft()
                self.turns, beta = update.turns, update.beta
            if beta:
                out.append({"type": "transcription_session.updated", "session": beta_session_object(self._session_id, event.session, self.turns)})
            else:
                out.append({"type": "session.updated", "session": session_object(self._session_id, event.session, self.turns)})
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

    def _new_item(self) -> Item:
        return Item(f"item_{id(self):x}_{next(self._item_ids)}")

    def _item_for(self, segment_id: int) -> Item:
        """The item an utterance belongs to (made when it starts)."""
        if segment_id not in self._items:
            if self.turns.manual:
                if self._open_item is None:
                    self._open_item = self._new_item()
                self._items[segment_id] = self._open_item
            else:
                self._items[segment_id] = self._new_item()
        return self._items[segment_id]

    def _speech_started(self, event: SpeechStarted, out: list[dict[str, Any]]) -> None:
        self._last_segment = event.segment_id
        item = self._item_for(event.segment_id)
        if item.start is None:
            item.start = event.start
            if not self.turns.manual:
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
        if segment.speaker is not None:
            item.speakers.append(segment.speaker)
            said = segment.word_speakers or (segment.speaker,) * len(segment.words)
            for stamp, speaker in zip(item.timestamps[len(item.timestamps) - len(said) :], said, strict=True):
                stamp["speaker"] = speaker
        if not self.turns.manual:
            out.append({"type": "input_audio_buffer.speech_stopped", "item_id": item.id, "audio_end_ms": round(segment.end * 1000)})
            self._complete(item, out)

    def _flushed(self, event: Flushed, out: list[dict[str, Any]]) -> None:
        purpose, item = self._flushes.popleft() if self._flushes else ("commit", None)
        if purpose == "clear":
            out.append({"type": "input_audio_buffer.cleared"})
            return
        if item is None and event.segment_id is None:
            item = self._new_item()  # a commit with nothing in progress: an empty item
        if item is not None:  # with server VAD, an utterance's final completed its item already
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
            **({"speaker": max(item.speakers, key=item.speakers.count)} if item.speakers else {}),  # diarize: who said most of it
        })

    def _error(self, event: ErrorEvent, out: list[dict[str, Any]]) -> None:
        if event.code in ("invalid_config", "invalid_state") and self._pending:
            self._pending.popleft()  # the update it answers did not apply
        if event.code == "decode_failed" and event.segment_id is not None and event.segment_id in self._items:
            self._items[event.segment_id].failure = event.message
            return
        kind = "server_error" if event.code in ("server_shutdown", "idle_timeout", "session_timeout") else "invalid_request_error"
        out.append({"type": "error", "error": {"type": kind, "code": event.code, "message": event.message, "param": None, "event_id": None}})
