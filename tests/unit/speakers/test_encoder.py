"""The speaker encoder's parts that need no weights: the checkpoint reader's
refusals, the mel features, the LSTM's arithmetic on made-up weights."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from speakers.encoder import HIDDEN, LAYERS, VoiceEncoder
from speakers.features import HOP, N_MELS, mel_filterbank, mel_frames
from speakers.weights import WeightsError, load_weights, read_legacy_checkpoint, weights_path

MAGIC = 0x1950A86A20F9469CFC6C


def legacy_file(state_pickle: bytes) -> io.BytesIO:
    header = b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC, 1001, {"little_endian": True}))
    return io.BytesIO(header + state_pickle + pickle.dumps([], protocol=2))


def test_a_checkpoint_that_names_any_other_callable_is_refused_before_it_runs():
    evil = b"cos\nsystem\n(S'echo owned'\ntR."  # protocol 0: os.system("echo owned")
    with pytest.raises(WeightsError, match="os.system"):
        read_legacy_checkpoint(legacy_file(evil))


def test_a_file_that_is_not_a_checkpoint_is_refused():
    with pytest.raises(WeightsError, match="magic"):
        read_legacy_checkpoint(io.BytesIO(pickle.dumps(12345, protocol=2)))
    with pytest.raises(WeightsError):
        read_legacy_checkpoint(io.BytesIO(b"PK\x03\x04 a zip, not a legacy checkpoint"))


def test_weights_of_another_file_are_refused_by_their_hash(tmp_path):
    other = tmp_path / "pretrained.pt"
    other.write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(other)


def test_missing_weights_say_how_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setenv("STT_GATEWAY_SPEAKER_WEIGHTS", str(tmp_path / "absent.pt"))
    assert weights_path() == tmp_path / "absent.pt"
    with pytest.raises(WeightsError, match="pip install --no-deps resemblyzer"):
        load_weights()


def test_mel_filters_are_forty_rising_triangles_of_unit_area():
    filters = mel_filterbank()
    assert filters.shape == (N_MELS, 201) and (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]
    hz_per_bin = 8000 / 200
    assert np.allclose(filters.sum(axis=1) * hz_per_bin, 1.0, atol=0.35)  # Slaney: each filter of area 1 (coarse bins)


def test_mel_frames_put_a_tone_in_its_band_every_10_ms():
    t = np.arange(16000) / 16000
    frames = mel_frames(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert frames.shape == (1 + 16000 // HOP, N_MELS)
    band = int(np.argmax(mel_filterbank()[:, 25]))  # the filter that holds 1 kHz (bin 25 of 201)
    assert int(np.argmax(frames[50])) in (band - 1, band, band + 1)
    assert mel_frames(np.zeros(50, np.float32)).shape == (1, N_MELS)  # shorter than a window
    with pytest.raises(ValueError):
        mel_frames(np.zeros((2, 160), np.float32))


def made_up_weights(gate_bias: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    """Zero matrices, so each layer's state follows its biases alone; the
    biases per gate in PyTorch's order: input, forget, cell, output."""
    w: dict[str, np.ndarray] = {}
    for n in range(LAYERS):
        w[f"lstm.weight_ih_l{n}"] = np.zeros((4 * HIDDEN, N_MELS if n == 0 else HIDDEN), np.float32)
        w[f"lstm.weight_hh_l{n}"] = np.zeros((4 * HIDDEN, HIDDEN), np.float32)
        w[f"lstm.bias_ih_l{n}"] = np.repeat(np.array(gate_bias, np.float32), HIDDEN)
        w[f"lstm.bias_hh_l{n}"] = np.zeros(4 * HIDDEN, np.float32)
    w["linear.weight"] = np.eye(HIDDEN, dtype=np.float32)
    w["linear.bias"] = np.zeros(HIDDEN, np.float32)
    w["linear.bias"][:2] = [3.0, -1.0]  # the ReLU keeps the first, drops the second
    return w


def onnx_encoder(weights: dict[str, np.ndarray]) -> VoiceEncoder:
    from speakers.onnx_encoder import OnnxVoiceEncoder

    return OnnxVoiceEncoder(weights)


@pytest.mark.parametrize("encoder", [VoiceEncoder, onnx_encoder], ids=["numpy", "onnx"])
def test_the_lstm_takes_its_gates_in_pytorchs_order(encoder):
    """The ONNX graph (built from the same weights, its gates in ONNX's order) must agree too."""
    windows = np.random.default_rng(0).random((2, 5, N_MELS), dtype=np.float32)
    # input and output gates open, forget gate shut: the cell holds tanh(0.5) at every step
    remembered = encoder(made_up_weights((30.0, -30.0, 0.5, 30.0))).embed_frames(windows)
    h = np.tanh(np.tanh(0.5))
    expected = np.full(HIDDEN, h, np.float32)
    expected[0] += 3.0
    expected[1] = max(0.0, h - 1.0)
    assert np.allclose(remembered, expected / np.linalg.norm(expected), atol=1e-5)
    # forget gate open as well: the cell sums tanh(0.5) over the 5 steps
    summed = encoder(made_up_weights((30.0, 30.0, 0.5, 30.0))).embed_frames(windows)
    h5 = np.tanh(5 * np.tanh(0.5))
    assert summed[0, 5] / summed[0, 4] == pytest.approx(1.0) and summed[0, 0] / summed[0, 4] == pytest.approx((h5 + 3) / h5)


def test_weights_without_a_layer_are_refused():
    w = made_up_weights((0.0, 0.0, 0.0, 0.0))
    del w["lstm.weight_hh_l2"]
    with pytest.raises(ValueError, match="weight_hh_l2"):
        VoiceEncoder(w)


def test_windows_cover_the_audio_to_its_end():
    encoder = VoiceEncoder(made_up_weights((1.0, 1.0, 0.5, 1.0)))
    embeddings, centres = encoder.embed_windows(np.zeros(16000 * 4, np.float32), hop_s=0.75)
    assert embeddings.shape == (len(centres), HIDDEN)
    assert centres[0] == pytest.approx(0.8) and centres[-1] == pytest.approx(4.0 - 0.8 + 0.01, abs=0.02)
    short, at = encoder.embed_windows(np.zeros(8000, np.float32))
    assert short.shape == (1, HIDDEN) and at[0] == pytest.approx(0.8)
