"""Which words of a transcript are sensitive, and of what kind (contract section 10).

Digits first: ``spoken.number_runs`` reads each run of words that says
digits, and a run is judged by its length, a checksum where one exists and
the words around it. A checksum alone misses real card numbers: Whisper
miscounts repeated digits (sixteen spoken ones came back as 15 or 24), so
a run of card-like length near card words ("card", "visa", "credit") is a
card number whatever its Luhn digit says. Kinds, in the order a run is
tried (the first that fits names it):

- ``pci``: 13 to 19 digits passing Luhn (python-stdnum), 14 or more in any
  context (tiny.en heard "card" as "current" and dropped two digits), or 8 or more in
  a sentence with card words (tiny.en wrote sixteen spoken ones as 36
  ones, base a card number as 11 digits and a word); 3 to 6 digits near expiry words (an expiry date: ``12/26``,
  "twelve twenty six"); 3 or 4 near security-code words (CVV);
- ``ssn``: 9 digits written ``123-45-6789``, or 9 digits near "social" or
  "SSN" that python-stdnum's US rules allow, or 7 to 11 near them (a
  miscount);
- ``phone``: digits a phone number may have (phonenumbers: US, or the UK
  with its leading 0 or 44), written with a phone's separators or said
  near phone words; or 7 to 13 near phone words (a miscount);
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

# "car" and "current": how tiny.en heard "card" in a call
CARD_WORDS = frozenset({"card", "visa", "mastercard", "amex", "discover", "credit", "debit", "maestro", "car", "current"})
EXPIRY_WORDS = frozenset({"expiry", "expiration", "expires", "expire", "expiring", "exp", "thru", "acquires"})
EXPIRY_ENDINGS = ("pires", "piry", "piration")  # base heard "expires" as "acquires", "Attack Pires"
CODE_WORDS = frozenset({"cvv", "cvc", "cvv2", "cid", "csc"})
SSN_WORDS = frozenset({"social", "ssn"})
PHONE_WORDS = frozenset({"phone", "call", "reach", "mobile", "cell", "telephone", "dial", "text", "callback", "fax"})

TLDS = frozenset({"com", "net", "org", "edu", "gov", "io", "co", "uk", "us", "info", "biz", "me", "ai", "de", "fr", "ca", "au"})
NOT_LOCAL = frozenset({"is", "was", "be", "are", "were", "me", "us", "it", "i", "we", "you", "him", "her", "them", "look", "here", "there"})
JOINERS = frozenset({"dot", "underscore", "dash", "hyphen"})  # said inside an address's local part

_LABEL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")  # a part of an address, as Whisper may write it
# "jane dot miller at fastmail dot com" written as one word: "jane.milleratfastmail.com"
_GLUED_EMAIL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)+at[a-z0-9-]+\.(?:" + "|".join(sorted(TLDS)) + ")")
_EDGES = "\"'()[]{}.,;:!?…-–—"
_SSN_WRITTEN = re.compile(r"\d{3}-\d{2}-\d{4}")
_PHONE_WRITTEN = re.compile(r"\+?\(?\d{1,4}\)?(?:[-. ]\d{2,4}){2,4}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    first: int  # the index of its first word
    end: int  # the index after its last word


def plain_word(word: str) -> str:
    return word.strip().strip(_EDGES).lower()


def check_kinds(kinds: Collection[str]) -> None:
    """Refuse (ValueError, naming them) kinds this detector does not know."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(
            f"unknown redaction kind(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)} "
            "(names and addresses are not redacted: that needs a named-entity model)"
        )


def find(words: Sequence[str], kinds: Collection[str], open_end: bool = False, said_from: int = 0) -> list[Finding]:
    """The sensitive spans of ``words`` (Whisper's words, leading spaces and
    punctuation attached) of the ``kinds`` asked for, in order, not overlapping.

    ``open_end``: more words may follow (a live final: the caller paused
    while reading a number out in groups). A run the words end with is then
    judged as the start of a longer one: near card, social or phone words
    it is redacted whatever its length so far, since a final cannot be
    taken back once the rest of the number comes. Only the words from
    ``said_from`` on (the newest final; those before are context) say what
    such a run is: "my social is 123 45" and then "your balance is 2,587"
    does not make the balance an SSN.
    """
    check_kinds(kinds)
    # Whisper's words split where its tokens do (" mail" ".com"): a piece
    # without a leading space belongs to the word before it.
    groups: list[list[int]] = []
    for i, piece in enumerate(words):
        if groups and piece and not piece[0].isspace():
            groups[-1][1] = i + 1
        else:
            groups.append([i, i + 1])
    whole = ["".join(words[a:b]) for a, b in groups]
    fresh = next((g for g, (a, b) in enumerate(groups) if b > said_from), len(groups))
    kept: list[Finding] = []
    for f in sorted(_find(whole, kinds, open_end, fresh), key=lambda f: (f.first, -f.end)):
        if not kept or f.first >= kept[-1].end:  # overlapping: the first (longest) wins
            kept.append(f)
    return [Finding(f.kind, groups[f.first][0], groups[f.end - 1][1]) for f in kept]


def _find(words: Sequence[str], kinds: Collection[str], open_end: bool, fresh: int) -> list[Finding]:
    plain = [plain_word(w) for w in words]
    found: list[Finding] = []
    runs = number_runs(list(words))
    for run in runs:
        kind = _judge(run, words, plain, kinds)
        if kind is None and open_end and run is runs[-1] and _ends(run, plain):
            kind = _unfinished(run, words, plain, kinds, fresh)
        if kind is not None:
            found.append(Finding(kind, run.first, run.end))
    if "email" in kinds:
        found += [Finding("email", i, i + 1) for i, w in enumerate(words) if _EMAIL.search(w)]
        found += [Finding("email", first, end) for first, end in _spoken_emails(plain)]
        found += [Finding("email", i, i + 1) for i, w in enumerate(plain) if _GLUED_EMAIL.fullmatch(w)]
    return found


def _judge(run: NumberRun, words: Sequence[str], plain: list[str], kinds: Collection[str]) -> str | None:
    digits, n = run.digits, len(run.digits)
    before, after = _context(words, plain, run)
    near = set(before + after)
    written = "".join(words[run.first : run.end]).strip().strip(_EDGES)
    if "pci" in kinds:
        if 13 <= n <= 19 and luhn.is_valid(digits) or n >= 14:
            return "pci"  # a run this long is a card number even when a miscount broke its checksum
        if n >= 8 and near & CARD_WORDS:
            return "pci"
        if 3 <= n <= 6 and (near & EXPIRY_WORDS or any(w.endswith(EXPIRY_ENDINGS) for w in near)):
            return "pci"
        if 3 <= n <= 4 and (near & CODE_WORDS or _security_code(before)):
            return "pci"
    if "ssn" in kinds:
        if n == 9 and (_SSN_WRITTEN.fullmatch(written) or (near & SSN_WORDS and ssn.is_valid(digits))):
            return "ssn"
        if 7 <= n <= 11 and n != 9 and near & SSN_WORDS:
            return "ssn"  # miscounted: tiny.en wrote nine spoken digits as ten
    if "phone" in kinds and _phone_digits(digits) and (_PHONE_WRITTEN.fullmatch(written) or near & PHONE_WORDS):
        return "phone"
    if "phone" in kinds and 7 <= n <= 13 and near & PHONE_WORDS:
        return "phone"  # miscounted: tiny.en wrote a ten-digit number as eight
    if "numbers" in kinds and n >= 3:
        return "numbers"
    return None


def _spoken_emails(plain: list[str]) -> list[tuple[int, int]]:
    """Addresses said rather than written: "jane dot doe at example dot com",
    "jane.doe at example.com" (the words' spans)."""
    spans = []
    for i, word in enumerate(plain):
        if word != "at" or i == 0 or "@" in plain[i - 1]:
            continue
        parts, j = [], i + 1
        while j < len(plain) and _LABEL.fullmatch(plain[j]):
            parts.append(plain[j])
            j += 1
            if j + 1 < len(plain) and plain[j] == "dot":
                j += 1
            else:
                break
        domain = ".".join(parts).split(".")
        local = plain[i - 1]
        if len(domain) < 2 or domain[-1] not in TLDS or not _LABEL.fullmatch(local) or local in NOT_LOCAL:
            continue
        first = i - 1
        while first >= 2 and plain[first - 1] in JOINERS and _LABEL.fullmatch(plain[first - 2]):
            first -= 2  # "jane dot doe", "jane underscore doe"
        spans.append((first, j))
    return spans


def _ends(run: NumberRun, plain: list[str]) -> bool:
    """Whether nothing but punctuation follows the run."""
    return not any(plain[run.end :])


def _unfinished(run: NumberRun, words: Sequence[str], plain: list[str], kinds: Collection[str], fresh: int) -> str | None:
    """The kind a run may be the first groups of, from the words before it
    from ``fresh`` on (None: none)."""
    before = _context(words, plain, run)[0]
    near = set(before[max(0, fresh - (run.first - len(before))) :])
    n = len(run.digits)
    if "pci" in kinds and n >= 4 and near & (CARD_WORDS | EXPIRY_WORDS):
        return "pci"
    if "ssn" in kinds and 3 <= n < 9 and near & SSN_WORDS:
        return "ssn"
    if "phone" in kinds and 3 <= n < 10 and near & PHONE_WORDS:
        return "phone"
    return None


def _context(words: Sequence[str], plain: list[str], run: NumberRun) -> tuple[list[str], list[str]]:
    """The words that may say what a run is: up to ``CONTEXT_WORDS`` on each
    side, within its sentence ("...the code is 737. I ordered 250 chairs":
    250 is not a code)."""
    first = run.first
    while first > max(0, run.first - CONTEXT_WORDS) and not ends_sentence(words[first - 1]):
        first -= 1
    end = run.end
    if not ends_sentence(words[run.end - 1]):
        while end < min(len(words), run.end + CONTEXT_WORDS):
            end += 1
            if ends_sentence(words[end - 1]):
                break
    return plain[first : run.first], plain[run.end : end]


def ends_sentence(word: str) -> bool:
    return word.rstrip().rstrip("\"')]").endswith((".", "?", "!"))


def _security_code(before_words: list[str]) -> bool:
    """'security code' (or 'code on the back') in the words just before the run."""
    before = " ".join(before_words)
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
