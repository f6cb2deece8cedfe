"""Reading the digits a run of transcript words says, however Whisper wrote them (model-free)."""

from __future__ import annotations

import pytest

from redaction.spoken import NumberRun, number_runs


def words(text: str) -> list[str]:
    """Whisper's words: each with its leading space."""
    return [" " + w for w in text.split()]


@pytest.mark.parametrize(("said", "digits"), [
    ("my card number is 4111 1111 1111 1111 thanks", ["4111111111111111"]),
    ("my card number is 4,111,111,111,111,111. thanks", ["4111111111111111"]),
    ("it's 4111-1111-1111-1111, okay", ["4111111111111111"]),
    ("four one one one, one one one one, one one one one, one one one one.", ["4111111111111111"]),
    ("my social is 123-45-6789 and", ["123456789"]),
    ("call me at five five five, one two three, four five six seven please", ["5551234567"]),
    ("call me at double five five, oh one two", ["555012"]),
    ("triple seven", ["777"]),
    ("expiry twelve twenty six", ["1226"]),
    ("the code is twenty-three forty", ["2340"]),
    ("it costs 4.99 and 12 items", ["499", "12"]),
    ("oh I see, that is fine", []),
    ("zero", ["0"]),
])
def test_digits_however_they_were_written(said, digits):
    assert [r.digits for r in number_runs(words(said))] == digits


def test_a_run_spans_exactly_the_words_that_say_it():
    said = words("card is four one one one - 1111 thanks")
    [run] = number_runs(said)
    assert run == NumberRun(2, 8, "41111111")
    assert "".join(said[run.first : run.end]).split() == ["four", "one", "one", "one", "-", "1111"]


def test_any_other_word_ends_a_run():
    assert [r.digits for r in number_runs(words("four five and six seven"))] == ["45", "67"]
    assert number_runs([]) == []
