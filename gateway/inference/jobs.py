"""What the engine is asked to do: a decode job and its priority."""

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
