"""The Twilio Media Streams dialect, byte-driven: Twilio's documented messages in, core commands out."""

from __future__ import annotations

import numpy as np

from gateway.frontdoors.twilio import TrackAligner


def test_the_aligner_places_chunks_by_timestamp():
    aligner = TrackAligner(["inbound", "outbound"], max_lag_ms=100)
    a, b = bytes([1]) * 160, bytes([2]) * 160
    assert aligner.add("inbound", 0, a) == b""  # outbound has nothing yet
    out = aligner.add("outbound", 0, b)
    assert out == bytes([1, 2]) * 160
    assert aligner.add("outbound", 0, b) == b""  # a duplicate: already sent
    aligner.add("inbound", 40, a)  # inbound skipped 20 ms: silence there
    out = aligner.add("outbound", 20, b) + aligner.add("outbound", 40, b)
    frames = np.frombuffer(out, np.uint8).reshape(-1, 2)
    assert list(frames[:160, 0]) == [0xFF] * 160 and list(frames[160:, 0]) == [1] * 160
    # a silent party does not hold the other up: past max_lag, it is padded
    for t in range(60, 400, 20):
        aligner.add("inbound", t, a)
    assert aligner.sent >= 400 * 8 - 100 * 8
    assert len(aligner.flush()) % 2 == 0


def test_the_aligner_rebases_a_track_whose_clock_jumps():
    aligner = TrackAligner(["inbound"], max_gap_ms=2000)
    chunk = bytes([1]) * 160
    out = b"".join(aligner.add("inbound", t, chunk) for t in (0, 20, 40))
    out += aligner.add("inbound", 1500, chunk)  # a real gap: 1.44 s of silence, then the chunk
    assert len(out) == 1520 * 8 and out.count(0xFF) == 1440 * 8
    out = aligner.add("inbound", 36_001_520, chunk) + aligner.add("inbound", 36_001_540, chunk)  # +10 h: re-based
    assert out == chunk * 2 and aligner.rebased == 1
    assert aligner.add("inbound", 36_001_560, chunk) == chunk  # later chunks follow by their timestamps
    assert aligner.add("inbound", 60, chunk) == chunk and aligner.rebased == 2  # back 10 h: re-based again
