"""Words to speakers: nearest window, runs of one speaker, letters."""

from __future__ import annotations

import numpy as np
import pytest

from speakers.turns import letter, runs, speaker_at


def test_a_word_takes_the_speaker_of_the_nearest_window():
    centres = np.array([0.75, 1.5, 2.25, 3.0])
    labels = np.array([0, 0, 1, 1])
    words = np.array([0.1, 1.2, 1.8, 1.875, 2.0, 5.0])  # 1.875: halfway, goes to the earlier window
    assert speaker_at(words, centres, labels).tolist() == [0, 0, 0, 0, 1, 1]


def test_windows_that_do_not_match_their_labels_are_refused():
    with pytest.raises(ValueError, match="one window centre per label"):
        speaker_at(np.array([1.0]), np.array([0.8, 1.6]), np.array([0]))
    with pytest.raises(ValueError, match="no windows"):
        speaker_at(np.array([1.0]), np.array([]), np.array([], dtype=int))
    with pytest.raises(ValueError, match="ascend"):
        speaker_at(np.array([1.0]), np.array([1.6, 0.8]), np.array([0, 1]))


def test_runs_split_where_the_speaker_changes():
    assert runs([0, 0, 1, 1, 1, 0, 2]) == [(0, 2, 0), (2, 5, 1), (5, 6, 0), (6, 7, 2)]
    assert runs([]) == []
    assert runs(np.array([3])) == [(0, 1, 3)]


@pytest.mark.parametrize(("label", "name"), [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA")])
def test_labels_are_letters(label, name):
    assert letter(label) == name


def test_a_negative_label_is_refused():
    with pytest.raises(ValueError):
        letter(-1)
