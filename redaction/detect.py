"""Which words of a transcript are sensitive, and of what kind (contract section 10).

Digits first: ``spoken.number_runs`` reads each run of words that says
digits, and a run is judged by its length, a checksum where one exists and
the words around it. A checksum alone misses real card numbers: Whisper
miscounts repeated digits (sixteen spoken ones came back as 15 or 24), so
a run of card-like length near card words ("card", "visa", "credit") is a
card number whatever its Luhn digit says. Kinds, in the order a run is
tried (the first that fits names it):

- ``pci``: 13 to 19 digits passing Luhn (python-stdnum), or 12 to 24 near
  card words; 3 to 6 digits near expiry words (an expiry date: ``12/26``,
  "twelve twenty six"); 3 or 4 near security-code words (CVV);
- ``ssn``: 9 digits written ``123-45-6789``, or 9 digits near "social" or
  "SSN" that python-stdnum's US rules allow;
- ``phone``: digits a phone number may have (phonenumbers: US, or the UK
  with its leading 0 or 44), written with a phone's separators or said
  near phone words;
- ``email``: a word with an address in it;
- ``numbers``: any run of 3 digits or more.

Only the kinds asked for are found. Names and street addresses are not:
that needs a named-entity model.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import luhn
from stdnum.us import ssn

from .spoken import NumberRun, number_runs

KINDS = ("pci", "ssn", "phone", "email", "numbers")
CONTEXT_WORDS = 8  # words on each side of a run that may say what it is

CARD_WORDS = frozenset({"card", "visa", "mastercard", "amex", "discover", "credit", "debit", "maestro"})
EXPIRY_WORDS = frozenset({"expiry", "expiration", "expires", "expire", "expiring", "exp", "thru"})
CODE_WORDS = frozenset({"cvv", "cvc", "cvv2", "cid", "csc"})
SSN_WORDS = frozenset({"social", "ssn"})
PHONE_WORDS = frozenset({"phone", "call", "reach", "mobile", "cell", "telephone", "dial", "text", "callback", "fax"})

_EDGES = "\"'()[]{}.,;:!?…-–—"
_SSN_WRITTEN = re.compile(r"\d{3}-\d{2}-\d{4}")
_PHONE_WRITTEN = re.compile(r"\+?\(?\d{1,4}\)?(?:[-. ]\d{2,4}){2,4}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    first: int  # the index of its first word
    end: int  # the index after its last word


def _plain(word: str) -> str:
    return word.strip().strip(_EDGES).lower()


def check_kinds(kinds: Collection[str]) -> None:
    """Refuse (ValueError, naming them) kinds this detector does not know."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(
            f"unknown redaction kind(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)} "
            "(names and addresses are not redacted: that needs a named-entity model)"
        )


def find(words: Sequence[str], kinds: Collection[str], open_end: bool = False) -> list[Finding]:
    """The sensitive spans of ``words`` (Whisper's words, leading spaces and
    punctuation attached) of the ``kinds`` asked for, in order, not overlapping.

    ``open_end``: more words may follow (a live final: the caller paused
    while reading a number out in groups). A run the words end with is then
    judged as the start of a longer one: near card, social or phone words
    it is redacted whatever its length so far, since a final cannot be
    taken back once the rest of the number comes.
    """
    check_kinds(kinds)
    plain = [_plain(w) for w in words]
    found: list[Finding] = []
    runs = number_runs(list(words))
    for run in runs:
        kind = _judge(run, words, plain, kinds)
        if kind is None and open_end and run is runs[-1] and _ends(run, plain):
            kind = _unfinished(run, plain, kinds)
        if kind is not None:
            found.append(Finding(kind, run.first, run.end))
    if "email" in kinds:
        found += [Finding("email", i, i + 1) for i, w in enumerate(words) if _EMAIL.search(w)]
    return sorted(found, key=lambda f: f.first)


def _judge(run: NumberRun, words: Sequence[str], plain: list[str], kinds: Collection[str]) -> str | None:
    digits, n = run.digits, len(run.digits)
    near = set(plain[max(0, run.first - CONTEXT_WORDS) : run.first] + plain[run.end : run.end + CONTEXT_WORDS])
    written = "".join(words[run.first : run.end]).strip().strip(_EDGES)
    if "pci" in kinds:
        if 13 <= n <= 19 and luhn.is_valid(digits):
            return "pci"
        if 12 <= n <= 24 and near & CARD_WORDS:
            return "pci"
        if 3 <= n <= 6 and near & EXPIRY_WORDS:
            return "pci"
        if 3 <= n <= 4 and (near & CODE_WORDS or _security_code(plain, run)):
            return "pci"
    if "ssn" in kinds and n == 9:
        if _SSN_WRITTEN.fullmatch(written) or (near & SSN_WORDS and ssn.is_valid(digits)):
            return "ssn"
    if "phone" in kinds and _phone_digits(digits) and (_PHONE_WRITTEN.fullmatch(written) or near & PHONE_WORDS):
        return "phone"
    if "numbers" in kinds and n >= 3:
        return "numbers"
    return None


def _ends(run: NumberRun, plain: list[str]) -> bool:
    """Whether nothing but punctuation follows the run."""
    return not any(plain[run.end :])


def _unfinished(run: NumberRun, plain: list[str], kinds: Collection[str]) -> str | None:
    """The kind a run may be the first groups of, from the words before it (None: none)."""
    near = set(plain[max(0, run.first - CONTEXT_WORDS) : run.first])
    n = len(run.digits)
    if "pci" in kinds and n >= 4 and near & (CARD_WORDS | EXPIRY_WORDS):
        return "pci"
    if "ssn" in kinds and 3 <= n < 9 and near & SSN_WORDS:
        return "ssn"
    if "phone" in kinds and 3 <= n < 10 and near & PHONE_WORDS:
        return "phone"
    return None


def _security_code(plain: list[str], run: NumberRun) -> bool:
    """'security code' (or 'code on the back') in the words just before the run."""
    before = " ".join(plain[max(0, run.first - CONTEXT_WORDS) : run.first])
    return "security code" in before or ("code" in before and "back" in before)


def _phone_digits(digits: str) -> bool:
    """Whether the digits may be a US or UK phone number (phonenumbers' length rules)."""
    candidates: list[tuple[str, str | None]] = []
    if len(digits) == 10:
        candidates.append(("+1" + digits, None))
    if len(digits) == 11 and digits.startswith("1"):
        candidates.append(("+" + digits, None))
    if digits.startswith("0") and len(digits) in (10, 11):
        candidates.append((digits, "GB"))
    if digits.startswith("44") and len(digits) in (11, 12):
        candidates.append(("+" + digits, None))
    for text, region in candidates:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(text, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False
