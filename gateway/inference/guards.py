"""Judging what Whisper produced: loops, stock phrases, compression.

A short encoder window can make the decoder loop ("ask not to ask not to
..."), and over noise, breathing or silence Whisper says stock phrases
("you", "Thank you."). The decoder asks these questions of every result
before it trusts it; see ``gateway.inference.decoder`` for how the answers
are used.

Non-speech thresholds were set on the shared clips: Whisper's own pair
(no-speech 0.6, log-prob -1.0) let "you" over silence through (0.99, -0.81);
real speech never had both no-speech > 0.6 and log-prob < -0.7 with tiny.en
or base.
"""

from __future__ import annotations

import zlib

# What Whisper says over noise, breathing or silence (tiny.en and base on
# silence, hum, tones, clicks and noise said "you", "I'm", "Okay.", "Yeah.").
# Said with a no-speech probability above this, they are judged not speech.
STOCK_PHRASES = frozenset(
    "you|thank you|thanks|thank you for watching|thanks for watching|bye|okay|ok|yeah|so|oh|uh|um|hmm|i'm|i".split("|")
)
HALLUCINATION_NO_SPEECH = 0.5


def is_stock_phrase(text: str) -> bool:
    words = "".join(c if c.isalnum() or c in " '" else " " for c in text.lower()).split()
    return " ".join(words) in STOCK_PHRASES


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def is_repetition_loop(words: list[str]) -> bool:
    """True when the text ends in a loop a short window can cause.

    Real speech repeats single words ("words words words words"), so only
    phrases count: a block of 3+ words repeated 3 times in a row, or a block
    of 4+ words said twice in a row at the very end.
    """
    words = [w.strip(".,!?;:\"'").lower() for w in words]
    n = len(words)
    for size in range(3, n // 3 + 1):
        for start in range(0, n - 3 * size + 1):
            block = words[start : start + size]
            if block == words[start + size : start + 2 * size] == words[
                start + 2 * size : start + 3 * size
            ]:
                return True
    for size in range(4, n // 2 + 1):
        if words[n - 2 * size : n - size] == words[n - size :]:
            return True
    return False


def trim_repetition(words: list[str]) -> list[str]:
    """The words up to the end of the first copy of a block that then repeats to the end."""
    n = len(words)
    key = [w.strip(".,!?;:\"'").lower() for w in words]
    for start in range(n):
        for size in range(1, (n - start) // 2 + 1):
            block = key[start : start + size]
            rest = key[start + size :]
            if rest[:size] == block and all(
                rest[i] == block[i % size] or (i == len(rest) - 1 and block[i % size].startswith(rest[i]))
                for i in range(len(rest))
            ):  # copies to the end, the last one possibly cut short
                return words[: start + size]
    return words


