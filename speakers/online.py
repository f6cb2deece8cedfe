"""Voices of a live stream, learned one utterance at a time; a label once given is never taken back.

A file is clustered when all of it is heard (``clustering``); a stream
cannot wait. Each utterance's windows are first split where the voice
changes inside it (two turns with a short pause between are one utterance
to the VAD): the offline clustering over its windows alone. Each part's
mean embedding then joins the voice whose centroid is nearest, when it lies
within ``threshold`` cosine distance, or starts a new voice, if it is long
enough to be trusted (``MIN_NEW_WINDOWS``: a short part's mean is noisy,
and a voice once started is a label for ever); the centroid moves toward it
(the mean of its members, weighted by their windows). Earlier utterances
keep their labels whatever the centroids do later: a caption already shown
is not rewritten. ``peek`` answers what an utterance in progress would be
without learning from it (a partial's provisional speaker).

Tuned with ``python -m bench.speakers`` (its online rows: 24 built
conversations of 2 to 4 readers, each VAD utterance in turn): threshold
0.25, a split inside an utterance at the offline 0.40 with parts of 2
windows or more, a new voice from 4 windows (about 3.5 s of speech):
turns right 93.5 % and 96.2 %, utterance windows 97 %, the count exact in 10
of 12 conversations of each set. Without the split inside utterances turns
right fell to 87 % (a merged turn took its neighbour's voice); without the
4-window rule the count was exact in 5 of 12.
"""

from __future__ import annotations

import numpy as np

from .clustering import DEFAULT_THRESHOLD, MAX_SPEAKERS, cluster, in_order_of_appearance

# Cosine distance from a part's mean embedding to a voice's centroid. Means
# of several windows of different voices lie closer together than single
# windows do (0.58-0.67 similar, against 0.79-0.95 for one voice's), so
# this is tighter than the offline clustering's 0.40 between groups.
ONLINE_THRESHOLD = 0.25
MIN_NEW_WINDOWS = 4  # a part shorter than this joins the nearest voice rather than start one
SPLIT_MIN_WINDOWS = 2  # a voice inside an utterance: at least this many of its windows


class OnlineVoices:
    def __init__(self, threshold: float = ONLINE_THRESHOLD, max_voices: int = MAX_SPEAKERS, min_new_windows: int = MIN_NEW_WINDOWS):
        if not 0.0 < threshold < 2.0:
            raise ValueError(f"threshold must be a cosine distance between 0 and 2, not {threshold}")
        if max_voices < 1:
            raise ValueError(f"max_voices must be 1 or more, not {max_voices}")
        self.threshold = threshold
        self.max_voices = max_voices  # then a new voice joins the nearest: the state stays bounded
        self.min_new_windows = min_new_windows
        self._sums: list[np.ndarray] = []  # per voice: the window-weighted sum of its members' embeddings
        self._centroids = np.zeros((0, 0))

    @property
    def count(self) -> int:
        return len(self._sums)

    def peek(self, embedding: np.ndarray) -> int:
        """The voice ``embedding`` would join (``count``: a new one), learning nothing."""
        if not self._sums:
            return 0
        similarity = self._centroids @ _unit(embedding)
        nearest = int(np.argmax(similarity))
        if 1.0 - similarity[nearest] <= self.threshold or self.count >= self.max_voices:
            return nearest
        return self.count

    def assign_windows(self, windows: np.ndarray) -> np.ndarray:
        """The voice of each window of one utterance (rows of unit embeddings,
        in time order): split where the voice changes, each part assigned in
        order; the voices learn from them."""
        windows = np.asarray(windows)
        if windows.shape[0] == 0:
            return np.zeros(0, np.int64)
        parts = np.zeros(windows.shape[0], np.int64)
        if windows.shape[0] >= 2 * SPLIT_MIN_WINDOWS:
            parts = in_order_of_appearance(cluster(windows, DEFAULT_THRESHOLD, min_windows=SPLIT_MIN_WINDOWS))
        voices = np.zeros(windows.shape[0], np.int64)
        for part in range(int(parts.max()) + 1):
            members = parts == part
            voices[members] = self.assign(windows[members].mean(axis=0), weight=int(members.sum()))
        return voices

    def assign(self, embedding: np.ndarray, weight: float = 1.0) -> int:
        """The voice of an utterance (its mean embedding, ``weight`` its windows); the voices learn from it."""
        unit = _unit(embedding)
        voice = self.peek(unit)
        if voice == self.count and self.count and weight < self.min_new_windows:
            voice = int(np.argmax(self._centroids @ unit))  # too short to trust as a new voice
        if voice == self.count:
            self._sums.append(unit * weight)
        else:
            self._sums[voice] = self._sums[voice] + unit * weight
        self._centroids = np.stack([_unit(s) for s in self._sums])
        return voice


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    unit: np.ndarray = v / max(float(np.linalg.norm(v)), 1e-12)
    return unit
