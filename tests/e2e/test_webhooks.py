"""Webhooks: signed, at least once, from a durable outbox that survives SIGKILL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest
from fastapi import FastAPI, Request, Response

from bench.textnorm import wer
from gateway.client import stream_audio, stream_url
from gateway.launch import free_port, wait_until_serving
from tests.clips import CLIPS, load_clip
from tests.e2e.conftest import serve_app

from .test_cli import CLI


class Receiver:
    """A webhook receiver that fails the first ``failures`` attempts of every delivery."""

    def __init__(self, failures: int = 0, port: int | None = None):
        self.failures = failures
        self.attempts: Counter[str] = Counter()
        self.received: list[tuple[dict, dict]] = []  # (headers, body) of the accepted ones
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            event = json.loads(body)
            self.attempts[event["delivery_id"]] += 1
            if self.attempts[event["delivery_id"]] <= self.failures:
                return Response(status_code=503)
            self.received.append(({k.lower(): v for k, v in request.headers.items()}, event | {"_raw": body.decode()}))
            return Response(status_code=204)

        self.running = serve_app(app) if port is None else serve_app(app, port=port)
        self.url = f"http://127.0.0.1:{self.running.port}/hook"

    def wait_count(self, n: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            assert time.monotonic() < deadline, f"{len(self.received)} of {n} delivered"
            time.sleep(0.05)

    def wait_for(self, kind: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(body["type"] == kind for _, body in self.received):
            assert time.monotonic() < deadline, f"no {kind} delivered; got {[b['type'] for _, b in self.received]}"
            time.sleep(0.05)


def check_signature(headers: dict, raw: str, secret: str) -> None:
    t, v1 = (part.split("=", 1)[1] for part in headers["stt-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{t}.{raw}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(v1, expected) and abs(time.time() - int(t)) < 120


def test_finals_and_the_end_arrive_signed_despite_a_failing_receiver(make_server, tmp_path):
    receiver = Receiver(failures=1)
    try:
        server = make_server(webhook_url=receiver.url, webhook_secret="s3cret", data_dir=str(tmp_path))
        clip = CLIPS["lhotse-libri-2412-153948-0000"]
        result = asyncio.run(stream_audio(stream_url(server.ws, session_id="hooked"), load_clip(clip.id), speed=3.0))
        receiver.wait_count(len(result.finals) + 1)
    finally:
        receiver.running.stop()
    bodies = sorted((body for _, body in receiver.received), key=lambda b: b["type"] == "session.completed")
    finals = sorted((b for b in bodies if b["type"] == "transcript.final"), key=lambda b: b["segment"]["id"])
    assert [f["segment"] for f in finals] == [f["segment"] for f in result.finals]
    completed = bodies[-1]
    assert completed["type"] == "session.completed" and completed["session_id"] == "hooked"
    assert completed["text"] == result.closed["text"] and wer(clip.text, completed["text"]) <= 0.2
    assert all(n == 2 for n in receiver.attempts.values())  # each failed once, then came again with its id
    assert len({b["delivery_id"] for b in bodies}) == len(bodies)
    for headers, body in receiver.received:
        check_signature(headers, body["_raw"], "s3cret")
        assert headers["stt-delivery-id"] == body["delivery_id"]
    assert sqlite3.connect(tmp_path / "webhooks.sqlite3").execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
    import httpx

    assert "stt_webhook_pending 0.0" in httpx.get(server.http + "/metrics").text


def test_a_session_may_name_its_webhook_only_on_an_allowed_host_and_port(make_server, tmp_path):
    receiver = Receiver()
    try:
        server = make_server(webhook_allow_hosts=(f"127.0.0.1:{receiver.running.port}",), data_dir=str(tmp_path))
        clip = CLIPS["ds-arctic-a0024"]
        asyncio.run(stream_audio(stream_url(server.ws, webhook_url=receiver.url), load_clip(clip.id), speed=3.0))
        receiver.wait_for("session.completed")
        refused = {
            url: asyncio.run(stream_audio(stream_url(server.ws, webhook_url=url), load_clip(clip.id)[:8000], speed=3.0))
            for url in (
                "http://169.254.169.254/latest",  # another host
                f"http://127.0.0.1:{receiver.running.port + 1}/hook",  # the allowed host, another port
                f"http://127.0.0.1:{receiver.running.port}\t/hook",  # issue 19: urlsplit took it, httpx refuses it
                "file:///etc/passwd",
            )
        }
    finally:
        receiver.running.stop()
    for url, result in refused.items():
        error = result.of_type("error")[0]
        assert error["code"] == "invalid_config" and error["message"].startswith("webhook_url"), (url, error)
    assert "--webhook-allow-hosts" in refused["http://169.254.169.254/latest"].of_type("error")[0]["message"]


def test_what_was_pending_is_delivered_after_a_sigkill_and_restart(tmp_path):
    hook_port = free_port()  # the receiver is down while the gateway runs the first time
    url = f"http://127.0.0.1:{hook_port}/hook"

    def serve() -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen(
            [*CLI, "serve", "--model", "tiny.en", "--port", str(port), "--workers", "1", "--allocator", "system",
             "--webhook-url", url, "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        wait_until_serving(proc, port)
        return proc, port

    proc, port = serve()
    try:
        clip = CLIPS["ds-arctic-a0024"]
        result = asyncio.run(stream_audio(stream_url(f"ws://127.0.0.1:{port}", session_id="before-the-crash"), load_clip(clip.id), speed=3.0))
        assert result.closed is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    pending = sqlite3.connect(tmp_path / "webhooks.sqlite3").execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    assert pending == len(result.finals) + 1  # every final and the end, kept on disk
    receiver = Receiver(port=hook_port)
    proc, _ = serve()
    try:
        receiver.wait_count(pending)  # in any order: each delivery has its own backoff
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        receiver.running.stop()
    bodies = [body for _, body in receiver.received]
    assert {b["session_id"] for b in bodies} == {"before-the-crash"}
    assert len([b for b in bodies if b["type"] == "transcript.final"]) == len(result.finals)


@pytest.fixture(autouse=True)
def _quiet_httpx_logs(caplog):
    caplog.set_level("WARNING", logger="httpx")


# -- issue 19: what one receiver, one row or one disk must not do to the rest -----------------
class RawReceiver:
    """A receiver on a raw socket, for answers no web framework would give:
    ``answer(conn)`` is called with each connection once its request is read."""

    def __init__(self, answer):
        import socket
        import threading

        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            try:
                self.answer(conn)
            except OSError:
                pass

    def stop(self) -> None:
        self.done.set()
        self.sock.close()


def metric(server, name: str, **labels: str) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.http + "/metrics").text
    return sum(
        s.value for family in text_string_to_metric_families(text) for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_a_receivers_answer_body_is_not_read(make_server, tmp_path):
    pushed = [0]

    def huge(conn) -> None:  # 200 OK, then 64 MB of body for as long as the gateway takes it
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 64000000\r\n\r\n")
        block = b"x" * 65536
        while pushed[0] < 64_000_000:
            pushed[0] += conn.send(block)

    receiver = RawReceiver(huge)
    try:
        server = make_server(webhook_url=receiver.url, data_dir=str(tmp_path))
        asyncio.run(stream_audio(stream_url(server.ws), load_clip("ds-arctic-a0024"), speed=3.0))
        outbox = server.app.state.outbox
        deadline = time.monotonic() + 60
        while outbox.pending():
            assert time.monotonic() < deadline, f"{outbox.pending()} still pending"
            time.sleep(0.05)
    finally:
        receiver.stop()
    assert receiver.requests >= 2  # a final and the session's end, each delivered (the status was 200)
    assert pushed[0] < 16_000_000, f"the gateway read {pushed[0] / 1e6:.0f} MB of an answer it needs only the status of"


class Trickler:
    """A receiver that sends its status line a byte every ``every_s`` until
    released, and notes when the gateway hangs up on it."""

    def __init__(self, every_s: float = 1.0):
        import threading

        self.every_s = every_s
        self.hung_up = threading.Event()
        self.released = threading.Event()
        self.raw = RawReceiver(self._answer)

    def _answer(self, conn) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            try:
                conn.send(bytes([byte]))
            except OSError:
                self.hung_up.set()  # the gateway gave up on it
                return
            if self.released.wait(self.every_s):
                return

    def stop(self) -> None:
        self.released.set()
        self.raw.stop()


def test_a_trickling_receiver_holds_only_its_own_deliveries(make_server, tmp_path):
    """Another session's webhooks all arrive while one receiver is still
    trickling its answer (before issue 19 they waited behind it: a byte every
    3 s makes a 2-minute answer, longer than the good receiver is waited for)."""
    slow, good = Trickler(every_s=3.0), Receiver()
    try:
        allowed = (f"127.0.0.1:{slow.raw.port}", f"127.0.0.1:{good.running.port}")
        server = make_server(webhook_allow_hosts=allowed, webhook_timeout_s=120.0, data_dir=str(tmp_path))
        clip = load_clip("ds-arctic-a0024")
        asyncio.run(stream_audio(stream_url(server.ws, webhook_url=slow.raw.url), clip, speed=3.0))
        while not slow.raw.requests:
            time.sleep(0.02)
        result = asyncio.run(stream_audio(stream_url(server.ws, webhook_url=good.url), clip, speed=3.0))
        good.wait_count(len(result.finals) + 1)
        assert not slow.hung_up.is_set() and not slow.released.is_set(), "the slow delivery is still in progress"
    finally:
        slow.stop()
        good.running.stop()


def test_a_delivery_has_a_deadline_of_its_own(make_server, tmp_path):
    """A receiver that trickles its answer is hung up on after --webhook-timeout-s
    in all: httpx's own timeout is per read, and a byte a second never trips it."""
    slow = Trickler()
    try:
        server = make_server(webhook_allow_hosts=(f"127.0.0.1:{slow.raw.port}",), webhook_timeout_s=1.0, data_dir=str(tmp_path))
        asyncio.run(stream_audio(stream_url(server.ws, webhook_url=slow.raw.url), load_clip("ds-arctic-a0024"), speed=3.0))
        assert slow.hung_up.wait(60), "a delivery has no deadline of its own"
    finally:
        slow.stop()


def test_a_poisoned_row_left_by_an_earlier_version_does_not_stop_the_outbox(make_server, tmp_path):
    db = sqlite3.connect(tmp_path / "webhooks.sqlite3")  # the schema before issue 19, and a URL httpx refuses
    db.execute(
        "CREATE TABLE deliveries (id TEXT PRIMARY KEY, url TEXT NOT NULL, body BLOB NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, created REAL NOT NULL)"
    )
    db.execute("INSERT INTO deliveries VALUES ('bad', 'http://127.0.0.1:9\thook', '{}', 0, 0, ?)", (time.time(),))
    db.commit()
    db.close()
    receiver = Receiver()
    try:
        server = make_server(webhook_url=receiver.url, data_dir=str(tmp_path))
        result = asyncio.run(stream_audio(stream_url(server.ws), load_clip("ds-arctic-a0024"), speed=3.0))
        receiver.wait_count(len(result.finals) + 1)
        dropped = metric(server, "stt_webhook_dropped_total", reason="invalid_url")
    finally:
        receiver.running.stop()
    assert dropped >= 1


def test_a_session_delivers_in_order_with_its_end_last(make_server, tmp_path):
    receiver = Receiver()
    first_final: list[str] = []

    @receiver.running.app.middleware("http")
    async def fail_the_first_final_twice(request, call_next):
        body = json.loads(await request.body())
        if body["type"] == "transcript.final" and body["sequence"] == 0 and receiver.attempts[body["delivery_id"]] < 2:
            receiver.attempts[body["delivery_id"]] += 1
            first_final.append(body["delivery_id"])
            return Response(status_code=503)
        return await call_next(request)

    try:
        server = make_server(webhook_url=receiver.url, data_dir=str(tmp_path))
        result = asyncio.run(stream_audio(stream_url(server.ws, session_id="ordered"), load_clip("lhotse-libri-2412-153948-0000"), speed=3.0))
        receiver.wait_count(len(result.finals) + 1)
    finally:
        receiver.running.stop()
    assert len(first_final) == 2 and len(result.finals) >= 2
    bodies = [body for _, body in receiver.received]
    assert [b["sequence"] for b in bodies] == list(range(len(bodies)))
    assert [b["type"] for b in bodies] == ["transcript.final"] * len(result.finals) + ["session.completed"]


def test_a_full_data_dir_does_not_hang_streams(make_server, tmp_path):
    server = make_server(webhook_url="http://127.0.0.1:9/hook", data_dir=str(tmp_path))
    outbox = server.app.state.outbox
    pages = outbox.db.execute("PRAGMA page_count").fetchone()[0]
    outbox.db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more row: SQLITE_FULL, as on a full disk
    before = metric(server, "stt_webhook_errors_total", stage="enqueue")
    result = asyncio.run(asyncio.wait_for(
        stream_audio(stream_url(server.ws), load_clip("lhotse-libri-2412-153948-0000"), speed=3.0), 120
    ))
    assert result.closed is not None and [f for f in result.finals if f["segment"]["text"].strip()]
    assert metric(server, "stt_webhook_errors_total", stage="enqueue") - before >= 1  # the end, at least, found no room


def test_the_outbox_is_bounded(make_server, tmp_path):
    server = make_server(webhook_url="http://127.0.0.1:9/hook", webhook_outbox_max_rows=2, data_dir=str(tmp_path))
    result = asyncio.run(stream_audio(stream_url(server.ws), load_clip("lhotse-libri-2412-153948-0000"), speed=3.0))
    assert len(result.finals) >= 2 and result.closed is not None
    assert server.app.state.outbox.pending() == 2
    assert metric(server, "stt_webhook_dropped_total", reason="outbox_full") >= len(result.finals) + 1 - 2


def test_a_session_posting_to_two_urls_numbers_its_events_once(make_server, tmp_path):
    """Each event has one place in its session, whatever the number of receivers:
    the server's URL and the session's own both see 0, 1, 2, ... with the end last."""
    every, own = Receiver(), Receiver()
    try:
        server = make_server(webhook_url=every.url, webhook_allow_hosts=(f"127.0.0.1:{own.running.port}",), data_dir=str(tmp_path))
        result = asyncio.run(stream_audio(stream_url(server.ws, webhook_url=own.url), load_clip("lhotse-libri-2412-153948-0000"), speed=3.0))
        for receiver in (every, own):
            receiver.wait_count(len(result.finals) + 1)
    finally:
        every.running.stop()
        own.running.stop()
    for receiver in (every, own):
        bodies = [body for _, body in receiver.received]
        assert [b["sequence"] for b in bodies] == list(range(len(result.finals) + 1))
        assert bodies[-1]["type"] == "session.completed"
