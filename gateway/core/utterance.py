"""One utterance of a stream: its states, written as data, and its stable prefix.

An utterance is what the VAD calls one stretch of speech. Its life::

    LISTENING --speculate--> SPECULATING --withdrawn--> LISTENING
        |                        |
        +--------ended-----------+--> FINAL_PENDING --emitted--> DONE

- LISTENING: speech goes on; partials are decoded.
- SPECULATING: a pause began; the final decodes before the endpoint
  confirms it. Speech resuming (or a final that breaks the stable prefix,
  or the engine dropping it) withdraws it.
- FINAL_PENDING: the utterance ended (endpoint, forced cut, flush, end);
  its final is decoding, or waits for the utterance before it (finals are
  chained: each one's text is the next one's prompt).
- DONE: its ``transcript.final`` was emitted, exactly once.

Any other move is a bug and raises ``SessionStateError``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.inference.records import Decoding

from .commands import DecodeRequest
from .errors import SessionStateError


class UtteranceState(enum.Enum):
    LISTENING = "listening"
    SPECULATING = "speculating"
    FINAL_PENDING = "final pending"
    DONE = "done"


_L, _S, _P, _D = UtteranceState
TRANSITIONS: dict[tuple[UtteranceState, str], UtteranceState] = {
    (_L, "speculate"): _S,
    (_S, "withdrawn"): _L,
    (_L, "ended"): _P,
    (_S, "ended"): _P,
    (_P, "emitted"): _D,
}


def common_prefix(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


@dataclass
class Utterance:
    segment_id: int
    start: int  # absolute sample index at 16 kHz, pre-roll included
    language: str | None = None
    state: UtteranceState = UtteranceState.LISTENING
    end: int | None = None  # set when it ends (endpoint, cut, flush)
    end_reason: str = ""
    history: list[tuple[int, list[str]]] = field(default_factory=list)  # (audio end, words) of each partial
    stable: list[str] = field(default_factory=list)
    partial_in_flight: int | None = None
    partial_requested_at: int = 0  # absolute sample of the last partial's audio end
    partials_sent: int = 0
    final_request: DecodeRequest | None = None
    speculation_silence_start: int | None = None  # where the pause began, while speculating
    verify_tail: bool = False  # the endpoint came after loud non-speech: check the speculation
    force_prefix: bool = False  # the free final contradicted stable_text: decode it again, held to it
    decoding: Decoding | None = None
    failed: str | None = None

    def move(self, what: str) -> None:
        """Take the transition ``what`` from the current state."""
        target = TRANSITIONS.get((self.state, what))
        if target is None:
            raise SessionStateError(f"segment {self.segment_id}: {what!r} is not a move from {self.state.value}")
        self.state = target

    @property
    def is_open(self) -> bool:
        """Speech not ended yet (listening or speculating)."""
        return self.state in (UtteranceState.LISTENING, UtteranceState.SPECULATING)

    @property
    def stable_text(self) -> str:
        return " ".join(self.stable)

    @property
    def hypothesis(self) -> list[str]:
        """The words of the latest partial."""
        return self.history[-1][1] if self.history else []

    def keeps_stable(self, words: list[str]) -> bool:
        """Whether ``words`` begin with the stable prefix clients were shown."""
        return words[: len(self.stable)] == self.stable

    def agree(self, end: int, words: list[str], lag: int) -> None:
        """Record a partial hypothesis over audio up to ``end``; the stable
        prefix grows to what it shares with one over at least ``lag``
        samples less audio (LocalAgreement, as in whisper_streaming, with a
        lag). Two partials 400 ms apart often agree on the same wrong last
        words, and a wrong stable prefix is forced on every later partial
        and, on conflict, on the final."""
        earlier = [h for e, h in self.history if e <= end - lag]
        if earlier:
            agreed = common_prefix(earlier[-1], words)
            if len(agreed) > len(self.stable):
                self.stable = agreed
        self.history.append((end, words))
