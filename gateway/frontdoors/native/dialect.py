"""The native dialect: binary frames are audio, text frames are JSON control
messages, and the core's events are sent as they are, one JSON text frame each."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from gateway.core.commands import Audio, Command, Configure, End, Flush
from gateway.core.errors import ProtocolError
from gateway.core.events import Event, Flushed

from .. import wire
from ..dialect import Dialect, Frame, Opening, Upgrade

MESSAGES = ("session.update", "flush", "end")


def parse_message(text: str) -> Command:
    """A control message: ``session.update``, ``flush`` or ``end``."""
    message = wire.json_object(text, 'a text frame (a control message such as {"type": "flush"}; audio goes in binary frames)')
    if not isinstance(message.get("type"), str):
        raise ProtocolError("invalid_message", 'a message must be a JSON object with a "type" string')
    kind = message["type"]
    if kind == "flush":
        return Flush()
    if kind == "end":
        return End()
    if kind == "session.update":
        session = message.get("session", {})
        if not isinstance(session, dict):
            raise ProtocolError("invalid_message", '"session" must be an object of session options')
        return Configure(session)
    raise ProtocolError("invalid_message", f"unknown message type {kind!r}; known types: {', '.join(MESSAGES)}")


class NativeDialect(Dialect):
    name = "native"

    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening:
        params = upgrade.params()  # the core's option names, as they are
        # The session's name and where it is posted: not options of it.
        session_id, webhook_url = params.pop("session_id", None), params.pop("webhook_url", None)
        if "redact" in params:
            params["redact"] = ",".join(upgrade.values("redact"))  # repeated or comma-separated: every kind counts
        return replace(presented, options=params, session_id=session_id, webhook_url=webhook_url)

    def commands(self, frame: Frame) -> list[Command]:
        if isinstance(frame, bytes):
            return [Audio(frame)]
        return [parse_message(frame)]

    def frames(self, event: Event) -> list[Frame]:
        if isinstance(event, Flushed):
            return []  # not (yet) part of the native protocol
        return [json.dumps(event.to_dict(), ensure_ascii=False)]
