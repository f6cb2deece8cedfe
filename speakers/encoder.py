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


def _gates(weights: np.ndarray) -> np.ndarray:
    """torch's LSTM gate rows (input, forget, cell, output) as (input, forget,
    output, cell), the sigmoid gates halved: ``embed_frames`` takes one tanh of all."""
    i, f, cell, o = np.split(np.asarray(weights, dtype=np.float32), 4, axis=0)
    gates: np.ndarray = np.concatenate([0.5 * i, 0.5 * f, 0.5 * o, cell], axis=0)
    return gates


class VoiceEncoder:
    def __init__(self, weights: dict[str, np.ndarray] | None = None):
        w = weights if weights is not None else load_weights()
        try:
            self._layers = [
                (
                    np.ascontiguousarray(_gates(w[f"lstm.weight_ih_l{n}"]).T),
                    np.ascontiguousarray(_gates(w[f"lstm.weight_hh_l{n}"]).T),
                    _gates(w[f"lstm.bias_ih_l{n}"] + w[f"lstm.bias_hh_l{n}"]),
                )
                for n in range(LAYERS)
            ]
            self._linear = (np.ascontiguousarray(w["linear.weight"].T), w["linear.bias"])
        except KeyError as exc:
            raise ValueError(f"the speaker encoder's weights lack {exc}") from None

    def embed_frames(self, windows: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows -> (batch, 256) unit embeddings.

        The time loop is the cost: its numpy calls are the same for one
        window or sixty, so callers batch windows (the engine batches
        several jobs' windows into one call)."""
        x = np.asarray(windows, dtype=np.float32)
        batch, steps, _ = x.shape
        h = np.zeros((batch, HIDDEN), np.float32)
        for w_ih, w_hh, bias in self._layers:
            gates_in = x @ w_ih + bias  # (batch, steps, 4 * HIDDEN): the input's share, all steps at once
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            out = np.empty((batch, steps, HIDDEN), np.float32)
            g = np.empty((batch, 4 * HIDDEN), np.float32)
            for t in range(steps):
                np.matmul(h, w_hh, out=g)
                g += gates_in[:, t]
                # The gates' columns were reordered to (input, forget, output, cell) and the
                # first three halved (see __init__): one tanh serves all four, as
                # sigmoid(x) = (1 + tanh(x / 2)) / 2.
                np.tanh(g, out=g)
                sig = g[:, : 3 * HIDDEN]
                sig *= 0.5
                sig += 0.5
                c *= g[:, HIDDEN : 2 * HIDDEN]
                c += g[:, :HIDDEN] * g[:, 3 * HIDDEN :]
                h = g[:, 2 * HIDDEN : 3 * HIDDEN] * np.tanh(c)
                out[:, t] = h
            x = out
        w, b = self._linear
        e = np.maximum(0.0, h @ w + b)
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        unit: np.ndarray = e / np.maximum(norm, 1e-12)
        return unit

    def windows(self, samples: np.ndarray, hop_s: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """The mel windows ``embed_windows`` embeds: (n, 160, 40) and each one's centre in seconds."""
        mel = mel_frames(samples)
        hop = max(1, int(round(hop_s * SAMPLE_RATE / HOP)))
        last = max(0, mel.shape[0] - WINDOW_FRAMES)
        starts = list(range(0, last + 1, hop))
        if starts[-1] != last:
            starts.append(last)  # the end of the audio is covered too
        if mel.shape[0] < WINDOW_FRAMES:
            mel = np.pad(mel, ((0, WINDOW_FRAMES - mel.shape[0]), (0, 0)))
        frames = np.stack([mel[s : s + WINDOW_FRAMES] for s in starts])
        centres = (np.array(starts) + WINDOW_FRAMES / 2) * HOP / SAMPLE_RATE
        return frames, centres

    def embed_windows(self, samples: np.ndarray, hop_s: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of 1.6 s windows every ``hop_s`` over ``samples`` (16 kHz):
        (n, 256) and each window's centre in seconds. Audio shorter than a
        window gives one window, padded with silence."""
        frames, centres = self.windows(samples, hop_s)
        return self.embed_frames(frames), centres

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """One unit embedding of all of ``samples``: the mean of its windows'."""
        windows, _ = self.embed_windows(samples)
        return unit_mean(windows)


def unit_mean(embeddings: np.ndarray) -> np.ndarray:
    """One voice's embedding from several (rows): their mean, made unit length."""
    mean = np.asarray(embeddings).mean(axis=0)
    unit: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return unit
