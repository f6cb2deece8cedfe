"""The session registry and its subscribers, without a server."""

from __future__ import annotations

import asyncio

from gateway.http.sessions import Subscriber


def run(coro):
    return asyncio.run(coro)


def test_a_subscriber_that_falls_behind_is_dropped_without_waiting():
    async def go():
        subscriber = Subscriber(backlog=3)
        for n in range(3):
            subscriber.offer(f"event {n}")
        assert not subscriber.dropped
        subscriber.offer("one too many")  # never blocks
        assert subscriber.dropped and subscriber.queue.qsize() == 1
        assert await subscriber.queue.get() is None  # its writer closes it (slow_subscriber)
        subscriber.offer("later")  # ignored
        assert subscriber.queue.empty()

    run(go())
