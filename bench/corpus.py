"""The speech the benchmarks use: clips with reference transcripts.

By default the shared speech set beside the project (``../shared/audio``,
English clips with references); where it is absent, the test clips in
``tests/data``. Both have a ``manifest.jsonl`` (id, path, language, text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = (ROOT.parent / "shared" / "audio", ROOT / "tests" / "data")


@dataclass(frozen=True)
class Clip:
    id: str
    text: str
    samples: np.ndarray  # float32 mono 16 kHz
    speech_start: float  # seconds, from frame energy
    speech_end: float

    @property
    def duration(self) -> float:
        return len(self.samples) / 16000


def speech_bounds(samples: np.ndarray, threshold_db: float = -35.0) -> tuple[float, float]:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-10
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def loudness(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """10 ms frame levels (dB) and the level that counts as sound in them:
    within 25 dB of the loudest frame and 10 dB above the noise floor."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    return level, max(level.max() - 25, np.percentile(level, 10) + 10)


def load_corpus(directory: Path | None = None, language: str = "en", max_duration: float = 60.0) -> list[Clip]:
    from gateway.audio import decode_file

    directory = directory or next(d for d in DEFAULT_DIRS if (d / "manifest.jsonl").exists())
    clips = []
    for line in (directory / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("text") and row["language"] == language and row["duration"] <= max_duration:
            samples = decode_file(directory / row["path"])
            start, end = speech_bounds(samples)
            clips.append(Clip(row["id"], row["text"], samples, start, end))
    return clips


@dataclass(frozen=True)
class Playlist:
    """Clips one after another with silence between, as one stream's audio."""

    clips: list[Clip]
    offsets: list[float]  # where each clip starts in the stream (s)
    samples: np.ndarray

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.clips)

    @property
    def duration(self) -> float:
        return len(self.samples) / 16000


def playlist(clips: list[Clip], gap_s: float = 1.5) -> Playlist:
    gap = np.zeros(int(gap_s * 16000), np.float32)
    parts, offsets, position = [], [], 0
    for clip in clips:
        offsets.append(position / 16000)
        parts += [clip.samples, gap]
        position += len(clip.samples) + len(gap)
    return Playlist(clips, offsets, np.concatenate(parts) if parts else np.zeros(0, np.float32))


def split_evenly(clips: list[Clip], parts: int) -> list[list[Clip]]:
    """Deal clips into ``parts`` lists of similar total duration (longest first)."""
    buckets: list[list[Clip]] = [[] for _ in range(parts)]
    totals = [0.0] * parts
    for clip in sorted(clips, key=lambda c: -c.duration):
        i = totals.index(min(totals))
        buckets[i].append(clip)
        totals[i] += clip.duration
    return buckets
