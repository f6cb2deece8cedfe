"""A stream's recent audio, addressed by absolute sample index."""

from __future__ import annotations

from collections import deque

import numpy as np


class SampleBuffer:
    """Audio addressed by absolute sample index; old audio can be dropped."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._start = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index one past the last sample

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._chunks.append(samples)
            self.end += samples.size

    def slice(self, a: int, b: int) -> np.ndarray:
        a = max(a, self._start)
        out, position = [], self._start
        for chunk in self._chunks:
            lo, hi = max(a - position, 0), min(b - position, chunk.size)
            if lo < hi:
                out.append(chunk[lo:hi])
            position += chunk.size
            if position >= b:
                break
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def discard_before(self, index: int) -> None:
        while self._chunks and self._start + self._chunks[0].size <= index:
            self._start += self._chunks.popleft().size


def frame_rms(samples: np.ndarray, frame: int = 480) -> np.ndarray:
    """Root-mean-square level of each whole ``frame`` of samples."""
    frames = samples[: samples.size // frame * frame].reshape(-1, frame)
    rms: np.ndarray = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    return rms
