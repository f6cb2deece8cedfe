"""What replaces the sensitive words, in finals, partials and whole files (contract section 10).

A span of words is replaced by one placeholder word naming its kind
(``[PCI]``, ``[SSN]``, ``[PHONE]``, ``[EMAIL]``, ``[NUMBER]``); the word
keeps the first word's leading space and the last word's trailing
punctuation, so that the text still reads as a sentence. The caller maps
the spans onto its own records (a placeholder takes the time span of the
words it replaces).

A live track is redacted by a ``Redactor``, which remembers the last words
of the track's finals: a number read out in groups may be cut by a pause
into two finals, and the second is judged with the first's words before it
(a run that crosses the cut is one run). A final's trailing run is judged
as unfinished (``detect.find``'s ``open_end``). A partial withholds more: a
run of digits that more words could still make sensitive (it ends the
partial, or too few words follow it for its context to be known) shows as
``[...]`` until the final decides, so that not even the first digits of a
card number are shown.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .detect import CONTEXT_WORDS, check_kinds, ends_sentence, find, plain_word
from .spoken import number_runs

PLACEHOLDERS = {"pci": "[PCI]", "ssn": "[SSN]", "phone": "[PHONE]", "email": "[EMAIL]", "numbers": "[NUMBER]"}
WITHHELD = "[...]"  # digits a partial does not show until they are decided
DIGIT_KINDS = frozenset({"pci", "ssn", "phone", "numbers"})
EMAIL_WORDS = frozenset({"email", "e-mail", "address"})
_TRAILING = ".,;:!?\"')]…"


@dataclass(frozen=True)
class Replacement:
    first: int  # the index of the first word it replaces
    end: int  # the index after the last
    word: str  # the placeholder word, spacing and trailing punctuation kept


def placeholder_word(words: Sequence[str], first: int, end: int, label: str) -> str:
    """``label`` written in place of ``words[first:end]``."""
    head = words[first]
    lead = head[: len(head) - len(head.lstrip())]
    tail = words[end - 1].rstrip()
    trail = tail[len(tail.rstrip(_TRAILING)) :]
    if "@" in tail:  # an address's last character is never punctuation of ours to keep
        trail = trail.lstrip(".")
    return lead + label + trail


def replacements(words: Sequence[str], kinds: Collection[str], open_end: bool = False, said_from: int = 0) -> list[Replacement]:
    """One replacement per sensitive span of ``words``, in order."""
    return [
        Replacement(f.first, f.end, placeholder_word(words, f.first, f.end, PLACEHOLDERS[f.kind]))
        for f in find(words, kinds, open_end, said_from)
    ]


def within(found: Sequence[Replacement], words: Sequence[str], at: int) -> list[Replacement]:
    """Replacements found in a longer text, as they fall in ``words``, its part
    from index ``at``: a span crossing the part's edge is cut there, and its
    placeholder written from the part's own words."""
    out = []
    for r in found:
        first, end = max(r.first, at) - at, min(r.end, at + len(words)) - at
        if first < end:
            out.append(Replacement(first, end, placeholder_word(words, first, end, label_of(r.word))))
    return out


def apply(words: Sequence[str], found: Sequence[Replacement]) -> list[str]:
    """``words`` with each replacement made (one word per replaced span)."""
    out: list[str] = []
    at = 0
    for r in found:
        out.extend(words[at : r.first])
        out.append(r.word)
        at = r.end
    out.extend(words[at:])
    return out


class Redactor:
    """One live track's redaction: its finals in order, and partials between them."""

    def __init__(self, kinds: Collection[str]):
        check_kinds(kinds)
        self.kinds = frozenset(kinds)
        self._before: list[str] = []  # the last words of the finals so far (context, never shown)

    def final(self, words: Sequence[str]) -> list[Replacement]:
        """The replacements in a final's words (Whisper's: a piece without a
        leading space continues the word before it); they become the context of the next."""
        found = self._judged(words, _spaced(words))
        self._before = (self._before + _spaced(words))[-2 * CONTEXT_WORDS :]  # pieces: a word may be two
        return found

    def partial(self, words: Sequence[str]) -> list[Replacement]:
        """The replacements in a partial's words (whole words, its text split
        at spaces): the sensitive spans, and the digits not yet decided (and,
        with ``email``, what follows "email" in a sentence not yet ended), withheld."""
        found = self._judged(words, [" " + w for w in words])
        if "email" in self.kinds:
            found = self._address_withheld(words, found)
        if not self.kinds & DIGIT_KINDS:
            return found
        taken = [(r.first, r.end) for r in found]
        for run in number_runs(list(words)):
            if any(first < run.end and run.first < end for first, end in taken):
                continue
            undecided = run.end == len(words) or (len(run.digits) >= 3 and len(words) - run.end < CONTEXT_WORDS)
            if undecided:
                found.append(Replacement(run.first, run.end, placeholder_word(words, run.first, run.end, WITHHELD)))
        return sorted(found, key=lambda r: r.first)

    @staticmethod
    def _address_withheld(words: Sequence[str], found: list[Replacement]) -> list[Replacement]:
        """An address said aloud is known only once "at <domain>" is heard, so
        the words after "email" (or "address") in the sentence the partial
        ends with are withheld: "my email is jane dot doe" shows "my email [...]".
        """
        if not words or ends_sentence(words[-1]):
            return found  # the sentence is said: the address, if any, was judged
        start = len(words)
        for i in range(len(words) - 1, -1, -1):
            if i < len(words) - 1 and ends_sentence(words[i]):
                break  # the partial's last sentence begins after this word
            if plain_word(words[i]) in EMAIL_WORDS:
                start = i + 1
                break
        if start >= len(words):
            return found
        kept = [r for r in found if r.end <= start]
        return kept + [Replacement(start, len(words), placeholder_word(words, start, len(words), WITHHELD))]

    def _judged(self, words: Sequence[str], pieces: list[str]) -> list[Replacement]:
        """Replacements in ``words`` (read as ``pieces``) judged with the words
        said before them; the last run may go on (``detect.find``'s open_end)."""
        shift = len(self._before)
        found = replacements(self._before + pieces, self.kinds, open_end=True, said_from=shift)
        return within(found, words, shift)  # a span wholly in an earlier final was judged there


def _spaced(words: Sequence[str]) -> list[str]:
    """A final's pieces, the first starting a word (it does not continue the final before)."""
    pieces = list(words)
    if pieces and not pieces[0][:1].isspace():
        pieces[0] = " " + pieces[0]
    return pieces


def label_of(word: str) -> str:
    """The bracketed label in a placeholder word ("[PCI]" of " [PCI].")."""
    return word[word.index("[") : word.index("]") + 1]


def redact_words(words: Sequence[str], kinds: Collection[str]) -> list[str]:
    """A whole text's words (a file, nothing more to come), redacted."""
    return apply(words, replacements(words, kinds))
