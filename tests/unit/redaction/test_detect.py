"""The detector on transcript text, as Whisper writes what was said (model-free)."""

from __future__ import annotations

import pytest

from redaction.detect import KINDS, Finding, find


def words(text: str) -> list[str]:
    return [" " + w for w in text.split()]


def kinds_found(text: str, kinds=KINDS) -> list[tuple[str, str]]:
    said = words(text)
    return [(f.kind, "".join(said[f.first : f.end]).strip()) for f in find(said, kinds)]


@pytest.mark.parametrize(("said", "expected"), [
    # card numbers: Luhn-valid, or miscounted near card words
    ("my card number is 4111 1111 1111 1111 thanks", [("pci", "4111 1111 1111 1111")]),
    ("the visa is 411111111111111111111111 okay", [("pci", "411111111111111111111111")]),  # 24 ones: miscounted
    ("it is four one one one one one one one one one one one one one one one", [("pci", "four one one one one one one one one one one one one one one one")]),
    ("amex 3782 822463 10005", [("pci", "3782 822463 10005")]),
    ("my current number is 4539, 148, 0343, 647, thanks", [("pci", "4539, 148, 0343, 647,")]),  # "card" misheard, digits lost
    ("my social security number is 1-2-3-4-5-6-7-8-8-5.", [("ssn", "1-2-3-4-5-6-7-8-8-5.")]),  # ten of nine
    ("it expires 12/26 and", [("pci", "12/26")]),
    ("expiry date twelve twenty six", [("pci", "twelve twenty six")]),
    ("the security code is 737", [("pci", "737")]),
    ("the code on the back is four two one", [("pci", "four two one")]),
    # SSNs: written with hyphens, or said near "social"
    ("my social is 123-45-6789 yes", [("ssn", "123-45-6789")]),
    ("my social security number is one two three four five six seven eight nine", [("ssn", "one two three four five six seven eight nine")]),
    # phones: written like one, or said near phone words
    ("call me at 555-123-4567 tomorrow", [("phone", "555-123-4567")]),
    ("my phone is five five five one two three four five six seven", [("phone", "five five five one two three four five six seven")]),
    ("reach me on 020 7946 0958", [("phone", "020 7946 0958")]),
    # e-mail
    ("write to jane.doe@example.com please", [("email", "jane.doe@example.com")]),
    ("my email is jane dot doe at example dot com thanks", [("email", "jane dot doe at example dot com")]),  # said
    ("it's jane.doe at example.com.", [("email", "jane.doe at example.com.")]),
    ("my email is Jane.milleratfastmail.com", [("email", "Jane.milleratfastmail.com")]),  # "at" glued
    # what base made of a call's numbers: currency signs, letters for digits, "expires" misheard
    ("the card number is $5.592, $3.022, $5.841, $9.723.", [("pci", "$5.592, $3.022, $5.841, $9.723.")]),
    ("my social security number is 08-5-I-N 60 0817", [("ssn", "08-5-I-N 60 0817")]),
    ("It acquires 01-25", [("pci", "01-25")]),
    # and tiny.en: digit words hyphenated, "card" as "car" with zeros looping, ten digits as eight
    ("it's a credit card, five-five-zero-four, eight-seven-six-four.", [("pci", "five-five-zero-four, eight-seven-six-four.")]),
    ("my car number is 5.185, 1.24.0.0.0.0.0.0.0.0.0.0.0", [("pci", "5.185, 1.24.0.0.0.0.0.0.0.0.0.0.0")]),
    ("my phone number is 3-3-2-6-0-1-6-8.", [("phone", "3-3-2-6-0-1-6-8.")]),
])
def test_sensitive_spans_are_found_and_named(said, expected):
    assert kinds_found(said) == expected


@pytest.mark.parametrize("said", [
    "that costs 4.99 dollars",
    "we shipped 250 units in 2024",
    "your balance is 1,250.75",
    "the meeting is on the 14th at 3 pm",
    "order number 12345",
    "he was born in 1984",
    "meet me at noon at example street",
    "I was at home.com yesterday",
])
def test_decoys_stay_unless_every_number_is_asked_for(said):
    assert kinds_found(said, ["pci", "ssn", "phone", "email"]) == []


def test_a_runs_context_ends_with_its_sentence():
    assert kinds_found("the security code is 737. I ordered 250 chairs.", ["pci"]) == [("pci", "737.")]
    assert kinds_found("the security code is 737 and I ordered 250 chairs", ["pci"]) == [("pci", "737"), ("pci", "250")]


def test_numbers_takes_every_run_of_three_digits_or_more():
    assert kinds_found("250 units, 12 boxes and 4.99", ["numbers"]) == [("numbers", "250"), ("numbers", "4.99")]
    assert kinds_found("card 4111 1111 1111 1111 and 250 more", ["pci", "numbers"]) == [
        ("pci", "4111 1111 1111 1111"), ("numbers", "250"),
    ]


def test_only_the_kinds_asked_for_and_unknown_kinds_are_refused():
    assert kinds_found("my social is 123-45-6789", ["pci"]) == []
    assert find(words("4111111111111111"), []) == []
    with pytest.raises(ValueError, match="unknown redaction kind"):
        find(words("hello"), ["pii"])
    assert find(words("card 4111111111111111"), ["pci"]) == [Finding("pci", 1, 2)]


def test_a_word_whisper_split_into_pieces_is_judged_whole():
    pieces = [" write", " to", " Smith", " at", " mail", ".com", " or", " card", " 4111", "-1111", "-1111", "-1111"]
    found = find(pieces, ["email", "pci"])
    assert [(f.kind, "".join(pieces[f.first : f.end])) for f in found] == [
        ("email", " Smith at mail.com"), ("pci", " 4111-1111-1111-1111"),
    ]
