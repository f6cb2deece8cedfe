"""AssemblyAI Universal-Streaming (v3), ``GET /v3/ws`` (docs/doors/assemblyai.md).

A turn is one of the core's utterances. While it is spoken, each partial
is a ``Turn`` whose words are marked final (``word_is_final``) once they
are in the stable prefix, and whose ``transcript`` holds only those; at
its end comes a ``Turn`` with ``end_of_turn`` true (unformatted: lower
case, no punctuation, as AssemblyAI's), then with ``format_turns`` the
same turn formatted (Whisper's own text, punctuated and cased). With a
Universal-3 Pro ``speech_model`` (which formats every turn) the end of a
turn is one formatted ``Turn``. With ``speaker_labels=true`` a ``Turn``
carries ``speaker_label`` (``A``, ``B``, ...) and each final word its
``speaker``, as AssemblyAI's streaming diarization does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.core.commands import Audio, Command, Configure, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import (
    ErrorEvent,
    Event,
    SessionClosed,
    SessionCreated,
    SessionUpdated,
    TranscriptFinal,
    TranscriptPartial,
)
from gateway.core.options import LIMITS

from .. import wire
from ..dialect import Dialect, Frame, Opening, Upgrade, bearer_token

ENCODINGS = {"pcm_s16le": "pcm_s16le", "pcm_mulaw": "mulaw"}
SESSION_S = 14400  # Begin.expires_at: the server's default --max-session-s
PUNCTUATION = ".,?!;:\"'()[]{}…。，？！"
CONTROL = ("KeepAlive", "ForceEndpoint", "UpdateConfiguration", "Terminate")
# AssemblyAI's Universal-3 Pro streaming models format every turn ("formatting
# is always on"; format_turns does not apply): u3-rt-pro and its variants, the
# u3-pro alias, universal-3-5-pro and universal-3-6-pro (the default of
# pipecat 1.14 and of LiveKit's plugin 1.8). Their clients take the first
# end-of-turn Turn as the final one.
ALWAYS_FORMATTED = re.compile(r"(u3-(rt-)?pro|universal-3-\d+-pro)(-[\w.-]+)?")


def turn_options(params: Mapping[str, Any], problem: wire.Problem = wire.OPENING) -> dict[str, Any]:
    """The core options for AssemblyAI's turn parameters (query or UpdateConfiguration).

    The gateway ends a turn after ``endpoint_ms`` of silence: that is
    ``min_turn_silence`` (or its old name) when given, else
    ``max_turn_silence``; ``end_of_turn_confidence_threshold`` is accepted
    and has no effect (Whisper gives no end-of-turn probability).
    """
    options: dict[str, Any] = {}
    for key in ("min_turn_silence", "min_end_of_turn_silence_when_confident", "max_turn_silence"):
        if params.get(key) is not None:
            options["endpoint_ms"] = wire.milliseconds(params[key], key, LIMITS["endpoint_ms"], problem)
            break
    terms = params.get("keyterms_prompt")
    keyterms = wire.words(terms, "keyterms_prompt", problem) if terms is not None else []
    prompt = wire.text(params.get("prompt"), "prompt", problem)
    parts = [p for p in (prompt, ", ".join(keyterms) if keyterms else None) if p]
    if parts:
        options["prompt"] = " ".join(parts)
    return options


# AssemblyAI's PII policies the gateway redacts, as the core's kinds (docs/protocol.md section 10).
POLICY_KINDS = {
    "credit_card_number": "pci", "credit_card_expiration": "pci", "credit_card_cvv": "pci",
    "us_social_security_number": "ssn", "phone_number": "phone", "email_address": "email", "number_sequence": "numbers",
}
DEFAULT_POLICIES = ("credit_card_number", "credit_card_expiration", "credit_card_cvv", "us_social_security_number",
                    "phone_number", "email_address")


def _listed(value: str) -> list[str]:
    """A query's list: JSON (``["a","b"]``, as the SDK writes a list) or comma-separated."""
    return wire.words(value, "redact_pii_policies") if value.lstrip().startswith("[") else value.split(",")


def redact_policies(policies: list[str]) -> str:
    """``redact_pii_policies`` as the core's kinds (none given: every policy
    served but number_sequence); a policy that needs a named-entity model
    (person_name, location, ...) is refused rather than ignored."""
    names = [p.strip().lower() for p in policies if p.strip()] or list(DEFAULT_POLICIES)
    unserved = sorted(set(names) - set(POLICY_KINDS))
    if unserved:
        raise ProtocolError(
            "invalid_config",
            f"redact_pii_policies {', '.join(unserved)} not served (they need a named-entity model); "
            f"served: {', '.join(POLICY_KINDS)}",
            fatal=True,
        )
    return ",".join(dict.fromkeys(POLICY_KINDS[n] for n in names))


@dataclass(frozen=True)
class TurnFormat:
    """How the opening asked for turns: formatted (``format_turns``), or
    always (a Universal-3 Pro ``speech_model``: one end-of-turn Turn, formatted)."""

    format_turns: bool = False
    always_formatted: bool = False


def unformatted(word: str) -> str:
    return word.strip().strip(PUNCTUATION).lower()


class AssemblyAIDialect(Dialect):
    name = "assemblyai"

    def __init__(self, opened: Opening):
        super().__init__(opened)
        turns = opened.wire if isinstance(opened.wire, TurnFormat) else TurnFormat()
        self.format_turns = turns.format_turns
        self.always_formatted = turns.always_formatted
        self._opened = time.monotonic()
        self._turns: dict[int, int] = {}  # segment id -> turn_order, while the turn lasts
        self._next_turn = 0
        self._updates = 0  # UpdateConfiguration messages the core has not answered

    # -- opening --------------------------------------------------------------
    @classmethod
    def presented_key(cls, upgrade: Upgrade) -> str | None:
        authorization = (upgrade.header("authorization") or "").strip()
        return bearer_token(authorization) or authorization or upgrade.params().get("token") or super().presented_key(upgrade)

    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening:
        params = upgrade.params()
        model = wire.text(params.get("speech_model"), "speech_model") or "universal-streaming-english"
        turns = TurnFormat(
            # formatted_finals: the parameter's earlier name, which pipecat sends
            format_turns=wire.flag(params.get("format_turns", params.get("formatted_finals")), "format_turns", False),
            always_formatted=bool(ALWAYS_FORMATTED.fullmatch(model)),
        )
        options: dict[str, Any] = {"interim_results": True}
        if "sample_rate" in params:
            options["sample_rate"] = params["sample_rate"]
        encoding = params.get("encoding", "pcm_s16le")
        if encoding not in ENCODINGS:
            raise ProtocolError(
                "invalid_config", f"encoding {encoding!r} is not served; use one of {', '.join(ENCODINGS)}", fatal=True
            )
        options["encoding"] = ENCODINGS[encoding]
        if params.get("language_code"):
            options["language"] = params["language_code"].split("_")[0].split("-")[0]
        if wire.flag(params.get("speaker_labels"), "speaker_labels", False):
            options["diarize"] = True  # a Turn's speaker_label, a final word's speaker
        if wire.flag(params.get("redact_pii"), "redact_pii", False):
            options["redact"] = redact_policies([v for item in upgrade.values("redact_pii_policies") for v in _listed(item)])
        return replace(presented, options=options | turn_options(params), wire=turns)

    # -- client messages ---------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        if isinstance(frame, bytes):
            return [Audio(frame)]
        message = wire.json_object(frame, 'a text message (such as {"type": "ForceEndpoint"})')
        kind = message.get("type")
        if kind == "KeepAlive":
            return []
        if kind == "ForceEndpoint":
            return [Flush()]
        if kind == "Terminate":
            return [End()]
        if kind == "UpdateConfiguration":
            changes = turn_options(message, wire.MESSAGE)
            if "format_turns" in message:
                self.format_turns = wire.flag(message["format_turns"], "format_turns", self.format_turns, wire.MESSAGE)
            self._updates += 1
            return [Configure(changes)]
        raise ProtocolError("invalid_message", f"unknown message type {wire.shown(kind)}; messages taken: {', '.join(CONTROL)}")

    # -- server messages ------------------------------------------------------------
    def frames(self, event: Event) -> list[Frame]:
        out: list[dict[str, Any]] = []
        if isinstance(event, SessionCreated):
            out.append({"type": "Begin", "id": event.session_id, "expires_at": int(time.time()) + SESSION_S})
        elif isinstance(event, SessionUpdated):
            self._updates = max(0, self._updates - 1)
        elif isinstance(event, TranscriptPartial):
            out.append(self._partial(event))
        elif isinstance(event, TranscriptFinal):
            out.extend(self._final(event))
        elif isinstance(event, ErrorEvent):
            if event.fatal:
                out.append({"type": "Error", "error": event.message, "error_code": 3005 if event.code == "invalid_config" else 1011})
            else:
                if event.code == "invalid_state" and self._updates:
                    self._updates -= 1
                out.append({"type": "Warning", "warning_code": 4000, "warning": f"{event.code}: {event.message}"})
        elif isinstance(event, SessionClosed):
            out.append({
                "type": "Termination",
                "audio_duration_seconds": int(round(event.duration)),
                "session_duration_seconds": int(round(time.monotonic() - self._opened)),
            })
        return [json.dumps(m, ensure_ascii=False) for m in out]

    def _turn_order(self, segment_id: int) -> int:
        if segment_id not in self._turns:
            self._turns[segment_id], self._next_turn = self._next_turn, self._next_turn + 1
        return self._turns[segment_id]

    def _partial(self, event: TranscriptPartial) -> dict[str, Any]:
        words = event.text.split()
        settled = len(event.stable_text.split())
        # Partials are decoded without word timestamps: their words' times
        # are spread over the audio heard so far (finals carry Whisper's).
        step = (event.end - event.start) / max(1, len(words))
        entries: list[dict[str, Any]] = [
            {
                "start": round((event.start + i * step) * 1000),
                "end": round((event.start + (i + 1) * step) * 1000),
                "text": unformatted(w) or w,
                "confidence": 1.0 if i < settled else 0.5,
                "word_is_final": i < settled,
            }
            for i, w in enumerate(words)
        ]
        return self._turn(
            event.segment_id, entries, " ".join(str(e["text"]) for e in entries[:settled]), False, 0.0, "", speaker=event.speaker
        )

    def _final(self, event: TranscriptFinal) -> list[dict[str, Any]]:
        segment = event.segment
        if not segment.text.strip():
            if segment.id not in self._turns:
                return []  # no speech, nothing said of it: no turn
            # Its partials were sent: the turn ends, empty (a client must not wait for it).
            turns = [self._turn(segment.id, [], "", True, 0.0, "", formatted=self.always_formatted)]
            if self.format_turns and not self.always_formatted:
                turns.append(self._turn(segment.id, [], "", True, 0.0, "", formatted=True))
            self._turns.pop(segment.id)
            return turns
        confidence = 1.0 if event.end_reason == "endpoint" else 0.5
        words: list[dict[str, Any]] = [
            {"start": round(w.start * 1000), "end": round(w.end * 1000), "confidence": round(w.probability, 4), "word_is_final": True}
            for w in segment.words
        ]
        if segment.speaker is not None:
            for entry, said_by in zip(words, segment.word_speakers or (segment.speaker,) * len(words), strict=True):
                entry["speaker"] = said_by
        speaker = segment.speaker
        formatted = [dict(e, text=w.word.strip()) for e, w in zip(words, segment.words)]
        formatted_turn = self._turn(
            segment.id, formatted, segment.text.strip(), True, confidence, segment.text.strip(), formatted=True, speaker=speaker
        )
        if self.always_formatted:
            self._turns.pop(segment.id, None)
            return [formatted_turn]
        plain = [dict(e, text=unformatted(w.word) or w.word.strip()) for e, w in zip(words, segment.words)]
        text = " ".join(str(e["text"]) for e in plain)
        turns = [self._turn(segment.id, plain, text, True, confidence, text, speaker=speaker)]
        if self.format_turns:
            turns.append(formatted_turn)
        self._turns.pop(segment.id, None)
        return turns

    def _turn(
        self, segment_id: int, words: list[dict[str, Any]], transcript: str, end_of_turn: bool,
        confidence: float, utterance: str, formatted: bool = False, speaker: str | None = None,
    ) -> dict[str, Any]:
        turn = {
            "type": "Turn",
            "turn_order": self._turn_order(segment_id),
            "turn_is_formatted": formatted,
            "end_of_turn": end_of_turn,
            "transcript": transcript,
            "end_of_turn_confidence": confidence,
            "words": words,
            "utterance": utterance,
        }
        if speaker is not None:  # speaker_labels=true: who said most of it (provisional until the turn ends)
            turn["speaker_label"] = speaker
        return turn
