"""Live voices on made-up embeddings: labels in order, never renamed, splits inside an utterance, bounds."""

from __future__ import annotations

import pytest

from speakers.online import OnlineVoices

from .test_clustering import windows_of


def test_utterances_join_the_nearest_voice_or_start_one_in_order():
    voices = OnlineVoices()
    w = windows_of([0] * 6 + [1] * 6 + [0] * 6 + [2] * 6, spread=0.1)
    said = [voices.assign(w[i : i + 6].mean(axis=0), weight=6) for i in range(0, 24, 6)]
    assert said == [0, 1, 0, 2] and voices.count == 3


def test_peek_tells_without_learning():
    voices = OnlineVoices()
    w = windows_of([0] * 4 + [1] * 4, spread=0.1)
    assert voices.peek(w[0]) == 0 and voices.count == 0  # the first voice to come
    voices.assign(w[:4].mean(axis=0), weight=4)
    assert voices.peek(w[1]) == 0 and voices.peek(w[5]) == 1 and voices.count == 1


def test_a_short_stranger_joins_the_nearest_voice_until_it_says_enough():
    voices = OnlineVoices(min_new_windows=4)
    w = windows_of([0] * 6 + [1] * 8, spread=0.1)
    voices.assign(w[:6].mean(axis=0), weight=6)
    assert voices.assign(w[6:9].mean(axis=0), weight=3) == 0  # 3 windows: not trusted as a new voice
    assert voices.assign(w[9:14].mean(axis=0), weight=5) == 1


def test_a_change_of_voice_inside_an_utterance_splits_it():
    voices = OnlineVoices()
    w = windows_of([0] * 6 + [1] * 6, spread=0.1)
    assert voices.assign_windows(w[:6]).tolist() == [0] * 6
    both = windows_of([0] * 5 + [1] * 5, spread=0.1)  # the same voices, one utterance
    assert voices.assign_windows(both).tolist() == [0] * 5 + [1] * 5
    assert voices.assign_windows(both[:0]).tolist() == []


def test_voices_are_bounded():
    voices = OnlineVoices(max_voices=2, min_new_windows=1)
    w = windows_of([0, 1, 2, 3], spread=0.0)
    said = [voices.assign(x) for x in w]
    assert said[:2] == [0, 1] and set(said[2:]) <= {0, 1}  # a third voice joins the nearest
    assert voices.count == 2


@pytest.mark.parametrize("fields", [{"threshold": 0.0}, {"threshold": 2.0}, {"max_voices": 0}])
def test_bad_settings_are_refused(fields):
    with pytest.raises(ValueError):
        OnlineVoices(**fields)
