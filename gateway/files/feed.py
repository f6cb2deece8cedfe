"""A file's audio for its transcription, in two passes, never all of it at once.

Two hours of eight channels are 3.7 GB as float32 at 16 kHz; held whole,
one upload could take the process (and every call on it) down. So a file
is read twice from its bytes (which the upload limit bounds):

1. ``scan_file``: decode it block by block and run the VAD of each channel
   over it, keeping only where the speech is (``SpeechRegion``\\ s) and the
   length. A file that is not audio, or too long, is refused here, before
   any decoding work is queued.
2. ``ChunkFeed``: decode it again, on a thread of its own, and cut out each
   channel's chunks (``plan_chunks``) in order as their audio goes by. A
   channel gets its next chunk when it asks; at most ``ahead`` chunks wait
   per channel, and the decoder waits for the channel that lags (they all
   move: each channel's transcription takes its chunks as the engine
   decodes them).

What a file holds in memory is then a few chunks (at most 28 s each) per
channel, whatever its length. ``ArrayChunks`` serves audio already in
memory the same way (tests, the CLI's short clips).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .chunks import Span, SpeechRegion, SpeechScan

Chunk = tuple[Span, np.ndarray]  # a chunk's span (file samples) and its audio


class ChunkSource(Protocol):
    """One channel's chunks, in plan order: each ``next`` is the future of the
    next one, or of None after the last."""

    def next(self) -> Future[Chunk | None]: ...


@dataclass(frozen=True)
class FileScan:
    """What the first pass learnt: the length and, per channel, where the speech is."""

    samples: int  # per channel, at 16 kHz
    regions: tuple[list[SpeechRegion], ...]  # one list per channel

    @property
    def channels(self) -> int:
        return len(self.regions)


def scan_file(blocks: Iterable[np.ndarray], max_chunk_s: float = 28.0) -> FileScan:
    """Pass 1 over (channels, samples) blocks: the VAD of every channel, no audio kept."""
    scans: list[SpeechScan] = []
    for block in blocks:
        if not scans:
            scans = [SpeechScan(max_chunk_s) for _ in range(block.shape[0])]
        for scan, plane in zip(scans, block, strict=True):
            scan.feed(plane)
    if not scans:
        return FileScan(0, ([],))
    return FileScan(scans[0].samples, tuple(scan.finish() for scan in scans))


class ChunkCutter:
    """Cuts the chunks of one channel out of its samples as they go by,
    holding only the samples from the next chunk's start on."""

    def __init__(self, spans: Sequence[Span]):
        self._spans = deque(spans)
        self._held: list[np.ndarray] = []
        self._held_from = 0  # the file sample the held audio starts at
        self._position = 0  # samples seen

    def feed(self, samples: np.ndarray) -> list[Chunk]:
        self._held.append(samples)
        self._position += samples.shape[0]
        out = []
        while self._spans and self._spans[0][1] <= self._position:
            out.append(self._cut(self._spans.popleft()))
        self._drop_before(self._spans[0][0] if self._spans else self._position)
        return out

    def finish(self) -> list[Chunk]:
        """The chunks the audio ended inside of (or before), as far as it went."""
        out = [self._cut(span) for span in self._spans]
        self._spans.clear()
        self._held = []
        return out

    def _cut(self, span: Span) -> Chunk:
        held = np.concatenate(self._held) if len(self._held) != 1 else self._held[0]
        self._held = [held]
        lo, hi = span[0] - self._held_from, min(span[1], self._position) - self._held_from
        return span, held[max(0, lo) : max(0, hi)].copy()

    def _drop_before(self, start: int) -> None:
        while self._held and self._held_from + self._held[0].shape[0] <= start:
            self._held_from += self._held.pop(0).shape[0]
        if self._held and self._held_from < start:
            self._held[0] = self._held[0][start - self._held_from :].copy()
            self._held_from = start


class ChunkFeed:
    """Pass 2: ``blocks()`` decoded again on a thread of its own, each
    channel's chunks handed out in order (``channel(c).next()``).

    ``close`` stops the decoding (a client that left); it is safe to call
    at any time, and more than once.
    """

    def __init__(self, blocks: Callable[[], Iterator[np.ndarray]], plans: Sequence[Sequence[Span]], ahead: int = 4):
        self._blocks = blocks
        self._plans = plans
        self._ahead = ahead
        self._lock = threading.Condition()
        self._ready: list[deque[Chunk]] = [deque() for _ in plans]
        self._waiting: list[Future[Chunk | None] | None] = [None] * len(plans)
        self._finished = False
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def channel(self, index: int) -> ChunkSource:
        return _Channel(self, index)

    def next(self, channel: int) -> Future[Chunk | None]:
        future: Future[Chunk | None] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="chunk-feed", daemon=True)
                self._thread.start()
            if self._ready[channel]:
                future.set_result(self._ready[channel].popleft())
                self._lock.notify_all()  # room for the decoder
            elif self._error is not None:
                future.set_exception(self._error)
            elif self._finished or self._closed:
                future.set_result(None)
            else:
                self._waiting[channel] = future
        return future

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            for ready in self._ready:
                ready.clear()
        for future in self._let_go():
            future.cancel()

    def _let_go(self) -> list[Future[Chunk | None]]:
        """The readers waiting now, no longer waiting (to be answered outside the lock)."""
        with self._lock:
            waiting, self._waiting = self._waiting, [None] * len(self._plans)
        return [future for future in waiting if future is not None]

    def _run(self) -> None:
        cutters = [ChunkCutter(plan) for plan in self._plans]
        try:
            for block in self._blocks():
                for c, cutter in enumerate(cutters):
                    for chunk in cutter.feed(block[c]):
                        if not self._hand(c, chunk):
                            return
            for c, cutter in enumerate(cutters):
                for chunk in cutter.finish():
                    if not self._hand(c, chunk):
                        return
        except BaseException as exc:  # the first pass decoded the same bytes: this is not expected
            self._fail(exc)
            return
        with self._lock:
            self._finished = True
        for future in self._let_go():
            future.set_result(None)

    def _hand(self, channel: int, chunk: Chunk) -> bool:
        """Give a chunk to its channel's waiting reader, or queue it (waiting
        for room); False once the feed is closed."""
        with self._lock:
            while len(self._ready[channel]) >= self._ahead and not self._closed:
                self._lock.wait()
            if self._closed:
                return False
            waiting = self._waiting[channel]
            self._waiting[channel] = None
            if waiting is None:
                self._ready[channel].append(chunk)
                return True
        waiting.set_result(chunk)
        return True

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._error = exc
        for future in self._let_go():
            future.set_exception(exc)


class _Channel:
    def __init__(self, feed: ChunkFeed, index: int):
        self._feed = feed
        self._index = index

    def next(self) -> Future[Chunk | None]:
        return self._feed.next(self._index)


class ArrayChunks:
    """Chunks of audio already in memory (views of it, not copies)."""

    def __init__(self, audio: np.ndarray, spans: Sequence[Span]):
        self._audio = audio
        self._spans = deque(spans)

    def next(self) -> Future[Chunk | None]:
        future: Future[Chunk | None] = Future()
        if self._spans:
            lo, hi = self._spans.popleft()
            future.set_result(((lo, hi), self._audio[lo:hi]))
        else:
            future.set_result(None)
        return future
