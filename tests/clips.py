"""The real speech the tests use (tests/data, with its SOURCES.md) and helpers around it, model-free."""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    text: str | None
    language: str
    duration: float


def _manifest() -> dict[str, Clip]:
    clips = {}
    for line in (DATA / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        clips[row["id"]] = Clip(row["id"], DATA / row["path"], row["text"], row["language"], row["duration"])
    return clips


CLIPS = _manifest()


def load_clip(clip_id: str) -> np.ndarray:
    """float32 mono 16 kHz samples of a test clip."""
    from gateway.audio import decode_file

    return decode_file(CLIPS[clip_id].path)


def two_speakers() -> tuple[Clip, Clip, np.ndarray]:
    """A two-party call: one speaker per channel, overlapping in time
    (16 kHz float frames, shape (n, 2))."""
    a, b = CLIPS["leopard-en"], CLIPS["ds-ldc93s1"]
    left = np.concatenate([load_clip(a.id), np.zeros(16000, np.float32)])
    right = np.concatenate([np.zeros(24000, np.float32), load_clip(b.id), np.zeros(16000, np.float32)])
    frames = np.zeros((max(len(left), len(right)), 2), np.float32)
    frames[: len(left), 0], frames[: len(right), 1] = left, right
    return a, b, frames


def speech_bounds(samples: np.ndarray, threshold_db: float = -35.0) -> tuple[float, float]:
    """Where the speech of a clean clip is, from 10 ms frame energy (seconds)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-10
    db = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > threshold_db)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def spoken(order: list[str], gaps: list[float], lead_s: float = 0.5) -> tuple[np.ndarray, str]:
    """Clips said one after another with the given pauses (16 kHz), and what was said."""
    pieces = [np.zeros(int(lead_s * 16000), np.float32)]
    for clip_id, gap in zip(order, gaps, strict=True):
        pieces += [load_clip(clip_id), np.zeros(int(gap * 16000), np.float32)]
    return np.concatenate(pieces), " ".join(CLIPS[c].text or "" for c in order)


# Five clips said one after another with pauses: a stream long enough to lose a
# connection in the middle of (tests/e2e/test_resume.py, tests/e2e/test_cluster.py).
CONVERSATION = (["leopard-en", "ds-ldc93s1", "lhotse-libri-2412-153948-0000", "ds-arctic-a0024", "fw-stereo-left"],
                [1.2, 1.0, 1.5, 1.0, 1.0])


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit PCM WAV of float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def check_continuous(finals: list[dict]) -> None:
    """A transcript that went on across connections: ids 0, 1, 2, ... with no gap or
    repeat, times that never go back, and no final's text twice."""
    ids = [f["segment"]["id"] for f in finals]
    assert ids == list(range(len(finals))), ids
    for before, after in zip(finals, finals[1:]):
        assert after["segment"]["start"] >= before["segment"]["end"] - 0.05, (before["segment"], after["segment"])
        assert after["ended_at"] >= before["ended_at"]
    texts = [f["segment"]["text"].strip() for f in finals if f["segment"]["text"].strip()]
    assert len(texts) == len(set(texts)), texts


# Three voices taking turns (leopard-en, ds-arctic-a0024, lhotse-libri: a
# LibriSpeech reader, a CMU ARCTIC speaker and another reader), each turn a
# whole clip, pauses of 0.5-0.9 s: who said what (speaker labels).
TURNS = (["leopard-en", "ds-arctic-a0024", "lhotse-libri-2412-153948-0000", "ds-arctic-a0024", "leopard-en"],
         [0.6, 0.8, 0.5, 0.9, 0.7])


def turns_of(order: list[str], gaps: list[float], lead_s: float = 0.5) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """``spoken``'s audio, and each turn's (start, end, clip) in seconds: where its speech is."""
    audio, _ = spoken(order, gaps, lead_s)
    turns, at = [], lead_s
    for clip_id, gap in zip(order, gaps, strict=True):
        samples = load_clip(clip_id)
        first, last = speech_bounds(samples)
        turns.append((at + first, at + last, clip_id))
        at += samples.size / 16000 + gap
    return audio, turns
