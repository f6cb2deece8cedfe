"""The dialect interface: what a front door is, besides its route.

A dialect is made for one connection, from its upgrade request, and lives
as long as it; it may keep per-connection state (item ids, a request id).
It never touches the socket, the engine or the session: the runner does.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gateway.core.commands import Command
from gateway.core.errors import ProtocolError
from gateway.core.events import ErrorEvent, Event

Frame = str | bytes  # a WebSocket message: text or binary

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
KEY_SUBPROTOCOL = "bearer."  # browsers cannot set headers: the key may come as a subprotocol


@dataclass(frozen=True)
class Upgrade:
    """What a WebSocket upgrade request says, free of any web framework."""

    path: str
    query: tuple[tuple[str, str], ...] = ()  # in order, repeated keys kept
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    subprotocols: tuple[str, ...] = ()

    def params(self) -> dict[str, str]:
        """The query as a dict (the last of a repeated key wins)."""
        return dict(self.query)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def bearer_token(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def presented_key(authorization: str | None, subprotocols: Sequence[str]) -> str | None:
    """The key an upgrade presents: ``Authorization: Bearer`` or a ``bearer.<key>`` subprotocol."""
    key = bearer_token(authorization)
    if key is not None:
        return key
    return next((p[len(KEY_SUBPROTOCOL) :] for p in subprotocols if p.startswith(KEY_SUBPROTOCOL)), None)


def chosen_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to accept: browsers must get one they offered back
    (the first that is not a key, else the first)."""
    chosen = next((p for p in offered if not p.startswith(KEY_SUBPROTOCOL)), None)
    return chosen or (offered[0] if offered else None)


class Dialect(abc.ABC):
    name: ClassVar[str]  # in logs and metrics
    # True: the options (and possibly the key and the session id) come in the
    # first messages, not the upgrade (Twilio's <Stream> URL has no query):
    # the socket is accepted, then ``open_with`` is fed frames until ready.
    opens_in_band: ClassVar[bool] = False
    # True: a telephony door, whose session ids are its calls' (Twilio's callSid).
    telephony: ClassVar[bool] = False

    def __init__(self, upgrade: Upgrade):
        self.upgrade = upgrade

    # -- opening ------------------------------------------------------------
    def api_key(self) -> str | None:
        """The key the client presents (``presented_key``)."""
        return presented_key(self.upgrade.header("authorization"), self.upgrade.subprotocols)

    def subprotocol(self) -> str | None:
        """The subprotocol to accept (``chosen_subprotocol``)."""
        return chosen_subprotocol(self.upgrade.subprotocols)

    def upgrade_refusal(self) -> tuple[int, dict[str, Any]] | None:
        """An HTTP refusal (status, JSON body) of the upgrade itself, before
        anything else is looked at (a bad request signature); None: go on."""
        return None

    def authorized_at_upgrade(self) -> bool:
        """Whether the upgrade proved who the client is on its own (a valid
        signature), so that no API key is asked for."""
        return False

    def open_with(self, frame: Frame) -> bool:
        """An in-band opening message; True once the options are known."""
        raise ProtocolError("invalid_message", "this door opens at the upgrade")

    def webhook_url(self) -> str | None:
        """Where this session's finals are POSTed besides the server's --webhook-url (its host must be allowed)."""
        return None

    def session_id(self) -> str | None:
        """The id the client asks its session to have (unique among live ones); None: one is made up."""
        return None

    @abc.abstractmethod
    def options(self) -> Mapping[str, Any]:
        """The session options the upgrade asks for, by the core's names."""

    # -- the conversation -----------------------------------------------------
    @abc.abstractmethod
    def commands(self, frame: Frame) -> list[Command]:
        """What a client frame says; raise ``ProtocolError`` for one it cannot read."""

    def at_loss(self) -> list[Command]:
        """Commands for what the dialect still holds when the client goes
        away without a word (audio it was aligning), before the session finalises."""
        return []

    @abc.abstractmethod
    def frames(self, event: Event) -> list[Frame]:
        """What the client is sent for a session event (possibly nothing)."""

    def refusal(self, error: ProtocolError) -> tuple[int, dict[str, Any]] | None:
        """The HTTP answer (status, JSON body) to options refused at the
        upgrade, for protocols whose clients expect one there; None: accept,
        send the error as an event, then close (the default)."""
        return None

    def close_code(self, event: Event) -> int | None:
        """The close code an event calls for, if it ends the connection."""
        if isinstance(event, ErrorEvent) and event.fatal:
            return {"invalid_config": CLOSE_POLICY, "server_shutdown": CLOSE_GOING_AWAY}.get(event.code)
        return None
