"""The HTTP layer's own logic: admission, keys, health, metrics, the demo route."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
import websockets


def test_health_metrics_and_demo(server):
    health = httpx.get(f"{server.http}/healthz").json()
    assert health["status"] == "ok" and health["default_model"] == "tiny.en" and "tiny.en" in health["loaded_models"]
    metrics = httpx.get(f"{server.http}/metrics").text
    assert "stt_streams_active" in metrics and "stt_decode_seconds" in metrics
    root = httpx.get(f"{server.http}/", follow_redirects=False)
    assert root.status_code in (307, 302) and root.headers["location"] == "/demo/"


def test_keys_do_not_lock_out_health_or_the_demo(make_server):
    running = make_server(api_keys=("k",))
    assert httpx.get(f"{running.http}/healthz").status_code == 200
    assert httpx.get(f"{running.http}/metrics").status_code == 401
    assert httpx.get(f"{running.http}/metrics", headers={"Authorization": "Bearer k"}).status_code == 200


def test_readyz_says_whether_a_new_stream_would_be_taken(make_server):
    running = make_server(max_streams=1)
    assert httpx.get(f"{running.http}/readyz").json()["status"] == "ready"

    async def while_one_stream_is_open():
        async with websockets.connect(f"{running.ws}/v0/audio/stream") as ws:
            await ws.recv()
            return httpx.get(f"{running.http}/readyz")

    busy = asyncio.run(while_one_stream_is_open())
    assert busy.status_code == 503 and busy.json()["status"] == "at_capacity" and int(busy.headers["Retry-After"]) > 0
    hub = running.app.state.hub
    hub.draining = True
    try:
        assert httpx.get(f"{running.http}/readyz").json()["status"] == "draining"
    finally:
        hub.draining = False


def test_pages_from_other_origins_may_not_open_streams(make_server):
    running = make_server(allowed_origins=("https://captions.example",))

    async def first_event(origin):
        async with websockets.connect(f"{running.ws}/v0/audio/stream", origin=origin) as ws:
            return json.loads(await ws.recv())["type"]

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(first_event("http://evil.example"))
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"
    for allowed in (f"http://127.0.0.1:{running.port}", "https://captions.example", None):  # its own page, a listed one, no browser
        assert asyncio.run(first_event(allowed)) == "session.created", allowed


def test_connections_beyond_the_cap_are_refused(make_server):
    running = make_server(max_connections=2)
    idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(2)]
    try:
        assert httpx.get(f"{running.http}/healthz").status_code == 503
    finally:
        for s in idle:
            s.close()
    assert httpx.get(f"{running.http}/healthz").status_code == 200


def test_a_request_whose_headers_never_finish_is_dropped(make_server):
    running = make_server(header_timeout_s=0.5)
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as s:
        s.sendall(b"GET /v0/audio/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")  # and then nothing
        s.settimeout(10)
        assert s.recv(1024) == b""  # closed by the server, long before the client's 10 s
    assert httpx.get(f"{running.http}/healthz").status_code == 200  # complete requests are not touched


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(make_server):
    running = make_server(header_timeout_s=0.5)
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = b""
        while not reply.endswith(b"}"):  # the whole JSON answer, headers and body
            reply += s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next one, half sent
        s.settimeout(10)
        assert s.recv(1024) == b""


def read_until_closed(s: socket.socket) -> bytes:
    """All the server sends until it closes the connection (a safety timeout fails the test)."""
    s.settimeout(30)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_upgrades_with_request_lines_over_8_kb_are_answered_and_closed(make_server):
    """Issue 19: h11 takes them, websockets cannot parse them, and nobody answered:
    ten of them filled --max-connections 10 and the health probes answered 503."""
    running = make_server(max_connections=10)
    terms = "&".join(f"keyterm=term{i}" for i in range(700))  # as a Deepgram client with 700 keyterms sends
    request = (
        f"GET /v1/listen?{terms} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    assert len(request) > 9000
    sockets = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(10)]
    try:
        for s in sockets:
            s.sendall(request)
        answers = [read_until_closed(s) for s in sockets]
    finally:
        for s in sockets:
            s.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"].startswith("the request line")
    assert httpx.get(f"{running.http}/healthz").status_code == 200
    assert httpx.get(f"{running.http}/readyz").status_code == 200


def test_an_upgrade_whose_handshake_never_completes_is_dropped(make_server):
    """The header deadline goes on into the handshake: an upgrade the app never answers is closed."""

    async def never(websocket):  # a route that neither accepts nor refuses
        await asyncio.Event().wait()

    from starlette.routing import WebSocketRoute

    # before the demo's mount at "/", which would take the path
    running = make_server(extend=lambda app: app.router.routes.insert(0, WebSocketRoute("/stuck", never)), header_timeout_s=0.5)
    with socket.create_connection(("127.0.0.1", running.port)) as s:
        s.sendall(
            b"GET /stuck HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert read_until_closed(s) == b""


# -- issue 19: who may reach the gateway at all -----------------------------------------------
def test_names_the_server_does_not_have_are_refused_on_a_loopback_bind(make_server):
    """DNS rebinding: a page on evil.example points its name at 127.0.0.1; the Host says so."""
    running = make_server()
    port = running.port
    refused = httpx.get(f"{running.http}/v0/sessions", headers={"Host": f"evil.example:{port}"})
    assert refused.status_code == 421 and refused.json()["error"]["code"] == "host_not_allowed"

    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            f"GET /v0/audio/stream HTTP/1.1\r\nHost: evil.example:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert read_until_closed(s).startswith(b"HTTP/1.1 421")
    for name in (f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1"):
        assert httpx.get(f"{running.http}/healthz", headers={"Host": name}).status_code == 200, name

    async def first_event():
        async with websockets.connect(f"ws://localhost:{port}/v0/audio/stream") as ws:
            return json.loads(await ws.recv())["type"]

    assert asyncio.run(first_event()) == "session.created"


def test_allowed_hosts_names_the_servers_names(make_server):
    running = make_server(allowed_hosts=("stt.example.com",))
    assert httpx.get(f"{running.http}/healthz", headers={"Host": "stt.example.com"}).status_code == 200
    assert httpx.get(f"{running.http}/healthz", headers={"Host": "127.0.0.1"}).status_code == 421
    anyone = make_server(allowed_hosts=("*",))
    assert httpx.get(f"{anyone.http}/healthz", headers={"Host": "whatever.example"}).status_code == 200
