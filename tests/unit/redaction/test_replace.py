"""Placeholders, and what a live track shows of a number as it is said (model-free)."""

from __future__ import annotations

import re

from redaction.replace import WITHHELD, Redactor, apply, redact_words


def words(text: str) -> list[str]:
    return [" " + w for w in text.split()]


def shown(redactor: Redactor, text: str, final: bool) -> str:
    said = words(text) if final else text.split()
    found = redactor.final(said) if final else redactor.partial(said)
    return "".join(apply(said, found)) if final else " ".join(apply(said, found))


def test_a_placeholder_keeps_the_spacing_and_the_sentence_punctuation():
    assert "".join(redact_words(words("my card is 4111-1111-1111-1111. Thanks."), {"pci"})) == " my card is [PCI]. Thanks."
    assert "".join(redact_words(words("call (555) 123-4567, please"), {"phone"})) == " call [PHONE], please"
    assert "".join(redact_words(words("write to jane@example.com soon"), {"email"})) == " write to [EMAIL] soon"


def test_a_number_read_out_across_two_finals_is_redacted_in_both():
    r = Redactor({"pci"})
    assert shown(r, "my card number is 4111 1111", final=True) == " my card number is [PCI]"
    assert shown(r, "1111 1111. That's it.", final=True) == " [PCI]. That's it."
    # a decoy after it is judged on its own
    assert shown(r, "and the total was 42.50 dollars", final=True) == " and the total was 42.50 dollars"


def test_an_ssn_and_a_phone_number_cut_by_a_pause_are_redacted_in_both_finals():
    r = Redactor({"ssn", "phone"})
    assert shown(r, "my social is 123 45", final=True) == " my social is [SSN]"
    assert shown(r, "6789", final=True) == " [SSN]"
    assert shown(r, "you can call me on 555 123", final=True) == " you can call me on [PHONE]"
    assert shown(r, "4567 any time", final=True) == " [PHONE] any time"


def test_a_partial_never_shows_the_first_digits_of_a_card_number():
    r = Redactor({"pci"})
    growing = [
        "my card number is four",
        "my card number is 4111",
        "my card number is 4111 1111 1111",
        "my card number is 4111 1111 1111 1111 and",
    ]
    for text in growing:
        out = shown(r, text, final=False)
        assert not re.search(r"\d|four", out), out
    assert shown(r, growing[-1], final=False) == "my card number is [PCI] and"
    assert shown(r, "my card number is four", final=False) == f"my card number is {WITHHELD}"


def test_a_partial_shows_decided_numbers_and_words_and_withholds_undecided_ones():
    r = Redactor({"pci", "ssn"})
    assert shown(r, "one moment please", final=False) == "one moment please"  # one digit, followed: decided
    assert shown(r, "it costs 4.99 and", final=False) == f"it costs {WITHHELD} and"  # a card word may follow
    long_after = "it costs 4.99 and that is all for today my friend ok"
    assert shown(r, long_after, final=False) == long_after  # eight words on: nothing can make it a card number


def test_without_digit_kinds_a_partial_withholds_nothing():
    r = Redactor({"email"})
    assert shown(r, "my card is 4111", final=False) == "my card is 4111"


def test_numbers_redacts_every_run_of_three_digits_or_more():
    out = "".join(redact_words(words("we have 12 chairs and 4,500 tables in room one two three"), {"numbers"}))
    assert out == " we have 12 chairs and [NUMBER] tables in room [NUMBER]"


def test_a_partial_withholds_what_follows_email_until_its_sentence_ends():
    r = Redactor({"email"})
    assert shown(r, "my email is jane dot doe", final=False) == f"my email {WITHHELD}"
    assert shown(r, "my email is jane dot doe at example dot com.", final=False) == "my email is [EMAIL]."
    assert shown(r, "my email is fine. thanks for asking", final=False) == "my email is fine. thanks for asking"


def test_a_finals_pieces_are_read_as_the_words_they_make():
    r = Redactor({"email", "pci"})
    pieces = [" My", " email", " is", " maria", ".", "round", " at", " fastmail", ".", "com", "."]
    assert "".join(apply(pieces, r.final(pieces))) == " My email is [EMAIL]."
    card = [" card", " 4111", "-1111", "-1111", "-1111", "."]
    assert "".join(apply(card, r.final(card))) == " card [PCI]."


def test_an_earlier_finals_words_do_not_make_a_decoy_at_the_end_of_the_next_one_sensitive():
    r = Redactor({"pci", "ssn", "phone"})
    assert shown(r, "my social is 123 45", final=True) == " my social is [SSN]"
    assert shown(r, "your balance is 2,587", final=True) == " your balance is 2,587"
    assert shown(r, "and the card", final=True) == " and the card"
    assert shown(r, "total 4,149", final=True) == " total 4,149"
