"""What the engine is asked to do: a decode job or a speaker embedding, and its priority."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .records import DecodeOptions


class Priority(IntEnum):
    FINAL = 0
    SPECULATIVE = 1  # a final started before its endpoint; promoted when confirmed
    PARTIAL = 2
    BATCH = 3

    @property
    def background(self) -> bool:
        """Work that must leave a worker free for finals."""
        return self >= Priority.PARTIAL


@dataclass
class DecodeJob:
    audio: np.ndarray  # float32 mono 16 kHz, at most 30 s
    options: DecodeOptions
    priority: Priority
    model: str | None = None  # None: the server's default model
    stream: str | None = None  # partials of one stream replace each other


@dataclass
class EmbedJob:
    """Speaker embeddings of the voiced ``spans`` of ``audio``: 1.6 s windows
    every 0.75 s over each span on its own (a window never bridges a pause).
    The result is ``VoiceWindows``: the embeddings and each window's centre
    in seconds from the start of ``audio``."""

    audio: np.ndarray  # float32 mono 16 kHz
    spans: tuple[tuple[int, int], ...]  # [start, end) samples of ``audio``
    priority: Priority
    stream: str | None = None  # never replaced: only partials are

    @classmethod
    def whole(cls, audio: np.ndarray, priority: Priority) -> EmbedJob:
        """All of ``audio`` as one span (a reference clip, a block of a live utterance)."""
        return cls(audio, ((0, audio.shape[0]),), priority)


@dataclass(frozen=True)
class VoiceWindows:
    embeddings: np.ndarray  # (n, 256) unit vectors
    centres: np.ndarray  # (n,) seconds, ascending within each span

    @classmethod
    def empty(cls) -> VoiceWindows:
        return cls(np.zeros((0, 256), np.float32), np.zeros(0))

    def shifted(self, seconds: float) -> VoiceWindows:
        return VoiceWindows(self.embeddings, self.centres + seconds)

    @classmethod
    def join(cls, parts: list[VoiceWindows]) -> VoiceWindows:
        """All windows of ``parts``, in time order."""
        if not parts:
            return cls.empty()
        embeddings = np.concatenate([p.embeddings for p in parts])
        centres = np.concatenate([p.centres for p in parts])
        order = np.argsort(centres, kind="stable")
        return cls(embeddings[order], centres[order])


Job = DecodeJob | EmbedJob
