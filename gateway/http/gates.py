"""The gates every WebSocket upgrade passes, in one order: origin, key, admission.

Streaming doors and the subscriber route ask the same ``Gates``; a closed
gate is an HTTP answer to the upgrade (the one error body) and the outcome
the stream metrics count it under.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from gateway.frontdoors.dialect import Upgrade

from .admission import StreamHub
from .auth import Keys, Origins, origin_refused, unauthorized
from .errors import openai_error


def upgrade_of(websocket: WebSocket) -> Upgrade:
    """What a WebSocket upgrade says, free of the web framework (the dialects' vocabulary)."""
    return Upgrade(
        path=websocket.url.path,
        query=tuple(websocket.query_params.multi_items()),
        headers={k.lower(): v for k, v in websocket.headers.items()},
        subprotocols=tuple(websocket.scope.get("subprotocols", [])),
    )


@dataclass(frozen=True)
class Closed:
    """A gate that did not open: the answer, and its outcome label in ``stt_streams_total``."""

    outcome: str
    answer: JSONResponse


@dataclass(frozen=True)
class Gates:
    keys: Keys
    origins: Origins
    hub: StreamHub | None = None  # None: no admission (subscribers hold no engine work)

    def closed(self, upgrade: Upgrade, key: str | None, key_needed: bool = True) -> Closed | None:
        """The first gate ``upgrade`` does not pass, or None. ``key_needed``
        False: the request proved who it is otherwise (a signature), or
        presents its key later, in band."""
        origin = upgrade.header("origin")
        if not self.origins.permit(origin, upgrade.header("host")):
            return Closed("origin_refused", origin_refused(origin or ""))
        if key_needed and not self.key_valid(key):
            return Closed("unauthorized", unauthorized())
        refusal = self.hub.refusal() if self.hub is not None else None
        if self.hub is not None and refusal is not None:
            reason, retry_after = refusal
            answer = openai_error(503, reason, code="at_capacity", headers={"Retry-After": str(retry_after)})
            return Closed("draining" if self.hub.draining else "at_capacity", answer)
        return None

    def key_valid(self, key: str | None) -> bool:
        return not self.keys.required or self.keys.valid(key)
