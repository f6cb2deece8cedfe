"""Clustering on made-up embeddings: voices as points on the unit sphere, windows as noisy copies."""

from __future__ import annotations

import numpy as np
import pytest

from speakers.clustering import MAX_SPEAKERS, centroids, cluster, in_order_of_appearance, name_voices, nearest


def windows_of(voices: list[int], spread: float = 0.15, dims: int = 256, seed: int = 0) -> np.ndarray:
    """One unit embedding per entry of ``voices``: its voice's centre plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(voices) + 1, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[voices] + spread * rng.standard_normal((len(voices), dims)) / np.sqrt(dims)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_each_voice_is_one_label_numbered_in_order_of_appearance():
    voices = [2, 2, 0, 0, 2, 1, 1, 0, 2, 1]
    labels = cluster(windows_of(voices))
    assert labels.tolist() == [0, 0, 1, 1, 0, 2, 2, 1, 0, 2]


def test_windows_of_one_voice_are_one_speaker():
    assert set(cluster(windows_of([0] * 12, spread=0.3)).tolist()) == {0}


def test_speakers_expected_cuts_the_tree_at_that_count():
    voices = [0, 1, 2, 3, 0, 1, 2, 3]
    assert cluster(windows_of(voices)).max() == 3
    assert cluster(windows_of(voices), speakers_expected=2).max() == 1
    assert cluster(windows_of(voices), speakers_expected=1).tolist() == [0] * 8
    assert cluster(windows_of([0, 1]), speakers_expected=5).max() == 1  # never more labels than windows


def test_a_window_alone_and_none_at_all():
    assert cluster(windows_of([0])).tolist() == [0]
    assert cluster(np.zeros((0, 256))).tolist() == []


@pytest.mark.parametrize("expected", [0, MAX_SPEAKERS + 1, -1])
def test_speakers_expected_outside_one_to_eight_is_refused(expected):
    with pytest.raises(ValueError, match="speakers_expected must be 1 to 8"):
        cluster(windows_of([0, 1]), speakers_expected=expected)


def test_bad_shapes_and_thresholds_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        cluster(np.zeros(256))
    with pytest.raises(ValueError, match="threshold"):
        cluster(windows_of([0, 1]), threshold=0.0)


def test_labels_are_renumbered_by_first_appearance():
    assert in_order_of_appearance(np.array([5, 5, 2, 9, 2])).tolist() == [0, 0, 1, 2, 1]


def test_a_group_too_small_to_be_a_voice_joins_the_nearest_one():
    voices = [0] * 20 + [1] * 20 + [2]  # one stray window (a cough, a laugh) far from both voices
    embeddings = windows_of(voices)
    assert cluster(embeddings).tolist() == [0] * 20 + [1] * 20 + [cluster(embeddings)[-1]]
    assert cluster(embeddings).max() == 1
    assert cluster(embeddings, min_windows=1).max() == 2  # counted as a voice when told to
    assert cluster(embeddings, speakers_expected=2).max() == 1  # the count is of voices, not of stray windows
    assert cluster(embeddings, speakers_expected=2).tolist()[:40] == [0] * 20 + [1] * 20


def test_over_max_linkage_a_sample_builds_the_tree_and_the_rest_join_the_nearest_voice():
    voices = [0] * 40 + [1] * 30 + [2] * 50 + [0] * 20
    embeddings = windows_of(voices)
    labels = cluster(embeddings, max_linkage=25)
    assert labels.tolist() == in_order_of_appearance(np.array(voices)).tolist()
    assert cluster(embeddings, max_linkage=25, speakers_expected=2).max() == 1


def test_centroids_are_unit_means_and_nearest_picks_the_closest():
    embeddings = windows_of([0, 0, 1, 1, 1])
    labels = np.array([0, 0, 1, 1, 1])
    voices = centroids(embeddings, labels)
    assert voices.shape == (2, 256)
    assert np.allclose(np.linalg.norm(voices, axis=1), 1.0)
    assert nearest(embeddings, voices).tolist() == labels.tolist()


def test_references_name_the_voices_they_match_one_to_one():
    embeddings = windows_of([0, 1, 2, 3], spread=0.0)
    voices = embeddings[:3]  # three voices heard
    references = np.stack([embeddings[2], embeddings[3], embeddings[0]])  # voice 2, someone not heard, voice 0
    assert name_voices(voices, references) == {2: 0, 0: 2}
    assert name_voices(voices, references[:0]) == {}
    # Two references of one voice name it once: the closer one.
    noisy = windows_of([1, 1], spread=0.3, seed=1)
    named = name_voices(voices, np.stack([noisy[0], embeddings[1]]))
    assert named == {1: 1}
