"""Webhooks: each final and each session's end POSTed, signed, at least once, in order.

Deliveries go through a durable outbox, a SQLite table (stdlib ``sqlite3``,
WAL) under ``--data-dir``: a gateway killed with SIGKILL delivers what was
pending when it comes back. Enqueuing is one local insert; the sending is a
task of its own, so a slow or dead receiver never slows a stream, and a
failing outbox (a full disk) never breaks one: the event is logged,
counted (``stt_webhook_errors_total``) and the stream goes on.

Each delivery is retried with exponential backoff (from ``retry_base_s``,
doubling, at most 10 minutes apart) until it is ``give_up_s`` old (a day by
default). A session's deliveries to one URL go in order: the next waits
until the one before it is delivered (or given up), so ``session.completed``
comes last; each body carries its ``sequence`` within the session.

Bounds: one delivery may take ``timeout_s`` in all (connect, send, the
answer's status line and headers; its body is never read); at most
``PER_TARGET`` deliveries run at once per ``host:port`` and ``CONCURRENT``
in all, each independent of the others (a receiver that trickles its answer
holds only its own); the outbox holds at most ``max_rows`` deliveries and
``max_bytes`` of bodies: past that a new one is dropped, logged and counted
(``stt_webhook_dropped_total``).

Signature: ``STT-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
with ``--webhook-secret``; the body carries ``delivery_id``, the same on
every retry (the receiver's idempotency key).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import httpx

from . import observability as metrics

log = logging.getLogger(__name__)

MAX_APART_S = 600.0
PER_TARGET = 4  # deliveries at once to one host:port
CONCURRENT = 32  # deliveries at once in all
DEFAULT_PORTS = {"http": 80, "https": 443}


class WebhookURLError(ValueError):
    """A webhook URL the gateway will not call (refused at the session's opening)."""


def callable_url(url: str) -> httpx.URL:
    """``url`` parsed the way the HTTP client parses it; ``WebhookURLError``
    for one it would refuse (a control character, another scheme, no host)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise WebhookURLError(f"webhook_url is not a URL the gateway can call ({exc})") from None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.host:
        raise WebhookURLError("webhook_url must be an http or https URL with a host")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if not 0 < port < 65536:
        raise WebhookURLError(f"webhook_url's port {port} is not a TCP port")
    return parsed


def webhook_target(url: str, allowed: Collection[str]) -> str:
    """``url`` as the HTTP client will send it, if a session may name it:
    callable (``callable_url``: a URL the client would refuse is refused
    here, never queued), and on the allow-list by ``host[:port]`` (a bare
    host allows its scheme's default port only). ``WebhookURLError`` says why not.
    """
    parsed = callable_url(url)
    target = target_of(parsed.host, parsed.port or DEFAULT_PORTS[parsed.scheme])
    if target not in allowed_targets(allowed):
        raise WebhookURLError(f"webhook_url's host and port ({target}) are not in the server's --webhook-allow-hosts")
    return str(parsed)


def target_of(host: str, port: int) -> str:
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def allowed_targets(allowed: Collection[str]) -> frozenset[str]:
    """``host[:port]`` entries as ``host:port`` (a bare host: ports 80 and 443)."""
    out: set[str] = set()
    for entry in allowed:
        try:
            parsed = httpx.URL(f"http://{entry.strip()}")
        except (httpx.InvalidURL, ValueError):
            continue
        if parsed.host:
            ports = (parsed.port,) if parsed.port else tuple(DEFAULT_PORTS.values())
            out.update(target_of(parsed.host, p) for p in ports)
    return frozenset(out)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookOutbox:
    def __init__(
        self, data_dir: str | Path, secret: str = "", retry_base_s: float = 2.0, give_up_s: float = 86400.0,
        timeout_s: float = 10.0, max_rows: int = 100_000, max_bytes: int = 256_000_000,
    ):
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path / "webhooks.sqlite3", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable against a killed process, cheap
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, url TEXT NOT NULL, body BLOB NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, created REAL NOT NULL)"
        )
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(deliveries)")}
        if "session_id" not in columns:  # an outbox written by an earlier version: its rows go unordered
            self.db.execute("ALTER TABLE deliveries ADD COLUMN session_id TEXT NOT NULL DEFAULT ''")
        self.db.execute("CREATE INDEX IF NOT EXISTS deliveries_in_order ON deliveries (session_id, url)")
        self.db.execute("CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at)")
        self.secret = secret
        self.retry_base_s = retry_base_s
        self.give_up_s = give_up_s
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows, self._bytes = self.db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM deliveries").fetchone()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._targets: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_TARGET))
        self._all = asyncio.Semaphore(CONCURRENT)

    # -- in --------------------------------------------------------------------------
    def enqueue(self, url: str, event: dict[str, Any], session_id: str, sequence: int) -> str | None:
        """Store one delivery (the event, its session and its place in it, an
        idempotency id). Never raises: a full outbox or a failing disk drops
        the delivery, logged and counted; None then."""
        delivery_id = uuid.uuid4().hex
        body = json.dumps(
            event | {"session_id": session_id, "sequence": sequence, "delivery_id": delivery_id}, ensure_ascii=False
        ).encode()
        if self._rows + 1 > self.max_rows or self._bytes + len(body) > self.max_bytes:
            metrics.webhook_dropped.labels("outbox_full").inc()
            log.warning(
                "webhook %s of session %s to %s dropped: the outbox is full (%d deliveries, %.0f MB; "
                "--webhook-outbox-max-rows, --webhook-outbox-max-mb)", event.get("type"), session_id, url,
                self._rows, self._bytes / 1e6,
            )
            return None
        now = time.time()
        try:
            self.db.execute(
                "INSERT INTO deliveries (id, url, body, next_at, created, session_id) VALUES (?, ?, ?, ?, ?, ?)",
                (delivery_id, url, body, now, now, session_id),
            )
        except sqlite3.Error as exc:
            metrics.webhook_errors.labels("enqueue").inc()
            log.error("webhook %s of session %s not stored: %s (the stream goes on)", event.get("type"), session_id, exc)
            return None
        self._rows += 1
        self._bytes += len(body)
        self._wake.set()
        return delivery_id

    def pending(self) -> int:
        return int(self._rows)

    # -- out ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.db.close()

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                try:
                    wait = self._start_due(client)
                except Exception:  # the outbox itself failing (its disk): say so, try again later
                    metrics.webhook_errors.labels("outbox").inc()
                    log.exception("webhook outbox: reading the due deliveries failed; trying again in 5 s")
                    wait = 5.0
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                await asyncio.sleep(0.02)  # wakes that come together (a burst of finals) make one look

    def _start_due(self, client: httpx.AsyncClient) -> float:
        """Start every delivery that is due and first in its session's line;
        returns how long to sleep before looking again."""
        now = time.time()
        due = self.db.execute(  # rows of an earlier version (no session) go unordered
            "SELECT id, url, body, attempts, created FROM deliveries WHERE next_at <= ? AND (session_id = '' OR rowid IN "
            "(SELECT MIN(rowid) FROM deliveries WHERE session_id != '' GROUP BY session_id, url)) ORDER BY rowid LIMIT 256",
            (now,),
        ).fetchall()
        for row in due:
            if row[0] not in self._in_flight and len(self._in_flight) < 4 * CONCURRENT:
                task = asyncio.get_running_loop().create_task(self._deliver(client, *row))
                self._in_flight[row[0]] = task
        soonest = self.db.execute("SELECT MIN(next_at) FROM deliveries").fetchone()[0]
        return 30.0 if soonest is None else min(30.0, max(0.05, soonest - now))

    async def _deliver(self, client: httpx.AsyncClient, delivery_id: str, url: str, body: bytes, attempts: int, created: float) -> None:
        try:
            outcome = await self._attempt(client, delivery_id, url, body)
            self._settle(delivery_id, url, body, attempts, created, outcome)
        except Exception:  # one delivery's failure, whatever it is, stays its own
            metrics.webhook_errors.labels("delivery").inc()
            log.exception("webhook %s to %s: the delivery failed unexpectedly", delivery_id, url)
        finally:
            self._in_flight.pop(delivery_id, None)
            self._wake.set()  # the next of its session may go now

    async def _attempt(self, client: httpx.AsyncClient, delivery_id: str, url: str, body: bytes) -> str:
        """"delivered", "refused:<why>" (never will be: drop it) or "failed:<why>" (retry)."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:  # a row from before URLs were checked
            return f"refused:{exc}"
        headers = {"Content-Type": "application/json", "STT-Delivery-Id": delivery_id}
        if self.secret:
            headers["STT-Signature"] = signature(self.secret, int(time.time()), body)

        async def post() -> int:
            # The status is all a delivery needs: the answer's body is never
            # read (a receiver could send gigabytes).
            async with client.stream("POST", target, content=body, headers=headers) as answer:
                return answer.status_code

        async with self._all, self._targets[target_of(target.host, target.port or DEFAULT_PORTS.get(target.scheme, 0))]:
            try:
                status = await asyncio.wait_for(post(), self.timeout_s)  # the whole delivery, not each read
            except asyncio.TimeoutError:
                return f"failed:no answer within {self.timeout_s:g} s"
            except httpx.UnsupportedProtocol as exc:
                return f"refused:{exc}"
            except httpx.HTTPError as exc:
                return f"failed:{type(exc).__name__}"
        return "delivered" if 200 <= status < 300 else f"failed:HTTP {status}"

    def _settle(self, delivery_id: str, url: str, body: bytes, attempts: int, created: float, outcome: str) -> None:
        why = outcome.partition(":")[2]
        done = outcome == "delivered"
        if outcome.startswith("refused:"):
            metrics.webhook_dropped.labels("invalid_url").inc()
            log.warning("webhook %s to %s dropped: the URL cannot be called (%s)", delivery_id, url, why)
            done = True
        elif not done and time.time() - created > self.give_up_s:
            metrics.webhook_dropped.labels("given_up").inc()
            log.warning("webhook %s to %s: given up after %d attempts (%s)", delivery_id, url, attempts + 1, why)
            done = True
        try:
            if done:
                self.db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
                self._rows -= 1
                self._bytes -= len(body)
                return
            delay = min(MAX_APART_S, self.retry_base_s * 2**attempts)
            log.info("webhook %s to %s failed (%s): attempt %d again in %.0f s", delivery_id, url, why, attempts + 2, delay)
            self.db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_at = ? WHERE id = ?", (time.time() + delay, delivery_id)
            )
        except sqlite3.Error as exc:  # it stays as it was: tried again, delivered at least once
            metrics.webhook_errors.labels("outbox").inc()
            log.error("webhook %s: the outbox could not be updated (%s)", delivery_id, exc)
