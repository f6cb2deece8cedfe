"""Which windows are one voice: agglomerative clustering of unit speaker embeddings.

Average linkage over cosine distances (scipy): two groups of windows are one
voice while the mean distance between their members stays under
``threshold``; then a group too small to be a voice (under 5 % of the
windows, or 3) joins the nearest voice. Tuned with ``python -m
bench.speakers`` (12 conversations of 2 to 4 readers from the shared speech
set, turns of 2 to 15 s): at 0.40 every turn was attributed right and the
count was exact in 11 of 12 (0.45: 12 of 12; 0.35: 9; at 0.50 voices merge
and attribution falls to 77 %), and the 3 voices of the Picovoice
diarization clip were found. ``speakers_expected`` (the caller knows the
count) cuts the tree where that many groups are voices instead.

The tree costs memory and time in the square of the windows (two hours of
speech: 9,600 windows, 370 MB of distances), so at most ``MAX_LINKAGE``
windows, evenly spread, build it; the others join the nearest voice.
``centroids`` and ``name_voices`` label voices by a caller's reference clips.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from .encoder import unit_mean

DEFAULT_THRESHOLD = 0.4  # cosine distance
MAX_SPEAKERS = 8
MIN_WINDOWS = 3  # about 2.3 s of one voice (1.6 s windows every 0.75 s)
MIN_SHARE = 0.05  # of all windows: a voice heard less is absorbed
MAX_LINKAGE = 2000  # windows in the tree (25 minutes of speech): 16 MB of distances


def in_order_of_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0, 1, 2, ... in the order each first appears."""
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(x), len(order)) for x in labels], dtype=np.int64)


def cluster(
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    speakers_expected: int | None = None,
    min_windows: int | None = None,
    max_linkage: int = MAX_LINKAGE,
) -> np.ndarray:
    """A label per embedding (rows of unit vectors), 0 for the first voice
    heard, 1 for the next new one, and so on. A group of fewer than
    ``min_windows`` windows (default: 5 % of them, at least 3) is not a
    voice of its own: its windows join the nearest voice (windows over a
    laugh, a cough or the edge of a turn otherwise become speakers). Over
    ``max_linkage`` windows, an even sample of them is clustered and the
    rest join the nearest voice."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError("embeddings must be a 2-D array, one row per window")
    if speakers_expected is not None and not 1 <= speakers_expected <= MAX_SPEAKERS:
        raise ValueError(f"speakers_expected must be 1 to {MAX_SPEAKERS}, not {speakers_expected}")
    if not 0.0 < threshold < 2.0:
        raise ValueError(f"threshold must be a cosine distance between 0 and 2, not {threshold}")
    count = embeddings.shape[0]
    if count < 2 or speakers_expected == 1:
        return np.zeros(count, np.int64)
    if count > max_linkage:
        sample = np.linspace(0, count - 1, max_linkage).round().astype(np.int64)
        share = None if min_windows is None else max(1, min_windows * max_linkage // count)
        sampled = cluster(embeddings[sample], threshold, speakers_expected, share, max_linkage)
        return in_order_of_appearance(nearest(embeddings, centroids(embeddings[sample], sampled)))
    if min_windows is None:
        min_windows = max(MIN_WINDOWS, math.ceil(MIN_SHARE * count))
    tree = linkage(embeddings, method="average", metric="cosine")
    if speakers_expected is None:
        labels = _absorb_small(embeddings, fcluster(tree, t=threshold, criterion="distance"), min_windows)
    else:
        # Cut the tree ever finer until that many groups are voices (the
        # small ones are absorbed), or settle for the plain cut at the count.
        labels = fcluster(tree, t=min(speakers_expected, count), criterion="maxclust")
        for groups in range(speakers_expected, count + 1):
            cut = fcluster(tree, t=groups, criterion="maxclust")
            voices = _voices(cut, min_windows)
            if voices == speakers_expected:
                labels = _absorb_small(embeddings, cut, min_windows)
            if voices >= speakers_expected:
                break
    return in_order_of_appearance(labels)


def _voices(labels: np.ndarray, min_windows: int) -> int:
    _, sizes = np.unique(labels, return_counts=True)
    return int((sizes >= min_windows).sum())


def _absorb_small(embeddings: np.ndarray, labels: np.ndarray, min_windows: int) -> np.ndarray:
    """Windows of groups under ``min_windows`` go to the nearest large group's centroid."""
    names, sizes = np.unique(labels, return_counts=True)
    large = names[sizes >= min_windows]
    if large.size == 0 or large.size == names.size:
        return labels
    centroids = np.stack([embeddings[labels == name].mean(axis=0) for name in large])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    small = ~np.isin(labels, large)
    out: np.ndarray = labels.copy()
    out[small] = large[np.argmax(embeddings[small] @ centroids.T, axis=1)]
    return out


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One unit vector per label 0..n-1: the normalised mean of its windows."""
    labels = np.asarray(labels)
    unit: np.ndarray = np.stack([unit_mean(np.asarray(embeddings)[labels == k]) for k in range(int(labels.max()) + 1)])
    return unit


def nearest(embeddings: np.ndarray, voices: np.ndarray) -> np.ndarray:
    """The index of the voice (rows of unit centroids) nearest each embedding."""
    found: np.ndarray = np.argmax(np.asarray(embeddings) @ np.asarray(voices).T, axis=1)
    return found


def name_voices(voices: np.ndarray, references: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> dict[int, int]:
    """{voice: reference} for the voices a reference clip matches: each
    reference names at most one voice and each voice takes at most one name
    (the pairing with the highest total similarity), and a pair counts only
    within ``threshold`` cosine distance, the distance clustering joins voices by."""
    voices, references = np.atleast_2d(voices), np.atleast_2d(references)
    if voices.size == 0 or references.size == 0:
        return {}
    similarity = voices @ references.T
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return {int(v): int(r) for v, r in zip(rows, cols, strict=True) if 1.0 - similarity[v, r] <= threshold}
