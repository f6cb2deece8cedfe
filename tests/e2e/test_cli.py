"""The stt-gateway command: serve (and its shutdown), stream, transcribe."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import websockets

from bench.textnorm import wer
from gateway.audio import encode_samples
from gateway.config import ServerConfig
from gateway.launch import free_port, wait_until_serving
from tests.clips import CLIPS, load_clip

CLI = [sys.executable, "-m", "gateway"]


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_serve_help_documents_every_option_and_its_environment_variable():
    out = cli("serve", "--help").stdout
    from dataclasses import fields

    from gateway.config import flag_name

    for f in fields(ServerConfig):
        flag = flag_name(f.name)
        assert flag in out, flag
        assert "STT_GATEWAY_" + f.name.upper() in out.replace("\n", "").replace(" ", ""), f.name


def test_transcribe_a_file_without_a_server():
    clip = CLIPS["fw-stereo-left"]
    result = cli("transcribe", str(clip.path), "--model", "tiny.en", "--format", "srt")
    assert result.returncode == 0, result.stderr
    import srt

    cues = list(srt.parse(result.stdout))
    assert cues and wer(clip.text, " ".join(c.content for c in cues)) <= 0.15
    verbose = json.loads(cli("transcribe", str(clip.path), "--model", "tiny.en", "--format", "verbose_json").stdout)
    assert verbose["language"] == "en" and verbose["words"]


def test_transcribe_a_call_channel_by_channel(tmp_path):
    from tests.clips import two_speakers

    from .test_batch_api import stereo_wav

    a, b, frames = two_speakers()
    call = tmp_path / "call.wav"
    call.write_bytes(stereo_wav(frames))
    args = ("transcribe", str(call), "--model", "tiny.en", "--multichannel", "--channel-labels", "agent,caller")
    result = cli(*args, "--format", "diarized_json")
    assert result.returncode == 0, result.stderr
    segments = json.loads(result.stdout)["segments"]
    caller = " ".join(s["text"] for s in segments if s["speaker"] == "caller")
    assert wer(b.text, caller) <= 0.25 and "quilter" not in caller.lower(), caller
    assert "agent: " in cli(*args, "--format", "srt").stdout
    mismatch = cli("transcribe", str(call), "--model", "tiny.en", "--multichannel", "--channel-labels", "one")
    assert mismatch.returncode == 2 and "the file has 2" in mismatch.stderr
    downmix = cli("transcribe", str(call), "--model", "tiny.en", "--format", "diarized_json")  # mono: diarized by voice
    assert downmix.returncode == 0, downmix.stderr
    assert all(s["speaker"] in ("A", "B") for s in json.loads(downmix.stdout)["segments"])


def test_transcribe_with_speaker_labels_and_a_known_voice(tmp_path):
    from tests.clips import TURNS, load_clip, turns_of, wav_bytes

    audio, _ = turns_of(*TURNS)
    talk, reference = tmp_path / "talk.wav", tmp_path / "quilter.wav"
    talk.write_bytes(wav_bytes(audio))
    reference.write_bytes(wav_bytes(load_clip("leopard-en")[: 3 * 16000]))
    result = cli("transcribe", str(talk), "--model", "tiny.en", "--diarize", "--speaker", f"quilter={reference}", "--format", "srt")
    assert result.returncode == 0, result.stderr
    import srt

    speakers = [c.content.split(": ")[0] for c in srt.parse(result.stdout)]
    assert speakers[0] == "quilter" and speakers[-1] == "quilter" and {"A", "B"} <= set(speakers), speakers
    for bad in (("--speaker", "no-clip"), ("--speakers", "9"), ("--speaker", f"x={tmp_path / 'nope.wav'}")):
        refused = cli("transcribe", str(talk), "--model", "tiny.en", "--diarize", *bad)
        assert refused.returncode == 2 and "stt-gateway: " in refused.stderr, (bad, refused.stderr)


def test_transcribe_refuses_what_is_not_audio(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not audio at all " * 50)
    result = cli("transcribe", str(junk), "--model", "tiny.en")
    assert result.returncode == 2 and "not decodable audio" in result.stderr
    missing = cli("transcribe", str(tmp_path / "nope.wav"), "--model", "tiny.en")
    assert missing.returncode == 2 and "nope.wav" in missing.stderr
    unknown = cli("transcribe", str(CLIPS["ds-ldc93s1"].path), "--model", "huge-v9", env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert unknown.returncode == 2 and "tiny.en" in unknown.stderr


@pytest.mark.parametrize("scheme", ["ws", "http"])  # the help says "server base URL": http(s) works as the SDKs' does
def test_stream_a_file_to_a_running_server(server, scheme):
    clip = CLIPS["lhotse-libri-2412-153948-0000"]
    result = cli("stream", str(clip.path), "--url", server.ws if scheme == "ws" else server.http + "/", "--fast")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert lines and lines[0].startswith("[00:00")
    text = " ".join(line.split("] ", 1)[1] for line in lines)
    assert wer(clip.text, text) <= 0.15, text
    assert "segment(s)" in result.stdout.splitlines()[-1]


def test_stream_reports_an_unreachable_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("stream", str(CLIPS["ds-ldc93s1"].path), "--url", f"ws://127.0.0.1:{port}")
    assert result.returncode == 1 and "cannot stream" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_finalises_open_streams_before_exit(sig):
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--model", "tiny.en", "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(proc, port)
        speech = load_clip("leopard-en")

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/v0/audio/stream") as ws:
                await ws.send(encode_samples(speech, "pcm_s16le"))
                events = []
                while True:  # wait until the server is into the utterance
                    events.append(json.loads(await ws.recv()))
                    if events[-1]["type"] == "speech.started":
                        break
                proc.send_signal(sig)  # mid-utterance, no "end" from us
                async for message in ws:
                    events.append(json.loads(message))
                return events, ws.close_code

        events, code = asyncio.run(asyncio.wait_for(go(), 60))
        kinds = [e["type"] for e in events]
        assert "error" in kinds and events[kinds.index("error")]["code"] == "server_shutdown"
        finals = [e for e in events if e["type"] == "transcript.final"]
        assert finals and wer(CLIPS["leopard-en"].text, " ".join(f["segment"]["text"] for f in finals)) <= 0.2
        assert kinds[-1] == "session.closed"
        assert code == 1001
        assert proc.wait(timeout=30) in (0, -sig, 128 + sig)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("allocator", ["jemalloc", "system"])
def test_serve_runs_on_jemalloc_where_the_system_has_it(allocator):
    from gateway.http.allocator import find_jemalloc

    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--model", "tiny.en", "--port", str(port), "--workers", "1", "--allocator", allocator],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(proc, port)
        with open(f"/proc/{proc.pid}/maps") as maps:  # the same process, re-executed
            loaded = "jemalloc" in maps.read()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if allocator == "system":
        assert not loaded and "allocator:" not in out
    elif find_jemalloc():
        assert loaded and "allocator: jemalloc" in out
    else:
        assert not loaded and "libjemalloc2 not found" in out


def test_serve_refuses_to_start_anonymous_on_a_network_address():
    """Issue 19: with no keys on 0.0.0.0, anyone who reaches the port could list and follow every call."""
    refused = cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--allocator", "system")
    assert refused.returncode == 2 and "--allow-anonymous" in refused.stderr and "STT_GATEWAY_API_KEYS" in refused.stderr
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", str(port), "--model", "tiny.en", "--workers", "1", "--allocator", "system"],
        env={**os.environ, "STT_GATEWAY_ALLOW_ANONYMOUS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(proc, port)  # the operator said so: it starts
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
