"""The speaker encoder with its real weights (the resemblyzer wheel's file) on real voices."""

from __future__ import annotations

import numpy as np
import pytest

from speakers import VoiceEncoder, load_weights
from tests.clips import load_clip

# Six different voices (CMU ARCTIC, TIMIT, and four LibriSpeech readers).
VOICES = ["ds-arctic-a0024", "ds-ldc93s1", "fw-stereo-left", "leopard-en", "lhotse-libri-2412-153948-0000", "wlk-libri-7902-96591-0000"]


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder()


def test_the_weights_are_the_encoders():
    weights = load_weights()  # the pinned sha256 is checked
    assert weights["lstm.weight_ih_l0"].shape == (1024, 40)
    assert weights["lstm.weight_hh_l2"].shape == (1024, 256)
    assert weights["linear.weight"].shape == (256, 256)
    assert all(np.isfinite(w).all() for w in weights.values())


def test_each_voice_is_nearest_to_itself(encoder):
    """The first half of each clip is nearer (cosine) to its own second half
    than to any other voice's: features, weights and LSTM all have to be
    right for that (a wrong gate order or mel scale gives near-random
    embeddings)."""
    halves = {}
    for clip in VOICES:
        samples = load_clip(clip)
        mid = samples.size // 2
        halves[clip] = (encoder.embed(samples[:mid]), encoder.embed(samples[mid:]))
    for clip, (first, _) in halves.items():
        similarity = {other: float(first @ second) for other, (_, second) in halves.items()}
        nearest = max(similarity, key=similarity.__getitem__)
        assert nearest == clip, (clip, similarity)
        assert similarity[clip] >= 0.7
        assert max(v for other, v in similarity.items() if other != clip) <= similarity[clip] - 0.1


def test_embeddings_are_unit_vectors_over_time(encoder):
    samples = load_clip("lhotse-libri-2412-153948-0000")
    windows, centres = encoder.embed_windows(samples)
    assert windows.shape == (len(centres), 256)
    assert np.allclose(np.linalg.norm(windows, axis=1), 1.0, atol=1e-5)
    assert (np.diff(centres) > 0).all() and centres[-1] <= samples.size / 16000
