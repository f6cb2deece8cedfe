"""The speaker encoder with its real weights (the resemblyzer wheel's file) on real voices."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.speakers import conversation, embed_turns
from speakers import VoiceEncoder, cluster, load_weights
from speakers.turns import letter, speaker_at
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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_voices_in_turns_are_three_speakers(encoder, seed):
    """Windows of each turn (the speech, as the VAD would give it) clustered
    with the default threshold: one label per voice, every window right."""
    voices = random.Random(seed).sample(VOICES, 3)
    conv = conversation({v: load_clip(v) for v in voices}, voices, turns=12, rng=random.Random(seed), turn_s=(2.0, 5.0))
    w = embed_turns(encoder, conv)
    labels = cluster(w.embeddings)
    assert labels.max() + 1 == 3
    label_of = {voice: labels[w.owners.index(voice)] for voice in voices}
    assert len(set(label_of.values())) == 3
    assert [label_of[o] for o in w.owners] == labels.tolist()
    # a word in the middle of each turn is its voice's
    middles = np.array([(start + end) / 2 / 16000 for start, end, _ in conv.turns])
    heard = speaker_at(middles, w.centres_s, labels)
    assert heard.tolist() == [label_of[voice] for _, _, voice in conv.turns]
    assert [letter(int(label)) for label in labels[:1]] == ["A"]


def test_the_onnx_graph_gives_the_numpy_encoders_embeddings(encoder):
    """The gateway runs the encoder on ONNX Runtime; numpy is the reference of the same weights."""
    from speakers.onnx_encoder import OnnxVoiceEncoder

    samples = np.concatenate([load_clip("lhotse-libri-2412-153948-0000"), load_clip("ds-arctic-a0024")])
    reference, centres = encoder.embed_windows(samples)
    onnx, onnx_centres = OnnxVoiceEncoder().embed_windows(samples)
    assert np.array_equal(centres, onnx_centres)
    assert np.abs(reference - onnx).max() < 1e-4 and (reference * onnx).sum(axis=1).min() > 0.9999
