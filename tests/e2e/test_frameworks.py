"""The voice-agent frameworks, unchanged, against the gateway (issue 20).

pipecat 1.14 and LiveKit Agents 1.8 (with their Deepgram, OpenAI and
AssemblyAI services) run as their users run them, in a virtualenv of their
own (``make test`` builds ``.venv-agents``: their pins would fight the main
environment's), from the scripts in ``tests/e2e/frameworks/``: default settings
but the URL and a key, real speech at real-time pace, the real model. For
each service: every utterance's final arrives, the finals joined are within
the native door's WER on the same audio + 0.05, and interim results come
before finals where the service has them. Without ``.venv-agents`` the tests
skip, saying so; ``.ci/run`` sets STT_GATEWAY_REQUIRE_AGENTS=1, which fails instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from bench.textnorm import wer
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, ROOT, spoken, wav_bytes

AGENTS_PYTHON = ROOT / ".venv-agents" / "bin" / "python"
CLIENTS = Path(__file__).parent / "frameworks"
ORDER, GAPS = ["leopard-en", "ds-ldc93s1", "ds-arctic-a0024"], [1.2, 1.0, 1.0]
MARGIN = 0.05
# Services whose users see words while an utterance is spoken. pipecat's
# segmented OpenAI service and LiveKit's non-streaming openai.STT transcribe
# whole utterances; pipecat's AssemblyAI service shows only final words.
INTERIMS = {("pipecat", "deepgram"), ("pipecat", "openai-realtime"), ("livekit", "deepgram"), ("livekit", "assemblyai"), ("livekit", "openai-realtime")}
SERVICES = {
    "pipecat": ["deepgram", "assemblyai", "openai", "openai-realtime"],
    "livekit": ["deepgram", "assemblyai", "openai-realtime", "openai-batch"],
}


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """Three speakers' clips one after another: the audio, its text, the utterances (samples)."""
    audio, text = spoken(ORDER, GAPS)
    path = tmp_path_factory.mktemp("speech") / "conversation.wav"
    path.write_bytes(wav_bytes(audio))
    utterances, at = [], int(0.5 * 16000)
    for clip, gap in zip(ORDER, GAPS):
        n = int(CLIPS[clip].duration * 16000)
        utterances.append([max(0, at - 3200), at + n + 4800])
        at += n + int(gap * 16000)
    return path, text, audio, utterances


@pytest.fixture(scope="module")
def native_wer(server, conversation):
    _, text, audio, _ = conversation
    return wer(text, asyncio.run(stream_audio(stream_url(server.ws), audio, speed=3.0)).text)


def run_framework(framework: str, base: str, conversation) -> list[dict]:
    if not AGENTS_PYTHON.exists():
        reason = f"no {AGENTS_PYTHON.parent.parent.name}: `make test` (or `make .venv-agents/.installed`) creates it"
        if os.environ.get("STT_GATEWAY_REQUIRE_AGENTS") == "1":
            pytest.fail(f"{reason}; STT_GATEWAY_REQUIRE_AGENTS=1 demands the framework tests run")
        pytest.skip(reason)
    path, _, _, utterances = conversation
    last_word = (CLIPS[ORDER[-1]].text or "").lower().strip(" .!?").split()[-1]  # the clients wait for it, not for a clock
    spec = {"base": base, "services": SERVICES[framework], "wav": str(path), "utterances": utterances, "last_word": last_word}
    done = subprocess.run(
        [str(AGENTS_PYTHON), str(CLIENTS / f"{framework}_client.py"), json.dumps(spec)],
        capture_output=True, text=True, timeout=240, cwd=CLIENTS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("framework", sorted(SERVICES))
def test_each_service_of_the_framework_transcribes_every_utterance(make_server, conversation, native_wer, framework):
    _, text, _, _ = conversation
    # Load-based admission off: on a busy machine it rightly turns a fourth
    # stream away (503), and this test is about the frameworks' protocols.
    running = make_server(admission=False)
    events = run_framework(framework, running.http, conversation)
    for service in SERVICES[framework]:
        mine = [e for e in events if e["service"] == service]
        finals = [e["text"] for e in mine if e["kind"] == "final"]
        assert finals, f"{framework} {service}: no final"
        said = " ".join(finals)
        assert wer(text, said) <= native_wer + MARGIN, (framework, service, said)
        # Whisper's text, as the native door gives it: cased and punctuated (LiveKit's
        # AssemblyAI plugin showed the unformatted end of turn before issue 20).
        assert any(c in ".,?!" for c in said) and any(w[0].isupper() for w in said.split()), (framework, service, said)
        if (framework, service) in INTERIMS:
            first_final = next(i for i, e in enumerate(mine) if e["kind"] == "final")
            assert any(e["kind"] == "interim" for e in mine[:first_final]), f"{framework} {service}: no interim before the first final"
