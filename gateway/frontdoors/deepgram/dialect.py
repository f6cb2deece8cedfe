"""Deepgram live streaming, ``GET /v1/listen`` (docs/doors/deepgram.md).

Query parameters are Deepgram's; the ones this gateway has no use for are
accepted and ignored, as Deepgram does. A partial is a ``Results`` with
``is_final`` false, a final one with ``is_final`` true; ``speech_final``
is true when the utterance ended at an endpoint (false at a forced cut,
a ``Finalize`` or the end). Times are seconds of stream audio. With
``diarize=true`` every word of a final carries Deepgram's integer
``speaker``: 0 for the first voice heard on its channel, 1 for the next.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from gateway import __version__
from gateway.core.commands import Audio, Command, Configure, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import (
    ErrorEvent,
    Event,
    Flushed,
    SessionClosed,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
)
from gateway.core.options import LIMITS

from .. import wire
from ..dialect import Dialect, Frame, Opening, Refusal, Upgrade

ENCODINGS = {"linear16": "pcm_s16le", "linear32": "pcm_s32le", "mulaw": "mulaw", "alaw": "alaw"}
# Deepgram's own models: a client written for Deepgram names one of these
# and gets the server's default model; any other name is a model of this server.
DEEPGRAM_MODEL_PREFIXES = ("nova", "enhanced", "flux", "general", "phonecall", "meeting")
CONTROL = ("KeepAlive", "Finalize", "CloseStream", "Configure")
PUNCTUATION = ".,?!;:\"'()[]{}…。，？！"


def _plain_word(word: str) -> str:
    """Deepgram's ``word``: lower case, no punctuation; a redaction placeholder
    keeps its brackets and its case (``[PCI]``), so that it reads as one."""
    bare = word.strip().rstrip(PUNCTUATION.replace("]", ""))
    if bare.startswith("[") and bare.endswith("]"):
        return bare
    return word.strip().strip(PUNCTUATION).lower() or word.strip()


def redact_option(values: list[str]) -> str:
    """Deepgram's ``redact`` values (repeated, or comma-separated) as the core's
    kinds: ``true`` is ``numbers``, as at Deepgram; its entity groups that need a
    named-entity model (``pii``, ``phi``) are refused rather than ignored."""
    kinds: list[str] = []
    for value in (v.strip().lower() for item in values for v in item.split(",")):
        if value in ("", "false"):
            continue
        if value in ("pii", "phi"):
            raise ProtocolError(
                "invalid_config",
                f"redact={value} is not served: names, places and health terms need a named-entity model; "
                "served: pci, ssn, phone, email, numbers (true)",
                fatal=True,
            )
        kinds.append("numbers" if value == "true" else value)
    return ",".join(kinds)


@dataclass(frozen=True)
class Listening:
    """What Deepgram's query asks of the conversation, besides the session's options."""

    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    vad_events: bool = False  # SpeechStarted messages
    endpointing: bool = True  # false: speech_final is never true
    utterance_end_ms: int | None = None  # UtteranceEnd messages after an endpoint
    channels: int = 1


class DeepgramDialect(Dialect):
    name = "deepgram"

    def __init__(self, opened: Opening):
        super().__init__(opened)
        listening = opened.wire if isinstance(opened.wire, Listening) else Listening()
        self.request_id = listening.request_id
        self.vad_events = listening.vad_events
        self.endpointing = listening.endpointing
        self.utterance_end_ms = listening.utterance_end_ms
        self.channels = listening.channels
        self.created = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.model_name = "whisper-1"
        self._finalizing = 0  # Finalize messages whose finals are still to come
        self._keyterms_pending = 0  # Configure messages waiting for the core's answer
        self._last_end: dict[int, float] = {}  # per channel, where its last final ended: finals never overlap
        self._speakers: dict[int, dict[str, int]] = {}  # per channel: the core's speaker label -> Deepgram's number

    # -- opening --------------------------------------------------------------
    @classmethod
    def presented_key(cls, upgrade: Upgrade) -> str | None:
        authorization = upgrade.header("authorization") or ""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() in ("token", "bearer") and key.strip():
            return key.strip()
        protocols = upgrade.subprotocols  # browsers: Sec-WebSocket-Protocol: token, <key>
        if len(protocols) >= 2 and protocols[0].lower() in ("token", "bearer"):
            return protocols[1]
        return super().presented_key(upgrade)

    @classmethod
    def accepted_subprotocol(cls, upgrade: Upgrade) -> str | None:
        protocols = upgrade.subprotocols
        if protocols and protocols[0].lower() in ("token", "bearer"):
            return protocols[0]
        return super().accepted_subprotocol(upgrade)

    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening:
        params = upgrade.params()
        ms = params.get("utterance_end_ms")
        listening = Listening(
            vad_events=wire.flag(params.get("vad_events"), "vad_events", False),
            endpointing=params.get("endpointing", "").lower() != "false",
            utterance_end_ms=None if ms is None else int(wire.number(ms, "utterance_end_ms", low=0)),
        )
        options: dict[str, Any] = {"interim_results": wire.flag(params.get("interim_results"), "interim_results", False)}  # Deepgram's default
        model = params.get("model")
        if model and not model.lower().startswith(DEEPGRAM_MODEL_PREFIXES):
            options["model"] = model
        language = params.get("language")
        if language and language.lower() != "multi":
            options["language"] = language.split("-")[0]
        encoding = params.get("encoding", "linear16")
        if encoding not in ENCODINGS:
            raise ProtocolError(
                "invalid_config",
                f"encoding {encoding!r} is not served: send raw audio as one of {', '.join(ENCODINGS)}",
                fatal=True,
            )
        options["encoding"] = ENCODINGS[encoding]
        if "sample_rate" in params:
            options["sample_rate"] = params["sample_rate"]
        channels = params.get("channels", "1")
        if channels != "1":
            # Several channels are transcribed each on its own (multichannel=true);
            # Deepgram would transcribe their mix otherwise, which a call's two
            # parties talking over each other does not survive.
            count = wire.integer(channels, "channels", low=1, high=int(LIMITS["channels"][1]))
            if not wire.flag(params.get("multichannel"), "multichannel", False):
                raise ProtocolError(
                    "invalid_config", f"channels={count} needs multichannel=true: each channel is transcribed on its own", fatal=True
                )
            options["channels"] = count
            listening = replace(listening, channels=count)
        endpointing = params.get("endpointing")
        if endpointing is not None and endpointing.lower() not in ("false", "true"):
            # Deepgram's default is 10 ms and LiveKit sends 25: Whisper needs
            # whole phrases, so a shorter endpoint becomes the gateway's shortest.
            options["endpoint_ms"] = wire.milliseconds(endpointing, "endpointing", LIMITS["endpoint_ms"])
        if wire.flag(params.get("diarize"), "diarize", False):
            options["diarize"] = True
        if upgrade.values("redact"):
            options["redact"] = redact_option(upgrade.values("redact"))
        terms = [v for k, v in upgrade.query if k in ("keyterm", "keyterms")]
        terms += [v.rsplit(":", 1)[0] if ":" in v else v for k, v in upgrade.query if k == "keywords"]
        if terms:
            options["prompt"] = ", ".join(terms)
        return replace(presented, options=options, wire=listening)

    @classmethod
    def refused(cls, error: ProtocolError, api_key: str | None = None, subprotocol: str | None = None) -> Refusal:
        """Deepgram refuses a bad query at the upgrade, with 400 and its own body."""
        body = {"err_code": "Bad Request", "err_msg": error.message, "request_id": str(uuid.uuid4())}
        return Refusal(error.code, error.message, status=400, body=body, api_key=api_key, subprotocol=subprotocol)

    # -- client messages ---------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        if isinstance(frame, bytes):
            return [Audio(frame)] if frame else [End()]  # an empty frame: Deepgram's old way to close
        message = wire.json_object(frame, 'a text message (a control message such as {"type": "KeepAlive"})')
        kind = message.get("type")
        if kind == "KeepAlive":
            return []
        if kind == "Finalize":
            self._finalizing += 1
            return [Flush()]
        if kind == "CloseStream":
            return [End()]
        if kind == "Configure":
            keyterms = message.get("keyterms")
            if keyterms is None:
                self._keyterms_pending += 1
                return [Configure({})]
            terms = wire.words(keyterms, "Configure: keyterms", wire.MESSAGE)
            self._keyterms_pending += 1
            return [Configure({"prompt": ", ".join(terms) or None})]
        raise ProtocolError("invalid_message", f"unknown message type {wire.shown(kind)}; control messages: {', '.join(CONTROL)}")

    # -- server messages ------------------------------------------------------------
    def frames(self, event: Event) -> list[Frame]:
        out: list[dict[str, Any]] = []
        if isinstance(event, SessionCreated):
            self.model_name = str(event.session.get("model") or self.model_name)
        elif isinstance(event, SessionUpdated):
            if self._keyterms_pending:
                self._keyterms_pending -= 1
                out.append({"type": "ConfigureSuccess", "request_id": self.request_id})
        elif isinstance(event, SpeechStarted):
            if self.vad_events:
                out.append({"type": "SpeechStarted", "channel": [event.channel], "timestamp": round(event.start, 3)})
        elif isinstance(event, TranscriptPartial):
            if event.text.strip():
                start = max(event.start, self._last_end.get(event.channel, 0.0))
                out.append(self._results(event.channel, start, event.end, event.text.strip(), [], 0.0, False, False, False))
        elif isinstance(event, TranscriptFinal):
            self._final(event, out)
        elif isinstance(event, Flushed):
            if self._finalizing:
                self._finalizing -= 1
                if event.segment_id is None:  # nothing was pending: an empty final says the Finalize is done
                    end = max(self._last_end.values(), default=0.0)
                    out.append(self._results(0, end, end, "", [], 0.0, True, False, True))
        elif isinstance(event, ErrorEvent):
            self._error(event, out)
        elif isinstance(event, SessionClosed):
            out.append({
                "type": "Metadata", "transaction_key": "deprecated", "request_id": self.request_id,
                "sha256": "", "created": self.created, "duration": round(event.duration, 3), "channels": self.channels,
                "models": [self._model_uuid()], "model_info": {self._model_uuid(): self._model_info()},
            })
        return [json.dumps(m, ensure_ascii=False) for m in out]

    def _final(self, event: TranscriptFinal, out: list[dict[str, Any]]) -> None:
        segment = event.segment
        start = max(segment.start, self._last_end.get(event.channel, 0.0))
        end = max(segment.end, start)
        words = [
            {
                "word": _plain_word(w.word),
                "start": round(max(w.start, start), 3),
                "end": round(min(max(w.end, start), end), 3),
                "confidence": round(w.probability, 4),
                "punctuated_word": w.word.strip(),
            }
            for w in segment.words
        ]
        if segment.speaker is not None:
            numbers = self._speakers.setdefault(event.channel, {})
            for word, speaker in zip(words, segment.word_speakers or [segment.speaker] * len(words), strict=True):
                word["speaker"] = numbers.setdefault(speaker, len(numbers))
        confidence = math.exp(segment.avg_logprob) if segment.text.strip() else 0.0
        speech_final = self.endpointing and event.end_reason == "endpoint"
        from_finalize = bool(self._finalizing) and event.end_reason == "flush"
        self._last_end[event.channel] = end
        out.append(self._results(event.channel, start, end, segment.text.strip(), words, confidence, True, speech_final, from_finalize))
        if self.utterance_end_ms is not None and speech_final and words:
            out.append({"type": "UtteranceEnd", "channel": [event.channel, self.channels], "last_word_end": words[-1]["end"]})

    def _results(
        self, channel: int, start: float, end: float, transcript: str, words: list[dict[str, Any]], confidence: float,
        is_final: bool, speech_final: bool, from_finalize: bool,
    ) -> dict[str, Any]:
        return {
            "type": "Results",
            "channel_index": [channel, self.channels],
            "duration": round(max(0.0, end - start), 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": round(confidence, 4), "words": words}]},
            "metadata": {"request_id": self.request_id, "model_uuid": self._model_uuid(), "model_info": self._model_info()},
        }

    def _model_uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stt-gateway:{self.model_name}"))

    def _model_info(self) -> dict[str, str]:
        return {"name": self.model_name, "version": __version__, "arch": "whisper"}

    def _error(self, event: ErrorEvent, out: list[dict[str, Any]]) -> None:
        if event.code in ("invalid_state", "invalid_config") and self._keyterms_pending and not event.fatal:
            self._keyterms_pending -= 1
            out.append({
                "type": "ConfigureFailure", "request_id": self.request_id,
                "code": "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
                "description": "keyterms become the prompt, which is fixed once audio has arrived: " + event.message,
            })
            return
        variant = "SchemaError" if event.code == "invalid_message" else event.code
        out.append({"type": "Error", "variant": variant, "description": event.message, "code": event.code})
