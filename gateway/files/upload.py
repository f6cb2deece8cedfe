"""An uploaded file, transcribed without holding its audio (``feed``).

``Upload.read`` is the first pass: it refuses what is not audio or is too
long, and learns the length and where each channel's speech is. The
drivers below then plan each channel and take its chunks from a second
decoding (``ChunkFeed``), closed when they end, however they end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from gateway.audio import decode_blocks
from gateway.core.records import Transcription
from gateway.inference.engine import Engine

from .feed import ChunkFeed, FileScan, scan_file
from .transcription import (
    AHEAD,
    BatchRequest,
    FileTranscription,
    join_channels,
    run_steps,
    text_as_decoded,
    transcribe_channels,
    transcribe_planned,
)


@dataclass(frozen=True)
class Upload:
    source: bytes | str | os.PathLike[str]  # the file's bytes (bounded by the upload limit) or its path
    max_seconds: float | None
    keep_channels: bool
    scan: FileScan

    @classmethod
    def read(cls, source: bytes | str | os.PathLike[str], max_seconds: float | None = None, keep_channels: bool = False) -> Upload:
        """Pass 1 (blocking: run it off the event loop). Raises ``AudioDecodeError``
        (``AudioTooLong``) for a file that is not audio (too long)."""
        return cls(source, max_seconds, keep_channels, scan_file(decode_blocks(source, max_seconds, keep_channels)))

    @property
    def channels(self) -> int:
        return self.scan.channels

    @property
    def ahead(self) -> int:
        """Chunks each channel holds at once: the channels share the engine's
        workers, so eight of them keep it as busy with two each as one with six."""
        return max(2, AHEAD // self.channels)

    def plans(self, request: BatchRequest) -> list[FileTranscription]:
        """One plan per channel; ``BatchInputError`` for a file without samples."""
        return [FileTranscription(self.scan.samples, regions, request, ahead=self.ahead) for regions in self.scan.regions]

    def feed(self, plans: Sequence[FileTranscription]) -> ChunkFeed:
        return ChunkFeed(self._blocks, [p.chunks for p in plans], ahead=self.ahead)

    def _blocks(self) -> Iterator[np.ndarray]:
        return decode_blocks(self.source, self.max_seconds, self.keep_channels)


async def transcribe_upload(engine: Engine, upload: Upload, request: BatchRequest, labels: Sequence[str] = ()) -> Transcription:
    """Every channel (labelled, when kept apart), on the event loop."""
    plans = upload.plans(request)
    feed = upload.feed(plans)
    try:
        sources = [feed.channel(c) for c in range(len(plans))]
        if upload.keep_channels:
            return await transcribe_channels(engine, plans, sources, labels)
        return await transcribe_planned(engine, plans[0], sources[0])
    finally:
        feed.close()


async def upload_text(engine: Engine, upload: Upload, request: BatchRequest) -> AsyncGenerator[str | Transcription, None]:
    """A one-channel upload's text as it is decoded, then the transcription."""
    (plan,) = upload.plans(request)
    feed = upload.feed([plan])
    pieces = text_as_decoded(engine, plan, feed.channel(0))
    try:
        async for piece in pieces:
            yield piece
    finally:
        await pieces.aclose()
        feed.close()


def transcribe_upload_blocking(engine: Engine, upload: Upload, request: BatchRequest, labels: Sequence[str] = ()) -> Transcription:
    """The same, blocking (the CLI). The channels share one decoding, so
    they are driven side by side, a thread each: one driven after another
    would wait for chunks the decoder cannot hand out until the others take theirs."""
    plans = upload.plans(request)
    feed = upload.feed(plans)
    pool = ThreadPoolExecutor(len(plans), thread_name_prefix="channel")
    try:
        runs = [pool.submit(run_steps, plan.steps(engine, feed.channel(c))) for c, plan in enumerate(plans)]
        results = [run.result() for run in runs]
    finally:
        feed.close()  # first: a channel still waiting for a chunk is let go
        pool.shutdown(wait=True)
    return join_channels(results, labels) if upload.keep_channels else results[0]
