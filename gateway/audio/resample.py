"""Resampling a live stream to Whisper's 16 kHz, chunk by chunk."""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_RATE = 16000  # what the VAD and Whisper work on


class StreamResampler:
    """Chunk-by-chunk resampling to 16 kHz with soxr (identity at 16 kHz).

    soxr withholds a few samples of filter delay until ``flush``, so the
    output count always trails the input; times stay sample-exact because
    the delay is compensated, not added.
    """

    def __init__(self, input_rate: int):
        self.input_rate = input_rate
        self._stream: Any = None
        if input_rate != SAMPLE_RATE:
            import soxr

            self._stream = soxr.ResampleStream(input_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def resample(self, samples: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return samples
        return np.asarray(self._stream.resample_chunk(samples, last=False), dtype=np.float32)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, np.float32)
        return np.asarray(self._stream.resample_chunk(np.zeros(0, np.float32), last=True), dtype=np.float32)
