"""Who may open a stream: the open streams, load-based admission, and draining."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamHub:
    """The open streams: for admission, health and graceful shutdown."""

    engine: Any  # an Engine (``load`` and ``stream_lease``)
    max_streams: int = 0
    admission: bool = True
    runners: set[Any] = field(default_factory=set)  # the open streams' runners
    draining: bool = False

    def refusal(self) -> tuple[str, int] | None:
        """Why a new stream must wait, and for how long (seconds), or None."""
        if self.draining:
            return "the server is shutting down", 5
        if self.max_streams and len(self.runners) >= self.max_streams:
            return f"the server is at capacity ({self.max_streams} streams)", 5
        if self.admission and self.runners:
            load = self.engine.load()
            # Finals of the open streams already need the workers: one more
            # stream would make them late.
            if load.pressure >= 1.0:
                return (
                    f"the server is at capacity ({len(self.runners)} streams; finals use "
                    f"{load.final_utilisation:.0%} of the decoders, p95 wait {load.final_wait_p95:.2f} s)"
                ), 10
        return None

    @contextlib.contextmanager
    def open(self, runner: Any) -> Iterator[None]:
        """A stream is open for the duration: counted, drained on shutdown,
        and holding an engine lease (finals keep a worker)."""
        self.runners.add(runner)
        try:
            with self.engine.stream_lease():
                yield
        finally:
            self.runners.discard(runner)

    async def drain(self, timeout: float = 30.0) -> None:
        """Finalise every open stream, waiting at most ``timeout`` seconds."""
        self.draining = True
        for runner in list(self.runners):
            runner.shutdown()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.runners and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
