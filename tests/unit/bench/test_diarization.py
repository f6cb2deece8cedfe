"""bench.diarization's scoring of labelled words against who really spoke (no model)."""

from __future__ import annotations

import numpy as np

from bench.diarization import score_words, words_said
from bench.speakers import Conversation
from gateway.core.records import Segment, Word

SR = 16000


def three_turns() -> Conversation:
    """x for 0-2 s, y for 3-5 s, x for 6-8 s."""
    return Conversation(np.zeros(9 * SR, np.float32), [(0, 2 * SR, "x"), (3 * SR, 5 * SR, "y"), (6 * SR, 8 * SR, "x")])


def test_words_are_scored_under_the_best_mapping_of_speakers_to_voices():
    conv = three_turns()
    perfect = [(0.5, "B"), (1.5, "B"), (3.5, "A"), (4.5, "A"), (6.5, "B")]  # names swapped: still right
    assert score_words(perfect, conv) == {
        "voices": 2, "found": 2, "count_exact": True, "words_right": 1.0, "turns_right": 1.0, "turns_without_words": 0,
    }
    split = [(0.5, "A"), (1.5, "A"), (3.5, "B"), (4.5, "B"), (6.5, "C"), (7.5, "C")]  # the last turn a third voice
    scored = score_words(split, conv)
    assert scored["found"] == 3 and not scored["count_exact"]
    assert scored["words_right"] == 4 / 6 and scored["turns_right"] == 2 / 3


def test_a_turn_without_words_is_counted_apart_and_words_between_turns_are_not_scored():
    conv = three_turns()
    said = [(0.5, "A"), (2.5, "B"), (3.5, "B"), (4.5, "B")]  # nothing decoded of the last turn; one word in a pause
    scored = score_words(said, conv)
    assert scored["turns_without_words"] == 1 and scored["turns_right"] == 1.0 and scored["words_right"] == 1.0


def test_a_live_final_s_words_keep_their_own_speakers():
    words = (Word(" a", 0.0, 1.0, 0.9), Word(" b", 3.0, 4.0, 0.9))
    segment = Segment(0, 0, 0.0, 4.0, " a b", (), 0.0, 0.0, 1.0, 0.0, words, speaker="A", word_speakers=("A", "B"))
    assert words_said([segment]) == [(0.5, "A"), (3.5, "B")]
    plain = Segment(1, 0, 0.0, 4.0, " a b", (), 0.0, 0.0, 1.0, 0.0, words, speaker="C")
    assert words_said([plain]) == [(0.5, "C"), (3.5, "C")]
