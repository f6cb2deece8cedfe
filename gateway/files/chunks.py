"""Where a file's speech is, and the chunks it is decoded in.

A file is cut into chunks of at most ``max_chunk_s`` at VAD pauses; long
silences between speech are skipped (they cost decode time and invite
hallucinations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.audio.resample import SAMPLE_RATE
from vad.segmenter import Segmenter, SegmenterConfig, SegmentEvent, SpeechEnd, SpeechStart

Span = tuple[int, int]  # [start, end) in samples, file time


@dataclass(frozen=True)
class SpeechRegion:
    span: Span  # the utterance's audio: pre-roll and trailing silence included
    voiced: Span  # first to last voiced frame


class SpeechScan:
    """Where one channel's speech is, found as its samples go by (the VAD
    keeps no audio): ``feed`` blocks in order, then ``finish``."""

    def __init__(self, max_chunk_s: float = 28.0):
        self._segmenter = Segmenter(
            SegmenterConfig(aggressiveness=1, endpoint_ms=300, pre_roll_ms=300, max_segment_s=max_chunk_s)
        )
        self.regions: list[SpeechRegion] = []
        self.samples = 0
        self._start: int | None = None
        self._onset = 0

    def feed(self, samples: np.ndarray) -> None:
        self.samples += samples.shape[0]
        self._take(self._segmenter.feed(samples))

    def finish(self) -> list[SpeechRegion]:
        self._take(self._segmenter.flush())
        return self.regions

    def _take(self, events: list[SegmentEvent]) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                self._start, self._onset = event.start, event.onset
            elif isinstance(event, SpeechEnd) and self._start is not None:
                voiced = (self._onset, max(event.speech_end, self._onset))
                self.regions.append(SpeechRegion((self._start, event.end), voiced))
                self._start = None


def speech_regions(audio: np.ndarray, max_chunk_s: float = 28.0) -> list[SpeechRegion]:
    scan = SpeechScan(max_chunk_s)
    scan.feed(audio)
    return scan.finish()


def plan_chunks(
    total: int,
    regions: list[SpeechRegion],
    max_chunk_s: float = 28.0,
    max_gap_s: float = 2.0,
    pad_s: float = 0.2,
) -> list[Span]:
    """Sample ranges of a file of ``total`` samples to decode: its speech
    ``regions`` joined up to ``max_chunk_s``, in order, never overlapping."""
    if not regions:
        # The VAD heard nothing; let Whisper's own no-speech judgement decide.
        step = int(max_chunk_s * SAMPLE_RATE)
        return [(s, min(s + step, total)) for s in range(0, total, step)]
    limit, gap = int(max_chunk_s * SAMPLE_RATE), int(max_gap_s * SAMPLE_RATE)
    chunks: list[list[int]] = []
    for region in regions:
        start, end = region.span
        if chunks and start - chunks[-1][1] <= gap and end - chunks[-1][0] <= limit:
            chunks[-1][1] = end
        else:
            chunks.append([start, end])
    pad = int(pad_s * SAMPLE_RATE)
    out = []
    for i, (start, end) in enumerate(chunks):
        lo = max(start - pad, chunks[i - 1][1] if i else 0)
        hi = min(end + pad, chunks[i + 1][0] if i + 1 < len(chunks) else total)
        hi = min(hi, max(end, lo + limit))  # padding never pushes a chunk past the limit
        lo = max(lo, hi - limit)
        out.append((lo, hi))
    return out


def subtract_spans(spans: list[Span], holes: list[Span]) -> list[Span]:
    """``spans`` minus the union of ``holes`` (both sorted by start)."""
    out: list[Span] = []
    for lo, hi in spans:
        for h_lo, h_hi in holes:
            if h_hi <= lo or h_lo >= hi:
                continue
            if h_lo > lo:
                out.append((lo, h_lo))
            lo = max(lo, h_hi)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out
