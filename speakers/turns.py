"""From window labels to who said each word: the speaker of a time, runs of one speaker, the letters.

Windows are 1.6 s long and overlap, so a word belongs to the window whose
centre is nearest its own middle; a segment holds one speaker, so it is
split where the words' speaker changes (the runs below). Labels are shown as
letters in order of first appearance (the contract's ``A``, ``B``, ...).
"""

from __future__ import annotations

import numpy as np


def speaker_at(times_s: np.ndarray, centres_s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of the window whose centre is nearest each time (a tie goes
    to the earlier window). ``centres_s`` ascending, one per label."""
    times = np.asarray(times_s, dtype=np.float64)
    centres = np.asarray(centres_s, dtype=np.float64)
    labels = np.asarray(labels)
    if centres.shape != labels.shape or centres.ndim != 1:
        raise ValueError("one window centre per label expected")
    if centres.size == 0:
        raise ValueError("no windows to take a speaker from")
    if np.any(np.diff(centres) < 0):
        raise ValueError("window centres must ascend")
    after = np.searchsorted(centres, times)  # first centre >= each time
    before = np.clip(after - 1, 0, centres.size - 1)
    after = np.clip(after, 0, centres.size - 1)
    nearer_after = np.abs(centres[after] - times) < np.abs(times - centres[before])
    result: np.ndarray = labels[np.where(nearer_after, after, before)]
    return result


def runs(labels: list[int] | np.ndarray) -> list[tuple[int, int, int]]:
    """(first index, end index, label) of each run of equal labels, in order:
    where a segment is split so that it holds one speaker."""
    out: list[tuple[int, int, int]] = []
    for i, label in enumerate(int(x) for x in labels):
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], i + 1, label)
        else:
            out.append((i, i + 1, label))
    return out


def letter(label: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, ...: a speaker's name on the wire."""
    if label < 0:
        raise ValueError(f"a speaker label is 0 or more, not {label}")
    name = ""
    label += 1
    while label:
        label, rest = divmod(label - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
