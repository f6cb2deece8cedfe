"""What a decode is asked for and what it returns: small immutable records.

``Word`` is the one word record of the project: the decoder makes it (times
from the start of the decoded audio) and the wire carries it (times in
stream or file time, see ``gateway.core.records``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecodeOptions:
    language: str | None = None  # None: detect from this audio
    task: str = "transcribe"  # or "translate"
    prompt: str | None = None  # context: user prompt and/or previous text
    prefix: str | None = None  # text the hypothesis must start with
    beam_size: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    word_timestamps: bool = True
    segment_timestamps: bool = False  # split into sentence segments (batch)
    short_window: bool = True
    # The short window holds the audio plus padding, and at least this much.
    # Measured on the shared English clips (python -m bench.window): with
    # only audio + 2 s, 9 of 26 greedy decodes looped; a 10 s minimum cost
    # 0.6 WER points against the full window (tiny.en and base), 15 s at most
    # 0.3, for half the encoder time. Partials use 10 s, finals 15 s.
    min_window_s: float = 15.0
    # False for partials: one cheap attempt; a looping result is trimmed to
    # its first copy instead of being decoded again.
    fallback: bool = True
    # Greedy partials of base, after a long context, sometimes go through
    # the lone-space token and then a word piece ("disdain nd the tillage",
    # "from ndou"); real text never needs it mid-sentence. Partials suppress
    # it; beam-5 finals were not seen doing this and keep Whisper's rules.
    suppress_lone_space: bool = False
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0  # below: decode again (Whisper's fallback rule)
    silence_log_prob_threshold: float = -0.7  # with no_speech_threshold: not speech
    compression_ratio_threshold: float = 2.4


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


@dataclass(frozen=True)
class Word:
    word: str  # with its leading space, as Whisper spells it
    start: float
    end: float
    probability: float

    def to_dict(self, probability: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"word": self.word, "start": _t(self.start), "end": _t(self.end)}
        if probability:
            out["probability"] = round(self.probability, 4)
        return out


@dataclass(frozen=True)
class DecodedSegment:
    start: float  # seconds from the start of the decoded audio
    end: float
    text: str
    tokens: tuple[int, ...]
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Decoding:
    segments: tuple[DecodedSegment, ...]
    language: str
    language_probability: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    is_speech: bool
    window: str  # "short" or "full": which encoder window produced it
    duration: float
    attempts: int = 1

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(t for s in self.segments for t in s.tokens)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)
