"""The digits a run of transcript words says, however Whisper wrote them.

A card number read aloud comes back as ``4111 1111 1111 1111``,
``4,111,111,111,111,111``, ``4111-1111-1111-1111`` or ``four one one one
...``; a phone number as ``555-123-4567`` or ``five five five, one two
three...``; an SSN as ``123-45-6789`` or ``123456789``. ``number_runs``
finds the runs of consecutive words that say digits and the digits they
say, in order, with the words they span, so that a detector can judge the
digits (length, checksum, context) and a redactor replace exactly those
words. Spoken forms: the digit words (``zero`` and ``oh`` too), the teens
and tens (``twenty three`` is ``23``), ``double`` and ``triple`` (``double
five`` is ``55``). Punctuation around a word, and the separators inside a
numeral (``,`` ``.`` ``-`` ``/``), do not end a run; any other word does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}
TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9"}
REPEATS = {"double": 2, "triple": 3}

_NUMERAL = re.compile(r"\d+(?:[,./-]\d+)*")  # a numeral as Whisper writes one: digits, separators between
# Digits spelled with stray letters between hyphens ("08-5-I-N": "nine" heard as a letter): the digits count.
_LETTERED = re.compile(r"(?=.*\d)(?:\d+|[a-z])(?:-(?:\d+|[a-z]))+")
_EDGES = "\"'()[]{}.,;:!?…-–—$£€#"  # currency signs too: base wrote a card's groups as "$5.592, $3.022"


@dataclass(frozen=True)
class NumberRun:
    first: int  # the index of its first word
    end: int  # the index after its last word
    digits: str  # what they say, in order ("4111111111111111")


def _spoken(word: str) -> tuple[str, str | None]:
    """What one word is: ("digits", its digits), ("tens", its tens digit),
    ("repeat", the count), or ("other", None)."""
    w = word.strip().strip(_EDGES).lower()
    if not w:
        return "skip", None  # a lone dash or comma between digits
    if _NUMERAL.fullmatch(w) or _LETTERED.fullmatch(w):
        return "digits", re.sub(r"\D", "", w)
    hyphenated = w.split("-")
    if len(hyphenated) == 2 and hyphenated[0] in TENS and hyphenated[1] in UNITS:  # "twenty-three"
        return "digits", TENS[hyphenated[0]] + UNITS[hyphenated[1]]
    if len(hyphenated) > 1 and all(part in UNITS for part in hyphenated):  # "five-five-zero-four"
        return "digits", "".join(UNITS[part] for part in hyphenated)
    if w in UNITS:
        return "digits", UNITS[w]
    if w in TEENS:
        return "digits", TEENS[w]
    if w in TENS:
        return "tens", TENS[w]
    if w in REPEATS:
        return "repeat", str(REPEATS[w])
    return "other", None


def number_runs(words: list[str]) -> list[NumberRun]:
    """The runs of words that say digits, in order (see the module's doc).

    ``words`` are a transcript's words as Whisper spells them (leading
    spaces, punctuation attached). A run ends at any other word; a lone
    "o" or "oh" only counts inside a run or next to digits, so that the
    interjection is not a zero.
    """
    runs: list[NumberRun] = []
    start: int | None = None
    digits = ""
    pending_tens: str | None = None  # "twenty" waits for its unit
    repeat = 1
    last_digit_word = -1

    def close(at: int) -> None:
        nonlocal start, digits, pending_tens, repeat
        if pending_tens is not None:
            digits += pending_tens + "0"
        if start is not None and digits:
            runs.append(NumberRun(start, last_digit_word + 1, digits))
        start, digits, pending_tens, repeat = None, "", None, 1

    kinds = [_spoken(w) for w in words]
    for i, (kind, value) in enumerate(kinds):
        if kind in ("digits", "tens") and words[i].strip().strip(_EDGES).lower() in ("o", "oh") and start is None:
            following = kinds[i + 1][0] if i + 1 < len(kinds) else "other"
            if following not in ("digits", "tens"):
                continue  # "oh" on its own: an interjection
        if kind == "skip":
            continue
        if kind == "other":
            close(i)
            continue
        if start is None:
            start = i
        assert value is not None
        if kind == "repeat":
            repeat = int(value)
            continue
        if kind == "tens":
            if pending_tens is not None:
                digits += pending_tens + "0"
            pending_tens = value
        elif pending_tens is not None and len(value) == 1:
            digits += pending_tens + value  # "twenty" "three"
            pending_tens = None
        else:
            if pending_tens is not None:
                digits += pending_tens + "0"
                pending_tens = None
            digits += value[0] * repeat + value[1:] if repeat > 1 else value
        repeat = 1
        last_digit_word = i
    close(len(words))
    return runs
