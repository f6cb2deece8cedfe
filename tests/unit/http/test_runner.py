"""The runner's parts that need no socket: its observers."""

from __future__ import annotations

from gateway.core.events import SessionCreated


def test_an_observer_that_raises_does_not_stop_the_others():
    from gateway.http.streaming.runner import Tee

    class Broken:
        def audio_received(self, n_bytes):
            raise OSError("disk full")

        def event_sent(self, event, delivered):
            raise OSError("disk full")

        def latency(self, kind, seconds):
            raise OSError("disk full")

    class Counting:
        def __init__(self):
            self.calls = 0

        def audio_received(self, n_bytes):
            self.calls += 1

        def event_sent(self, event, delivered):
            self.calls += 1

        def latency(self, kind, seconds):
            self.calls += 1

    counting = Counting()
    tee = Tee(Broken(), counting)
    tee.audio_received(10)
    tee.event_sent(SessionCreated("s", {}, "0"), True)
    tee.latency("final", 0.5)
    assert counting.calls == 3
