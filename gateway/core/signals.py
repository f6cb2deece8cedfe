"""How many signals (a caller's DTMF keys) a session takes: bounded like every input.

A call's key presses are kept for its followers (the replay a late
subscriber gets), so a client sending them without end would grow the
session for ever: 200 000 keys once held 51 MB for an hour and were
replayed whole to every follower. A session takes at most ``total``
signals, and at most ``burst`` at once refilled at ``per_second`` of
stream audio (a person presses a few keys a second). A signal past either
bound is dropped, and the first of each run of drops is answered with a
``signal_limit`` error, so that nothing is dropped unsaid.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignalLimits:
    total: int = 1000
    burst: int = 32
    per_second: float = 8.0


class SignalBudget:
    def __init__(self, limits: SignalLimits = SignalLimits()):
        self.limits = limits
        self.taken = 0
        self._tokens = float(limits.burst)
        self._at = 0.0  # stream seconds of the last refill
        self._told = False  # the current run of drops was answered

    def admit(self, now_s: float) -> str | None:
        """None: take the signal; else why it is dropped (to be said once per run of drops), or "" (said already)."""
        limits = self.limits
        self._tokens = min(float(limits.burst), self._tokens + max(0.0, now_s - self._at) * limits.per_second)
        self._at = max(self._at, now_s)
        if self.taken < limits.total and self._tokens >= 1.0:
            self._tokens -= 1.0
            self.taken += 1
            self._told = False
            return None
        if self._told:
            return ""
        self._told = True
        if self.taken >= limits.total:
            return f"a session takes at most {limits.total} signals; this and later ones are dropped"
        return (
            f"more than {limits.burst} signals at once, or over {limits.per_second:g} a second of audio: "
            "dropped until they slow down"
        )
