"""Speaker embeddings: Resemblyzer's GE2E voice encoder, run with numpy.

A 3-layer LSTM (256 units) over 1.6 s of mel frames, whose last hidden
state goes through a linear layer and a ReLU and is scaled to unit length:
voices are compared by the cosine of their embeddings (the dot product).
Run with numpy, the encoder embeds about 40 s of speech per CPU second
(windows batched, the input projections done for all frames at once), so
neither torch nor an ONNX graph is needed.
"""

from __future__ import annotations

import numpy as np

from .features import HOP, SAMPLE_RATE, mel_frames
from .weights import load_weights

WINDOW_FRAMES = 160  # 1.6 s: what the encoder was trained on
HIDDEN = 256
LAYERS = 3


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # the same function, without exp's overflow


class VoiceEncoder:
    def __init__(self, weights: dict[str, np.ndarray] | None = None):
        w = weights if weights is not None else load_weights()
        try:
            self._layers = [
                (
                    np.ascontiguousarray(w[f"lstm.weight_ih_l{n}"].T),
                    np.ascontiguousarray(w[f"lstm.weight_hh_l{n}"].T),
                    w[f"lstm.bias_ih_l{n}"] + w[f"lstm.bias_hh_l{n}"],
                )
                for n in range(LAYERS)
            ]
            self._linear = (np.ascontiguousarray(w["linear.weight"].T), w["linear.bias"])
        except KeyError as exc:
            raise ValueError(f"the speaker encoder's weights lack {exc}") from None

    def embed_frames(self, windows: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows -> (batch, 256) unit embeddings."""
        x = np.asarray(windows, dtype=np.float32)
        batch, steps, _ = x.shape
        h = np.zeros((batch, HIDDEN), np.float32)
        for w_ih, w_hh, bias in self._layers:
            gates_in = x @ w_ih + bias  # (batch, steps, 4 * HIDDEN): the input's share, all steps at once
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            out = np.empty((batch, steps, HIDDEN), np.float32)
            for t in range(steps):
                g = gates_in[:, t] + h @ w_hh
                i, f = _sigmoid(g[:, :HIDDEN]), _sigmoid(g[:, HIDDEN : 2 * HIDDEN])
                cell, o = np.tanh(g[:, 2 * HIDDEN : 3 * HIDDEN]), _sigmoid(g[:, 3 * HIDDEN :])
                c = f * c + i * cell
                h = o * np.tanh(c)
                out[:, t] = h
            x = out
        w, b = self._linear
        e = np.maximum(0.0, h @ w + b)
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        unit: np.ndarray = e / np.maximum(norm, 1e-12)
        return unit

    def embed_windows(self, samples: np.ndarray, hop_s: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of 1.6 s windows every ``hop_s`` over ``samples`` (16 kHz):
        (n, 256) and each window's centre in seconds. Audio shorter than a
        window gives one window, padded with silence."""
        mel = mel_frames(samples)
        hop = max(1, int(round(hop_s * SAMPLE_RATE / HOP)))
        last = max(0, mel.shape[0] - WINDOW_FRAMES)
        starts = list(range(0, last + 1, hop))
        if starts[-1] != last:
            starts.append(last)  # the end of the audio is covered too
        if mel.shape[0] < WINDOW_FRAMES:
            mel = np.pad(mel, ((0, WINDOW_FRAMES - mel.shape[0]), (0, 0)))
        windows = np.stack([mel[s : s + WINDOW_FRAMES] for s in starts])
        centres = (np.array(starts) + WINDOW_FRAMES / 2) * HOP / SAMPLE_RATE
        return self.embed_frames(windows), centres

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """One unit embedding of all of ``samples``: the mean of its windows'."""
        windows, _ = self.embed_windows(samples)
        mean = windows.mean(axis=0)
        unit: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return unit
