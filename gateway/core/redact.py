"""Redacted records: the ``redaction`` package's replacements made on segments and partials.

Every path that tells a transcript goes through here when a stream or a
request asks for redaction (docs/protocol.md section 10): a live track's
finals and partials (``TrackRedaction``), a file's segments
(``redact_segments``), text told as it is decoded (``redact_text``). What
a placeholder word replaces, it replaces everywhere: the segment's text,
its words (the placeholder keeps their time span) and its tokens, which
would spell the digits again (a redacted segment has none).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace

from gateway.inference.records import Word
from redaction.replace import Redactor, Replacement, apply, replacements, within

from .records import Segment

_PIECES = re.compile(r"\s*\S+")  # a text's words, each with the spaces before it


def pieces(text: str) -> list[str]:
    """``text`` as words with their leading spaces (joined, the text again, less trailing spaces)."""
    return _PIECES.findall(text)


def redact_segment(segment: Segment, found: Sequence[Replacement]) -> Segment:
    """``segment`` with the replacements (over its words, or its text's
    pieces when it has no words) made."""
    if not found:
        return segment
    if not segment.words:
        return replace(segment, text="".join(apply(pieces(segment.text), found)), tokens=())
    words: list[Word] = []
    speakers: list[str] = []
    at = 0
    for r in found:
        words.extend(segment.words[at : r.first])
        speakers.extend(segment.word_speakers[at : r.first])
        spanned = segment.words[r.first : r.end]
        words.append(Word(r.word, spanned[0].start, spanned[-1].end, min(w.probability for w in spanned)))
        speakers.extend(segment.word_speakers[r.first : r.first + 1])
        at = r.end
    words.extend(segment.words[at:])
    speakers.extend(segment.word_speakers[at:])
    return replace(
        segment, text="".join(w.word for w in words), tokens=(), words=tuple(words), word_speakers=tuple(speakers)
    )


def segment_words(segment: Segment) -> list[str]:
    """What redaction reads of a segment: its words, or its text's pieces."""
    return [w.word for w in segment.words] if segment.words else pieces(segment.text)


def redact_segments(segments: Sequence[Segment], kinds: Collection[str]) -> list[Segment]:
    """A whole file's segments (in time order), redacted: each channel's
    words are read as one text, so that a number cut by a segment boundary
    is one run (each segment's part of it gets its own placeholder)."""
    if not kinds:
        return list(segments)
    out = list(segments)
    for channel in {s.channel for s in segments}:
        indices = [i for i, s in enumerate(segments) if s.channel == channel]
        texts = [segment_words(segments[i]) for i in indices]
        spoken = [w for t in texts for w in t]
        found = replacements(spoken, kinds, open_end=True)  # a decode cut short ends in a number's first digits
        at = 0
        for i, words in zip(indices, texts, strict=True):
            out[i] = redact_segment(segments[i], within(found, words, at))
            at += len(words)
    return out


def redact_text(redactor: Redactor, text: str) -> str:
    """Text told as it is decoded (a file's pieces, in order): each piece a final of ``redactor``."""
    words = pieces(text)
    return "".join(apply(words, redactor.final(words))) + text[len(text.rstrip()) :]


class TrackRedaction:
    """One live track's finals and partials, redacted."""

    def __init__(self, kinds: Collection[str]):
        self._redactor = Redactor(kinds)

    def final(self, segment: Segment) -> Segment:
        return redact_segment(segment, self._redactor.final(segment_words(segment)))

    def partial(self, words: Sequence[str], stable: int) -> tuple[str, str]:
        """A partial's text and stable_text: ``stable`` of its ``words`` are
        stable, but never from the first replaced or withheld word on."""
        found = self._redactor.partial(words)
        cut = min([stable] + [r.first for r in found])
        return " ".join(apply(words, found)), " ".join(words[:cut])
