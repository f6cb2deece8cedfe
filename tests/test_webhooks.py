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

from gateway.client import stream_audio, stream_url
from gateway.textnorm import wer

from .conftest import CLIPS, load_clip, serve_app, wait_until_serving
from .test_cli import CLI, _free_port


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


def test_a_session_may_name_its_webhook_only_on_an_allowed_host(make_server, tmp_path):
    receiver = Receiver()
    try:
        server = make_server(webhook_allow_hosts=("127.0.0.1",), data_dir=str(tmp_path))
        clip = CLIPS["ds-arctic-a0024"]
        asyncio.run(stream_audio(stream_url(server.ws, webhook_url=receiver.url), load_clip(clip.id), speed=3.0))
        receiver.wait_for("session.completed")
        refused = asyncio.run(stream_audio(stream_url(server.ws, webhook_url="http://169.254.169.254/latest"), load_clip(clip.id), speed=3.0))
    finally:
        receiver.running.stop()
    error = refused.of_type("error")[0]
    assert error["code"] == "invalid_config" and "--webhook-allow-hosts" in error["message"]


def test_what_was_pending_is_delivered_after_a_sigkill_and_restart(tmp_path):
    hook_port = _free_port()  # the receiver is down while the gateway runs the first time
    url = f"http://127.0.0.1:{hook_port}/hook"

    def serve() -> tuple[subprocess.Popen, int]:
        port = _free_port()
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
