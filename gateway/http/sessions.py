"""Live sessions and their subscribers: a call followed on a supervisor's screen.

Every stream, whatever its door, is a ``SessionRecord`` here while it runs
and for ``--session-retention-s`` after. A record has an owner (the tenant
of the key that opened it): a key lists, reads and follows only its own
sessions, an admin key every one, and session ids are unique per owner,
ended ones included while their snapshot is kept. The runner hands the record every
event it sends (``event_sent``, the observer interface); the record keeps
the finals (for snapshots and for the replay a late subscriber gets) and
offers each event, in the native protocol's form, to its subscribers.

A subscriber has a bounded backlog: one that cannot keep up is dropped
(closed with ``slow_subscriber``), never the call it follows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

from gateway.core.events import Event, Flushed, SessionClosed, Signalled, TranscriptFinal
from gateway.core.options import SessionOptions
from gateway.core.session import StreamSession
from gateway.frontdoors.dialect import CLOSE_NORMAL, CLOSE_POLICY, chosen_subprotocol, presented_key

from . import observability as metrics
from .auth import Viewer
from .errors import openai_error
from .gates import Gates, upgrade_of
from .webhooks import WebhookOutbox

MAX_RETAINED = 1000  # ended sessions kept for snapshots, newest first out last
SLOW_SUBSCRIBER = "slow_subscriber"


class Subscriber:
    """One follower of a session: a bounded queue of frames to send."""

    def __init__(self, backlog: int):
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=backlog)
        self.dropped = False

    def offer(self, frame: str | None) -> None:
        """A frame to send (None: the session ended); never waits."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped = True  # it fell behind: it goes, the call does not wait
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class SessionRecord:
    """One session as its subscribers and snapshots see it."""

    def __init__(
        self, session: StreamSession, door: str, webhooks: tuple[str, ...] = (), outbox: WebhookOutbox | None = None,
        owner: str | None = None,
    ):
        self.owner = owner  # the tenant that opened it (None: a server without keys)
        self._sequence = itertools.count()  # its webhook events, in order
        self.webhooks = webhooks if outbox is not None else ()
        self.outbox = outbox
        self.session: StreamSession | None = session  # let go of at the end: a retained record is small
        self._options = session.options
        self._duration = 0.0
        self.session_id = session.session_id
        self.door = door
        self.started = time.time()
        self.ended: float | None = None
        self.finals: list[dict[str, Any]] = []  # transcript.final events, native form, in order
        self.history: list[dict[str, Any]] = []  # what a late subscriber is replayed: finals and signals, in order
        self.closed_event: dict[str, Any] | None = None
        self.subscribers: set[Subscriber] = set()

    # -- the runner's observer interface ------------------------------------------
    def audio_received(self, n_bytes: int) -> None:
        pass

    def latency(self, kind: str, seconds: float) -> None:
        pass

    def event_sent(self, event: Event, delivered: bool) -> None:
        if isinstance(event, Flushed):
            return  # not part of the native protocol
        if not self.subscribers and not isinstance(event, (TranscriptFinal, Signalled, SessionClosed)):
            return  # a partial nobody follows: every stream's hot path, nothing to keep
        wire = event.to_dict()
        if isinstance(event, TranscriptFinal):
            self.finals.append(wire)
            self.history.append(wire)
            self._post(wire)
        elif isinstance(event, Signalled):
            self.history.append(wire)
        elif isinstance(event, SessionClosed):
            self.closed_event = wire
            self._post(wire | {"type": "session.completed"})
        if self.subscribers:
            frame = json.dumps(wire, ensure_ascii=False)
            for subscriber in self.subscribers:
                subscriber.offer(frame)

    def _post(self, event: dict[str, Any]) -> None:
        """One local insert per URL (the sending is the outbox's task), all
        with the event's place in the session: a resumed session goes on counting."""
        sequence = next(self._sequence)
        for url in self.webhooks:
            assert self.outbox is not None
            self.outbox.enqueue(url, event, self.session_id, sequence)

    # -- views ------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.ended is None

    @property
    def duration(self) -> float:
        return self.session.duration if self.session is not None else self._duration

    @property
    def options(self) -> SessionOptions:
        """The session's options (a session.update before audio may change them)."""
        return self.session.options if self.session is not None else self._options

    def end(self) -> None:
        self.ended = time.time()
        self._duration, self._options = self.duration, self.options
        self.session = None

    @property
    def next_segment_id(self) -> int:
        """The id a resumed session's first segment must have to continue this one."""
        return self.finals[-1]["segment"]["id"] + 1 if self.finals else self._options.first_segment_id

    def resume(self, session: StreamSession, webhooks: tuple[str, ...]) -> None:
        """The same session, continued on a new connection (docs/protocol.md section 7):
        its finals so far stay, the new ones follow."""
        self.session, self.ended, self.closed_event = session, None, None
        self._options = session.options
        self.webhooks = tuple(dict.fromkeys((*self.webhooks, *webhooks))) if self.outbox is not None else ()

    def summary(self, admin: bool = False) -> dict[str, Any]:
        options = self.options
        return {
            "session_id": self.session_id,
            **({"tenant": self.owner} if admin else {}),
            "kind": self.door,
            "status": "live" if self.live else "ended",
            "channels": options.channels,
            "labels": list(options.labels),
            "started": round(self.started, 3),
            "ended": None if self.ended is None else round(self.ended, 3),
            "audio_s": round(self.duration, 3),
        }

    def snapshot(self, admin: bool = False) -> dict[str, Any]:
        labels = self.options.labels
        channels = []
        for c, label in enumerate(labels):
            finals = [f for f in self.finals if f.get("channel", 0) == c]
            text = " ".join(f["segment"]["text"].strip() for f in finals if f["segment"]["text"].strip())
            channels.append({"channel": c, "label": label, "text": text, "finals": [f["segment"] for f in finals]})
        return self.summary(admin) | {"channels": channels}

    def replay(self) -> list[str]:
        """What a subscriber joining now is sent first: the finals and signals (DTMF) so far, and the end if it came."""
        events = [*self.history, *([self.closed_event] if self.closed_event else [])]
        return [json.dumps(e, ensure_ascii=False) for e in events]


SessionKey = tuple[str | None, str]  # (owner, session id)


class SessionRegistry:
    def __init__(self, retention_s: float = 3600.0, backlog: int = 1000, outbox: WebhookOutbox | None = None, webhook_url: str = ""):
        self.outbox = outbox
        self.webhook_url = webhook_url  # every session's, when set
        self.retention_s = retention_s
        self.backlog = backlog
        self.live: dict[SessionKey, SessionRecord] = {}
        self._ended: OrderedDict[SessionKey, SessionRecord] = OrderedDict()

    def open(self, session: StreamSession, door: str, webhook_url: str | None = None, owner: str | None = None) -> SessionRecord:
        """A new session's record, or, for a resume of one that ended and is
        still kept (same owner, its next segment id), that record continued."""
        urls = tuple(dict.fromkeys(u for u in (self.webhook_url, webhook_url) if u))
        key = (owner, session.session_id)
        record = self._ended.pop(key, None)
        if record is not None:
            record.resume(session, urls)
        else:
            record = SessionRecord(session, door, urls, self.outbox, owner)
        self.live[key] = record
        return record

    def refusal(self, owner: str | None, session_id: str, first_segment_id: int) -> str | None:
        """Why a client may not name its session ``session_id``, or None."""
        self._prune()
        if (owner, session_id) in self.live:
            return f"session_id {session_id!r} is taken by a live session"
        ended = self._ended.get((owner, session_id))
        if ended is not None and (not ended.finals or first_segment_id != ended.next_segment_id):
            return (
                f"session_id {session_id!r} is an ended session whose snapshot is kept for {self.retention_s:g} s: "
                "choose another" + (f", or resume it (first_segment_id={ended.next_segment_id})" if ended.finals else "")
            )
        return None

    def close(self, record: SessionRecord) -> None:
        record.end()
        for subscriber in record.subscribers:
            subscriber.offer(None)
        key = (record.owner, record.session_id)
        self.live.pop(key, None)
        self._ended[key] = record
        self._ended.move_to_end(key)
        self._prune()

    def visible(self, viewer: Viewer) -> list[SessionRecord]:
        """The live sessions ``viewer`` may see."""
        return [r for r in self.live.values() if viewer.sees(r.owner)]

    def find(self, viewer: Viewer, session_id: str, tenant: str | None = None) -> list[SessionRecord]:
        """The sessions of that id ``viewer`` may see (live first): one for a
        key; for an admin key, one per tenant that has the id (``tenant`` picks one)."""
        self._prune()
        return [
            r for r in (*self.live.values(), *reversed(self._ended.values()))
            if r.session_id == session_id and viewer.sees(r.owner) and (tenant is None or r.owner == tenant)
        ]

    def _prune(self) -> None:
        horizon = time.time() - self.retention_s
        while self._ended:
            oldest = next(iter(self._ended.values()))
            if len(self._ended) <= MAX_RETAINED and oldest.ended is not None and oldest.ended >= horizon:
                break
            self._ended.popitem(last=False)


def install_session_routes(app: FastAPI, sessions: SessionRegistry, gates: Gates, send_timeout_s: float) -> None:
    """The session routes. Their key was checked by the auth middleware (HTTP)
    or is checked here (the WebSocket); it decides which sessions are seen."""

    def lookup(viewer: Viewer, session_id: str, tenant: str | None) -> SessionRecord | Any:
        found = sessions.find(viewer, session_id, tenant)
        if not found:
            return openai_error(404, f"no session {session_id!r} (live, or ended in the last {sessions.retention_s:g} s)", "session_id", "session_not_found")
        if len({r.owner for r in found}) > 1:  # only an admin key sees several tenants
            return openai_error(
                409, f"several tenants have a session {session_id!r}: name one with ?tenant=", "tenant", "ambiguous_session",
                tenants=sorted(str(r.owner) for r in found),
            )
        return found[0]

    def request_viewer(request: Request | WebSocket) -> Viewer:
        return gates.keys.viewer(presented_key(request.headers.get("authorization"), request.scope.get("subprotocols", [])))

    @app.get("/v0/sessions", tags=["sessions"], summary="Live sessions (of this key; every one for an admin key)")
    async def list_sessions(request: Request) -> dict[str, Any]:
        viewer = request_viewer(request)
        return {"object": "list", "data": [r.summary(viewer.admin) for r in sessions.visible(viewer)]}

    @app.get(
        "/v0/sessions/{session_id}", tags=["sessions"], summary="A session's finals so far, per channel",
        responses={
            404: {"description": "No session of this key by that id, live or ended within the retention period"},
            409: {"description": "An admin key, and several tenants have a session by that id: add ?tenant="},
        },
    )
    async def session_snapshot(request: Request, session_id: str, tenant: str | None = None) -> Any:
        viewer = request_viewer(request)
        record = lookup(viewer, session_id, tenant)
        return record.snapshot(viewer.admin) if isinstance(record, SessionRecord) else record

    async def follow(websocket: WebSocket, session_id: str) -> None:
        upgrade = upgrade_of(websocket)
        key = presented_key(upgrade.header("authorization"), upgrade.subprotocols)
        closed = gates.closed(upgrade, key)
        if closed is not None:
            await websocket.send_denial_response(closed.answer)
            return
        record = lookup(gates.keys.viewer(key), session_id, upgrade.params().get("tenant"))
        if not isinstance(record, SessionRecord):
            await websocket.send_denial_response(record)
            return
        await websocket.accept(subprotocol=chosen_subprotocol(upgrade.subprotocols))
        replay = record.replay()
        subscriber = Subscriber(sessions.backlog + len(replay))
        for frame in replay:  # the finals so far, in order, before anything live
            subscriber.offer(frame)
        if record.live:
            record.subscribers.add(subscriber)
        else:
            subscriber.offer(None)
        metrics.subscribers_active.inc()
        try:
            await _send_until_done(websocket, subscriber, send_timeout_s)
        finally:
            metrics.subscribers_active.dec()
            record.subscribers.discard(subscriber)

    app.add_api_websocket_route("/v0/sessions/{session_id}/events", follow)


async def _send_until_done(websocket: WebSocket, subscriber: Subscriber, send_timeout_s: float) -> None:
    async def read() -> None:  # a subscriber only listens; this notices it leaving
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except (WebSocketDisconnect, RuntimeError):
            pass

    reader = asyncio.create_task(read())
    try:
        while True:
            getter = asyncio.ensure_future(subscriber.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return  # the subscriber left
            frame = getter.result()
            if frame is None:
                code, reason = (CLOSE_POLICY, SLOW_SUBSCRIBER) if subscriber.dropped else (CLOSE_NORMAL, "")
                await asyncio.wait_for(websocket.close(code, reason), send_timeout_s or None)
                return
            await asyncio.wait_for(websocket.send_text(frame), send_timeout_s or None)
    except (asyncio.TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
        return
    finally:
        reader.cancel()
