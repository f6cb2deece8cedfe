"""bench.redaction's calls and scoring, model-free (no espeak-ng either)."""

from __future__ import annotations

import random

import numpy as np
from stdnum import luhn

from bench.redaction import Call, Sentence, call_sentences, card_number, kept, leaks, shown_secret, spelled


def test_card_numbers_are_valid_and_read_in_their_groups():
    rng = random.Random(3)
    for _ in range(50):
        card, groups = card_number(rng)
        assert luhn.is_valid(card) and len(card) == sum(groups) and len(card) in (15, 16)
    assert spelled("4111", (2, 2)) == "four one, one one"


def test_a_call_says_four_sensitive_things_and_four_decoys_after_a_greeting():
    sentences = call_sentences(random.Random(0))
    assert sentences[0].kind == "greeting"
    kinds = [s.kind for s in sentences[1:]]
    assert kinds.count("decoy") == 4 and kinds.count("pci") == 2 and kinds.count("ssn") == 1
    assert sum(k in ("phone", "email") for k in kinds) == 1


def test_a_sentence_leaks_while_three_digits_or_any_part_of_the_address_remain():
    card = Sentence("pci", "My card number is ...", "4111111111111111")
    assert leaks(card, [" My", " card", " number", " is", " 411", " [PCI]"])
    assert not leaks(card, [" My", " card", " number", " is", " [PCI]."])
    assert leaks(card, [" is", " four", " one", " one"])  # spelled digits count
    email = Sentence("email", "My email is jane dot doe at example dot com.", "jane doe")
    assert leaks(email, [" My", " email", " is", " Jane.", " [EMAIL]"])
    assert not leaks(email, [" My", " email", " is", " [EMAIL]"])


def test_a_decoy_is_kept_with_its_number_and_no_placeholder():
    assert kept([" The", " total", " is", " $42."])
    assert not kept([" The", " total", " is", " [PCI]."])
    assert not kept([" The", " total", " is"])


def test_a_partial_shows_a_secret_only_with_three_of_its_digits():
    call = Call("en-us", 165, [Sentence("pci", "", "4539148803436467"), Sentence("decoy", "The total is 42 dollars.", "42")],
                [(0.0, 1.0), (1.0, 2.0)], np.zeros(1, np.float32))
    assert shown_secret("my card is 4539", call) and not shown_secret("my card is 45", call)
    assert not shown_secret("my card is [...]", call)
