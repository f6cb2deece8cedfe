"""The verbose_json records both front doors speak: built here, serialised here.

A live stream's finals and a file's transcription use the same ``Segment``
(OpenAI's verbose_json segment, plus words) and the same ``Word`` (the
decoder's record, see ``gateway.inference.records``), made by one builder.
Times are seconds of stream or file audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.inference.records import Decoding, Word

__all__ = ["HOP", "Segment", "Transcription", "Word", "make_segment", "place_words"]

HOP = 160  # samples per Whisper mel frame at 16 kHz: the unit of a segment's ``seek``


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


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
    channel: int | None = None  # of a multichannel file: which channel it was said on
    label: str | None = None  # that channel's name
    speaker: str | None = None  # diarized: who said it (A, B, ..., a known speaker's name, or channel/A)
    # A live final's words, where the voice changed inside its utterance: each word's own speaker
    # (empty: every word is the segment's).
    word_speakers: tuple[str, ...] = ()

    def to_dict(self, words: bool = True, word_probability: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
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
        if self.channel is not None:
            out["channel"] = self.channel
        if self.speaker is not None:
            out["speaker"] = self.speaker
        if words:
            out["words"] = self.word_dicts(word_probability)
        return out

    def word_dicts(self, probability: bool = True) -> list[dict[str, Any]]:
        """Its words on the wire (with ``channel`` and ``speaker`` when it has them)."""
        extra: dict[str, Any] = {} if self.channel is None else {"channel": self.channel}
        if self.speaker is not None:
            extra["speaker"] = self.speaker
        out = [w.to_dict(probability) | extra for w in self.words]
        if self.word_speakers:
            for word, speaker in zip(out, self.word_speakers, strict=True):
                word["speaker"] = speaker
        return out


@dataclass(frozen=True)
class Transcription:
    """A whole file's result: the body of verbose_json."""

    text: str
    task: str
    language: str
    duration: float
    segments: list[Segment]


def place_words(words: Iterable[Word], offset: float, start: float, end: float) -> list[Word]:
    """Decoder words (times from ``offset``) in stream or file time, inside
    [start, end] and never going back in time."""
    out: list[Word] = []
    floor = start
    for w in words:
        s = min(max(offset + w.start, floor), end)
        e = min(max(offset + w.end, s), end)
        out.append(Word(w.word, s, e, w.probability))
        floor = s
    return out


def make_segment(
    segment_id: int,
    audio_start: int,
    text: str,
    tokens: Iterable[int],
    decoding: Decoding | None,
    words: Iterable[Word],
    offset: float,
    start: float,
    end: float,
    keep_words: bool = True,
) -> Segment:
    """The segment of decoded ``text`` spanning [start, end] (seconds).

    ``audio_start`` is the sample the decoded audio began at (its ``seek``),
    ``offset`` the same in seconds for the decoder's word times. With words,
    start and end shrink to the first and last word. ``decoding`` None: the
    decode failed, and the scores say so (no-speech probability 1).
    """
    placed = place_words(words, offset, start, end)
    if placed:
        start, end = placed[0].start, placed[-1].end
    d = decoding
    return Segment(
        id=segment_id,
        seek=audio_start // HOP,
        start=start,
        end=end,
        text=text,
        tokens=tuple(tokens),
        temperature=d.temperature if d else 0.0,
        avg_logprob=d.avg_logprob if d else 0.0,
        compression_ratio=d.compression_ratio if d else 0.0,
        no_speech_prob=d.no_speech_prob if d else 1.0,
        words=tuple(placed) if keep_words else (),
    )
