"""The WER normalisation that tests and benchmarks share."""

from bench.textnorm import normalize, wer, word_errors


def test_case_punctuation_and_contractions_do_not_count():
    assert normalize("I'm here, Mr. Smith!") == "i am here mister smith"
    assert wer("i am here mister smith", "I'm here, Mr. Smith!") == 0.0


def test_digit_strings_match_spoken_digits():
    # Whisper writes a read-out digit sequence in many groupings.
    reference = "one zero zero zero one nine oh two one oh zero one eight zero three"
    assert wer(reference, "1, 0001. 90210 01803") == 0.0
    assert wer(reference, "1 0 0 0 1 9 0 2 1 0 0 1 8 0 3") == 0.0


def test_a_wrong_digit_costs_one_error():
    errors, words = word_errors("nine oh two one oh", "90211")
    assert (errors, words) == (1, 5)


def test_number_words_and_numerals_agree():
    assert wer("when forty winters", "When 40 winters") == 0.0


def test_real_differences_still_count():
    assert word_errors("look in thy glass", "looking like last") == (4, 4)
