"""Where a session's outputs wait for its transport: events and engine actions."""

from __future__ import annotations

import itertools

from gateway.inference.jobs import Job

from .commands import Cancel, DecodeRequest, EngineAction, Promote, Submit
from .events import Event


class Outbox:
    """Events for the client and actions for the engine, each in the order
    they were made; request ids are unique within the session."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._actions: list[EngineAction] = []
        self._request_ids = itertools.count(1)

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def request(self, kind: str, segment_id: int, audio_end: int, job: Job) -> DecodeRequest:
        request = DecodeRequest(next(self._request_ids), kind, segment_id, audio_end, job)
        self._actions.append(Submit(request))
        return request

    def cancel(self, request_id: int) -> None:
        self._actions.append(Cancel(request_id))

    def promote(self, request_id: int) -> None:
        self._actions.append(Promote(request_id))

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def take_actions(self) -> list[EngineAction]:
        actions, self._actions = self._actions, []
        return actions
