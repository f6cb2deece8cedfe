"""What each service's finals have said, for both framework clients (pipecat_client.py, livekit_client.py).

A client stops a service once its finals have said the audio's last word
(the test's spec names it): the finals are waited for, not given a fixed
time. Without a last word (bench/frameworks.py), 3 s as before. Plain
Python: the clients run in the frameworks' own virtualenv.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

_HEARD: dict[str, list[str]] = {}  # service -> the words of its finals so far


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()


def heard_final(service: str, text: str) -> None:
    _HEARD.setdefault(service, []).extend(words(text))


async def until_said(service: str, last_word: str | None, done: Callable[[], bool] = lambda: False) -> None:
    """Until the service's finals have said ``last_word`` (at most 60 s), or ``done()``."""
    deadline = time.monotonic() + (60.0 if last_word else 3.0)
    while not done() and time.monotonic() < deadline and (last_word is None or last_word not in _HEARD.get(service, [])):
        await asyncio.sleep(0.05)
