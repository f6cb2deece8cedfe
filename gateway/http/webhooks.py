"""Webhooks: each final and each session's end POSTed, signed, at least once.

Deliveries go through a durable outbox, a SQLite table (stdlib ``sqlite3``,
WAL) under ``--data-dir``: a gateway killed with SIGKILL delivers what was
pending when it comes back. Enqueuing is one local insert; the sending is a
task of its own, so a slow or dead receiver never slows a stream. Each
delivery is retried with exponential backoff (from ``retry_base_s``,
doubling, at most 10 minutes apart) until it is ``give_up_s`` old (a day
by default: "at least an hour" with room to spare).

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
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

MAX_APART_S = 600.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def host_allowed(url: str, allowed: Collection[str]) -> bool:
    """Whether a per-session webhook URL may be called: http(s), its host on the list."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.hostname in allowed


class WebhookOutbox:
    def __init__(
        self, data_dir: str | Path, secret: str = "", retry_base_s: float = 2.0, give_up_s: float = 86400.0,
        timeout_s: float = 10.0,
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
        self.secret = secret
        self.retry_base_s = retry_base_s
        self.give_up_s = give_up_s
        self.timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- in --------------------------------------------------------------------------
    def enqueue(self, url: str, event: dict[str, Any], session_id: str) -> str:
        """Store one delivery (the event, its session, an idempotency id)."""
        delivery_id = uuid.uuid4().hex
        body = json.dumps(event | {"session_id": session_id, "delivery_id": delivery_id}, ensure_ascii=False).encode()
        now = time.time()
        self.db.execute("INSERT INTO deliveries (id, url, body, next_at, created) VALUES (?, ?, ?, ?, ?)", (delivery_id, url, body, now, now))
        self._wake.set()
        return delivery_id

    def pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])

    # -- out ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.db.close()

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                now = time.time()
                due = self.db.execute(
                    "SELECT id, url, body, attempts, created FROM deliveries WHERE next_at <= ? ORDER BY created LIMIT 16", (now,)
                ).fetchall()
                if due:
                    await asyncio.gather(*(self._deliver(client, *row) for row in due))
                    continue
                soonest = self.db.execute("SELECT MIN(next_at) FROM deliveries").fetchone()[0]
                wait = 30.0 if soonest is None else min(30.0, max(0.05, soonest - now))
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    async def _deliver(self, client: httpx.AsyncClient, delivery_id: str, url: str, body: bytes, attempts: int, created: float) -> None:
        headers = {"Content-Type": "application/json", "STT-Delivery-Id": delivery_id}
        if self.secret:
            headers["STT-Signature"] = signature(self.secret, int(time.time()), body)
        try:
            answer = await client.post(url, content=body, headers=headers)
            delivered = 200 <= answer.status_code < 300
            why = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            delivered, why = False, type(exc).__name__
        if delivered:
            self.db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
            return
        if time.time() - created > self.give_up_s:
            log.warning("webhook %s to %s: given up after %d attempts (%s)", delivery_id, url, attempts + 1, why)
            self.db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
            return
        delay = min(MAX_APART_S, self.retry_base_s * 2**attempts)
        log.info("webhook %s to %s failed (%s): attempt %d again in %.0f s", delivery_id, url, why, attempts + 2, delay)
        self.db.execute("UPDATE deliveries SET attempts = attempts + 1, next_at = ? WHERE id = ?", (time.time() + delay, delivery_id))
