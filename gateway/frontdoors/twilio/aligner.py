"""Twilio's tracks, placed by their timestamps into one interleaved stream.

With ``track="both_tracks"`` a call's ``inbound`` and ``outbound`` audio
arrive as separate 20 ms media chunks on one socket, each with its
track's ``timestamp`` (ms since the stream started). Each chunk is written
where its timestamp says; gaps are silence; a chunk that comes after its
place was sent (too late) or twice is dropped where it overlaps; a track
that falls more than ``max_lag_ms`` behind the other is padded with
silence, so that a silent party never holds up the other's transcript.

A timestamp further than ``max_gap_ms`` from where its track stands (a
jump of hours forward, or back; a stream whose timestamps start at 1e30)
is not a gap in the call but a broken clock: the track's timeline is
re-based so that the chunk goes on where the track is, and the chunks
after it follow it by their timestamps as before. Filling such a jump
with silence lost the rest of a call (each later chunk landed hours away).
"""

from __future__ import annotations

import numpy as np

RATE = 8000  # Twilio Media Streams: G.711 mu-law at 8 kHz
MULAW_SILENCE = 0xFF


class TrackAligner:
    def __init__(self, tracks: list[str], max_lag_ms: int = 500, max_gap_ms: int = 2000):
        self.tracks = tracks
        self.max_lag = max_lag_ms * RATE // 1000
        self.max_gap = max_gap_ms * RATE // 1000  # a longer jump is not filled whole: it is not a real gap
        self._buffers = {track: bytearray() for track in tracks}  # from ``sent`` on
        self._shift = {track: 0 for track in tracks}  # samples added to a track's timestamps (re-based)
        self.sent = 0  # samples of every track handed on
        self.rebased = 0  # timestamp jumps re-based

    def add(self, track: str, timestamp_ms: int, payload: bytes) -> bytes:
        """Place a chunk; returns the interleaved audio that is now complete."""
        buffer = self._buffers[track]
        start = timestamp_ms * RATE // 1000 + self._shift[track] - self.sent
        if not -self.max_gap <= start - len(buffer) <= self.max_gap:  # a jump, not a gap: re-base the track
            self._shift[track] += len(buffer) - start
            self.rebased += 1
            start = len(buffer)
        if start < 0:  # its beginning was sent already (late, or a duplicate)
            payload, start = payload[-start:], 0
        if start > len(buffer):
            buffer.extend(bytes([MULAW_SILENCE]) * (start - len(buffer)))
        buffer[start : start + len(payload)] = payload
        return self._ready()

    def flush(self) -> bytes:
        """The end: every track padded to the longest, all of it."""
        longest = max(len(b) for b in self._buffers.values())
        for b in self._buffers.values():
            b.extend(bytes([MULAW_SILENCE]) * (longest - len(b)))
        return self._ready()

    def _ready(self) -> bytes:
        longest = max(len(b) for b in self._buffers.values())
        for b in self._buffers.values():  # a silent party does not hold the other up
            if longest - len(b) > self.max_lag:
                b.extend(bytes([MULAW_SILENCE]) * (longest - self.max_lag - len(b)))
        ready = min(len(b) for b in self._buffers.values())
        if ready == 0:
            return b""
        planes = [np.frombuffer(bytes(self._buffers[t][:ready]), np.uint8) for t in self.tracks]
        for b in self._buffers.values():
            del b[:ready]
        self.sent += ready
        return planes[0].tobytes() if len(planes) == 1 else np.stack(planes, axis=1).tobytes()
