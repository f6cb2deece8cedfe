"""The dialect interface: what a front door is, besides its route.

A door's opening is read once, into a frozen ``Opening`` record (or a
``Refusal``), by the dialect's classmethod ``opening``; the dialect is then
made for one connection from that record and lives as long as it, keeping
per-connection state (item ids, a request id). It never touches the socket,
the engine or the session: ``gateway.http.streaming`` does.
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

    def values(self, name: str) -> list[str]:
        """Every value of a query key, in order (a repeated key, e.g. ``redact=pci&redact=ssn``)."""
        return [v for k, v in self.query if k == name]

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


@dataclass(frozen=True)
class Opening:
    """What a door's opening says, read once, in one place.

    ``options`` are the session's, by the core's names; ``api_key`` is the
    key the client presents, ``session_id`` the name it asks for,
    ``webhook_url`` where its finals go besides the server's,
    ``subprotocol`` the one to accept; ``signed``: the upgrade proved who
    the client is (a valid signature), so no key is asked for;
    ``in_band``: the options come in the first messages
    (``Dialect.opening_frame``), not the upgrade. ``wire`` is the door's own
    state for the conversation (a frozen record of the dialect's), which
    the dialect is made from.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    session_id: str | None = None
    webhook_url: str | None = None
    subprotocol: str | None = None
    signed: bool = False
    in_band: bool = False
    wire: Any = None


@dataclass(frozen=True)
class Refusal:
    """An opening that cannot be served, and how its client is told.

    With a ``status`` the upgrade is answered over HTTP: ``body`` where the
    door's clients expect a body of their own, else the gateway's one error
    body (``gateway.http.errors``). Without one the socket is accepted, the
    dialect's fatal error event sent, then the close its code calls for.
    ``unauthorized``: the request failed to prove who it is (a bad
    signature), which is told before any other gate. ``api_key`` and
    ``subprotocol`` are what the request presented: a refusal is told only
    to a client that passes the gates.
    """

    code: str
    message: str
    status: int | None = None
    body: Mapping[str, Any] | None = None
    unauthorized: bool = False
    api_key: str | None = None
    subprotocol: str | None = None


class Dialect(abc.ABC):
    """A front door's wire protocol for one connection, made from its ``Opening``.

    ``opening`` reads the upgrade into that record (pure: the door's state
    is set from the record, in ``__init__``); the conversation is then
    ``commands`` for each client frame and ``frames`` for each session event.
    """

    name: ClassVar[str]  # in logs and metrics
    # True: a telephony door, whose session ids are its calls' (Twilio's callSid).
    telephony: ClassVar[bool] = False

    def __init__(self, opened: Opening):
        self.opened = opened

    # -- opening ------------------------------------------------------------
    @classmethod
    def opening(cls, upgrade: Upgrade, settings: Any = None) -> Opening | Refusal:
        """The record of what the upgrade asks for, or why it cannot be
        served. ``settings``: the server's settings for this door, from the
        doors table. The key and subprotocol are read first, so that a
        refusal still knows them."""
        key, subprotocol = cls.presented_key(upgrade), cls.accepted_subprotocol(upgrade)
        try:
            return cls.read_opening(upgrade, settings, Opening(api_key=key, subprotocol=subprotocol))
        except ProtocolError as exc:
            return cls.refused(exc, key, subprotocol)

    @classmethod
    @abc.abstractmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening | Refusal:
        """``presented`` (the key and subprotocol) completed from the upgrade;
        raise ``ProtocolError`` for options that cannot be served."""

    @classmethod
    def opening_frame(cls, frame: Frame, upgraded: Opening) -> Opening | None:
        """For a door that opens in band: an opening message read into the
        completed record (None: more messages first)."""
        raise ProtocolError("invalid_message", "this door opens at the upgrade")

    @classmethod
    def presented_key(cls, upgrade: Upgrade) -> str | None:
        """The key the client presents (``presented_key``)."""
        return presented_key(upgrade.header("authorization"), upgrade.subprotocols)

    @classmethod
    def accepted_subprotocol(cls, upgrade: Upgrade) -> str | None:
        """The subprotocol to accept (``chosen_subprotocol``)."""
        return chosen_subprotocol(upgrade.subprotocols)

    @classmethod
    def refused(cls, error: ProtocolError, api_key: str | None = None, subprotocol: str | None = None) -> Refusal:
        """How options refused at the opening are told: by default, accept,
        send the error as an event, then close."""
        return Refusal(error.code, error.message, api_key=api_key, subprotocol=subprotocol)

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

    def close_code(self, event: Event) -> int | None:
        """The close code an event calls for, if it ends the connection."""
        if isinstance(event, ErrorEvent) and event.fatal:
            return {"invalid_config": CLOSE_POLICY, "server_shutdown": CLOSE_GOING_AWAY}.get(event.code)
        return None
