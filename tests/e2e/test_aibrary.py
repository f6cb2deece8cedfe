"""The documented AiBrary snippet, unchanged, against the gateway on the SDK's fixed address.

The SDK (aibrary 0.0.3) subclasses openai<2 and, with ``DEV_AIBRARY=1``,
always talks to http://127.0.0.1:8000/v0, so this test serves on exactly port
8000 and runs the SDK in its own virtualenv (``make test`` builds
``.venv-aibrary``; the main one has a newer openai).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.textnorm import wer
from tests.clips import CLIPS, ROOT

SDK_PYTHON = ROOT / ".venv-aibrary" / "bin" / "python"
SDK_PORT = 8000

# Verbatim from the documentation page (SEED-speech-to-text.txt).
SNIPPET = '''from aibrary import AiBrary

aibrary = AiBrary()
aibrary.audio.transcriptions.create(
    model="whisper-1", file=open("path/to/audio", "rb")
)
'''

# Runs the snippet file as a notebook cell would: every statement as written,
# the value of the last expression kept, then the SDK's model listing.
DRIVER = '''import ast, json
tree = ast.parse(open("snippet.py").read())
last = tree.body.pop()
namespace = {}
exec(compile(tree, "snippet.py", "exec"), namespace)
result = eval(compile(ast.Expression(last.value), "snippet.py", "eval"), namespace)
aibrary = namespace["aibrary"]
print(json.dumps({
    "type": type(result).__name__,
    "result": result.model_dump(),
    "stt": [m.model_dump() for m in aibrary.get_all_models(filter_category="STT")],
    "tts": aibrary.get_all_models(filter_category="TTS", return_as_objects=False),
}))
'''


@pytest.fixture
def gateway_on_8000(base_config, registry, engine):
    """The gateway on 127.0.0.1:8000 (skipped, saying why, when the port is taken)."""
    import uvicorn

    from gateway.http.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", SDK_PORT))
    except OSError as exc:
        sock.close()
        pytest.skip(f"port {SDK_PORT} is busy ({exc}); the AiBrary SDK only talks to 127.0.0.1:{SDK_PORT}, free it to run this test")
    app = create_app(replace(base_config, port=SDK_PORT), registry=registry, engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, ws="websockets-sansio", log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start on port 8000"
        time.sleep(0.02)
    yield app
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def run_sdk(workdir: Path, script: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEV_AIBRARY": "1",
        "AIBRARY_API_KEY": "anything",
        "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
    }
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(SDK_PYTHON), script], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def test_documented_aibrary_snippet_runs_unchanged(gateway_on_8000, tmp_path):
    if not SDK_PYTHON.exists():
        pytest.skip("no .venv-aibrary: `make test` (or `make .venv-aibrary/.installed`) creates it")
    clip = CLIPS["leopard-en"]
    (tmp_path / "path" / "to").mkdir(parents=True)
    shutil.copy(clip.path, tmp_path / "path" / "to" / "audio")
    (tmp_path / "snippet.py").write_text(SNIPPET)
    (tmp_path / "driver.py").write_text(DRIVER)

    plain = run_sdk(tmp_path, "snippet.py")
    assert plain.returncode == 0, plain.stderr

    driven = run_sdk(tmp_path, "driver.py")
    assert driven.returncode == 0, driven.stderr
    out = json.loads(driven.stdout)
    # The SDK asks for no format, so it parses a Transcription; the gateway's
    # default is the documented verbose_json, whose extra fields the SDK keeps.
    assert out["type"] == "Transcription"
    result = out["result"]
    assert {"text", "task", "language", "duration", "segments"} <= set(result)
    assert result["task"] == "transcribe" and result["language"] == "en"
    assert abs(result["duration"] - clip.duration) < 0.01
    assert wer(clip.text, result["text"]) <= 0.15, result["text"]
    assert result["segments"] and result["segments"][-1]["end"] <= clip.duration
    # get_all_models parses the gateway's models into the SDK's Model objects.
    assert {"whisper-1", "tiny.en", "base"} <= {m["model_name"] for m in out["stt"]}
    assert all(m["category"].lower() == "stt" and m["ai_models_pricing"] == [] for m in out["stt"])
    assert out["tts"] == []
