"""The end-to-end tier: the real tiny.en model and real servers on free ports.

Every test under tests/e2e is marked ``e2e`` (``make test-fast`` leaves
them out); the model and the servers are made once per session.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.launch import Loopback
from tests.clips import load_clip

E2E = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def registry():
    from gateway.inference.models import LoadSettings, ModelRegistry

    return ModelRegistry("tiny.en", LoadSettings(cpu_threads=1, workers=2))


@pytest.fixture(scope="session")
def engine(registry):
    from gateway.inference.engine import Engine

    engine = Engine(registry)
    yield engine
    engine.close()


@dataclass
class RunningServer(Loopback):
    app: object
    server: object
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(config, registry, engine, extend=None) -> RunningServer:
    """A real server on a free port; ``extend(app)`` may add routes first."""
    from gateway.http.app import create_app

    app = create_app(config, registry=registry, engine=engine)
    if extend is not None:
        extend(app)
    return serve_app(app)


def serve_app(app, port: int = 0) -> RunningServer:
    """A real server on a free port (or ``port``): the gateway's app, or any ASGI app (a webhook receiver)."""
    import uvicorn

    from gateway.http.serve import uvicorn_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = getattr(app.state, "config", None)
    if config is None:
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    else:
        server = uvicorn.Server(uvicorn_config(app, config, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return RunningServer(app, server, thread, port)


@pytest.fixture(scope="session")
def base_config():
    from gateway.config import ServerConfig

    return ServerConfig(model="tiny.en", port=0)


@pytest.fixture(scope="session")
def server(base_config, registry, engine):
    running = start_server(base_config, registry, engine)
    yield running
    running.stop()


@pytest.fixture
def make_server(base_config, registry, engine):
    """Start a server with some config fields changed; stopped after the test."""
    started = []

    def make(extend=None, **changes) -> RunningServer:
        running = start_server(replace(base_config, **changes), registry, engine, extend)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def offline_text(registry):
    """What plain faster-whisper transcribe() makes of a clip: the accuracy yardstick."""
    cache: dict[str, str] = {}

    def transcribe(clip_id: str) -> str:
        if clip_id not in cache:
            segments, _ = registry.get("tiny.en").transcribe(load_clip(clip_id), beam_size=5)
            cache[clip_id] = "".join(s.text for s in segments).strip()
        return cache[clip_id]

    return transcribe


