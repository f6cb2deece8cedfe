"""Shared fixtures: the real tiny.en model, real servers on free ports, real clips."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import wave
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    text: str | None
    language: str
    duration: float


def _manifest() -> dict[str, Clip]:
    clips = {}
    for line in (DATA / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        clips[row["id"]] = Clip(row["id"], DATA / row["path"], row["text"], row["language"], row["duration"])
    return clips


CLIPS = _manifest()


def load_clip(clip_id: str) -> np.ndarray:
    """float32 mono 16 kHz samples of a test clip."""
    from gateway.audio import decode_file

    return decode_file(CLIPS[clip_id].path)


def two_speakers() -> tuple[Clip, Clip, np.ndarray]:
    """A two-party call: one speaker per channel, overlapping in time
    (16 kHz float frames, shape (n, 2))."""
    a, b = CLIPS["leopard-en"], CLIPS["ds-ldc93s1"]
    left = np.concatenate([load_clip(a.id), np.zeros(16000, np.float32)])
    right = np.concatenate([np.zeros(24000, np.float32), load_clip(b.id), np.zeros(16000, np.float32)])
    frames = np.zeros((max(len(left), len(right)), 2), np.float32)
    frames[: len(left), 0], frames[: len(right), 1] = left, right
    return a, b, frames


def speech_bounds(samples: np.ndarray, threshold_db: float = -35.0) -> tuple[float, float]:
    """Where the speech of a clean clip is, from 10 ms frame energy (seconds)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-10
    db = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > threshold_db)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


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
class RunningServer:
    app: object
    server: object
    thread: threading.Thread
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

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


def wait_until_serving(proc, port: int, timeout: float = 90.0) -> None:
    """Until a server process answers /healthz on ``port`` (fails if it dies)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


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


def spoken(order: list[str], gaps: list[float], lead_s: float = 0.5) -> tuple[np.ndarray, str]:
    """Clips said one after another with the given pauses (16 kHz), and what was said."""
    pieces = [np.zeros(int(lead_s * 16000), np.float32)]
    for clip_id, gap in zip(order, gaps, strict=True):
        pieces += [load_clip(clip_id), np.zeros(int(gap * 16000), np.float32)]
    return np.concatenate(pieces), " ".join(CLIPS[c].text or "" for c in order)


# Five clips said one after another with pauses: a stream long enough to lose a
# connection in the middle of (tests/test_resume.py, tests/test_cluster.py).
CONVERSATION = (["leopard-en", "ds-ldc93s1", "lhotse-libri-2412-153948-0000", "ds-arctic-a0024", "fw-stereo-left"],
                [1.2, 1.0, 1.5, 1.0, 1.0])


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit PCM WAV of float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def check_continuous(finals: list[dict]) -> None:
    """A transcript that went on across connections: ids 0, 1, 2, ... with no gap or
    repeat, times that never go back, and no final's text twice."""
    ids = [f["segment"]["id"] for f in finals]
    assert ids == list(range(len(finals))), ids
    for before, after in zip(finals, finals[1:]):
        assert after["segment"]["start"] >= before["segment"]["end"] - 0.05, (before["segment"], after["segment"])
        assert after["ended_at"] >= before["ended_at"]
    texts = [f["segment"]["text"].strip() for f in finals if f["segment"]["text"].strip()]
    assert len(texts) == len(set(texts)), texts
