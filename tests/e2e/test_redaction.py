"""Redaction end to end (contract section 10): a call read out by espeak-ng (a card number,
an SSN and a decoy price), the real model, real sockets. The card number and the SSN never
leave the gateway: not in an upload's answer (every format, streamed or not), a live
stream's partials and finals, a subscriber's events, the snapshot or a webhook; the price
stays; the server's --redact is a floor no client lowers.

espeak-ng is Debian's (``.ci/run`` installs it); without it these tests skip, or fail
under STT_GATEWAY_REQUIRE_ESPEAK=1."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import wave

import httpx
import numpy as np
import pytest
import websockets

from gateway.client import stream_audio, stream_url
from redaction.spoken import number_runs

from .test_webhooks import Receiver

CALL = (
    "Thank you for calling. My card number is four five three nine, one four eight eight, zero three four three, six four six seven. "
    "My social security number is five three six, two two, eight one four seven. "
    "The total is 42 dollars."
)
SECRETS = ("4539148803436467", "536228147")


@pytest.fixture(scope="module")
def call() -> np.ndarray:
    return spoken_call()


def spoken_call() -> np.ndarray:
    """CALL read by espeak-ng (the test skips, or fails when required, without it)."""
    if shutil.which("espeak-ng") is None:
        if os.environ.get("STT_GATEWAY_REQUIRE_ESPEAK") == "1":
            pytest.fail("espeak-ng is required (STT_GATEWAY_REQUIRE_ESPEAK=1): apt-get install espeak-ng")
        pytest.skip("espeak-ng is not installed")
    from bench.redaction import espeak

    return np.concatenate([espeak(CALL, "en-us", 150), np.zeros(16000, np.float32)])


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def shows_secret(text: str, secrets: tuple[str, ...] = SECRETS) -> bool:
    """Whether ``text`` shows three or more digits of the card number or the SSN, however written."""
    return any(len(run.digits) >= 3 and any(run.digits in s for s in secrets) for run in number_runs(text.split()))


def strings_in(told) -> list[str]:
    """Every string in a JSON value (its texts, words, labels), not its numbers: times such
    as 4.53 are not digits of the card number 4539..."""
    if isinstance(told, str):
        return [told]
    if isinstance(told, dict):
        told = list(told.values())
    return [s for x in told for s in strings_in(x)] if isinstance(told, list) else []


def told_secret(told) -> bool:
    """Whether any string of a JSON value (a text, a word) shows a sensitive number's digits."""
    return any(shows_secret(s) for s in strings_in(told))


def transcribe(server, samples: np.ndarray, **fields) -> httpx.Response:
    return httpx.post(
        server.http + "/v1/audio/transcriptions",
        files={"file": ("call.wav", wav_bytes(samples), "audio/wav")}, data={"model": "whisper-1", **fields}, timeout=300,
    )


def test_an_upload_is_redacted_in_every_format_and_the_price_stays(server, call):
    plain = transcribe(server, call, response_format="json").json()["text"]
    assert shows_secret(plain), plain  # what the model writes, unredacted: the test's yardstick
    body = transcribe(server, call, response_format="verbose_json", redact="pci,ssn", **{"timestamp_granularities[]": "word"}).json()
    assert "[PCI]" in body["text"] and "[SSN]" in body["text"] and "42" in body["text"], body["text"]
    assert not told_secret(body), body["text"]
    placeholders = [w for w in body["words"] if w["word"].strip().startswith("[")]
    assert len(placeholders) >= 2 and all(w["end"] > w["start"] for w in placeholders)
    assert all(s["tokens"] == [] for s in body["segments"] if "[" in s["text"])  # tokens would spell the digits
    for fmt in ("text", "srt", "vtt"):
        answer = transcribe(server, call, response_format=fmt, redact=["pci", "ssn"]).text
        assert "[PCI]" in answer and not shows_secret(answer), (fmt, answer)
    streamed = transcribe(server, call, stream="true", redact="pci,ssn").text
    deltas = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: ")]
    assert deltas[-1]["type"] == "transcript.text.done" and "[PCI]" in deltas[-1]["text"]
    assert not shows_secret(streamed), streamed
    refused = transcribe(server, call[:16000], redact="pci,names")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "redact"


def test_a_live_call_never_shows_the_numbers_to_its_client_a_follower_the_snapshot_or_a_webhook(make_server, call, tmp_path):
    receiver = Receiver()
    try:
        # The server's floor is pci; the client adds ssn.
        server = make_server(redact=("pci",), webhook_url=receiver.url, data_dir=str(tmp_path))
        url = stream_url(server.ws, session_id="card-call", redact="ssn", language="en")
        result = asyncio.run(stream_audio(url, call, speed=2.0))
        receiver.wait_for("session.completed")
    finally:
        receiver.running.stop()
    assert result.of_type("session.created")[0]["session"]["redact"] == ["pci", "ssn"]
    partials = result.of_type("transcript.partial")
    assert partials, "a paced call has partials"
    for p in partials:
        assert not shows_secret(p["text"]) and not shows_secret(p["stable_text"]), p
    assert "[PCI]" in result.text and "[SSN]" in result.text and "42" in result.text, result.text
    assert not told_secret(result.events), result.text

    async def follow():
        async with websockets.connect(f"{server.ws}/v0/sessions/card-call/events") as follower:
            return [json.loads(m) async for m in follower]

    followed = asyncio.run(follow())
    assert [e["segment"]["text"] for e in followed if e["type"] == "transcript.final"] == [f["segment"]["text"] for f in result.finals]
    snapshot = httpx.get(server.http + "/v0/sessions/card-call").json()
    hooks = [body for _, body in receiver.received]
    assert any("[PCI]" in json.dumps(h) for h in hooks)
    for told in (followed, snapshot, hooks):
        assert not told_secret(told), told


def test_the_servers_floor_cannot_be_lowered_by_a_client(make_server, call):
    server = make_server(redact=("pci",))
    # A stream that asks for nothing, or for another kind only, still has the card number redacted.
    result = asyncio.run(stream_audio(stream_url(server.ws, redact="email", interim_results="false"), call, speed=None))
    assert result.of_type("session.created")[0]["session"]["redact"] == ["pci", "email"]
    assert "[PCI]" in result.text and not shows_secret(result.text, SECRETS[:1]), result.text
    # An upload likewise; the SSN, asked by no one, is not redacted.
    text = transcribe(server, call, response_format="json").json()["text"]
    assert "[PCI]" in text and "[SSN]" not in text, text


def test_the_cli_redacts_a_file_and_refuses_an_unknown_kind(call, tmp_path):
    from .test_cli import cli

    path = tmp_path / "call.wav"
    path.write_bytes(wav_bytes(call))
    done = cli("transcribe", str(path), "--model", "tiny.en", "--redact", "pci", "--redact", "ssn")
    assert done.returncode == 0 and "[PCI]" in done.stdout and not shows_secret(done.stdout), done.stdout + done.stderr
    refused = cli("transcribe", str(path), "--model", "tiny.en", "--redact", "names")
    assert refused.returncode == 2 and "unknown kind(s) names" in refused.stderr


def test_the_deepgram_sdk_asks_for_redact_and_no_result_shows_the_card_number(server, call):
    from .test_door_deepgram import Inbox, client_for, send_paced

    async def go():
        async with client_for(server).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=16000, redact="pci", interim_results="true"
        ) as socket:
            inbox = Inbox(socket)
            await send_paced(socket, wav_bytes(call)[44:], 32000, speed=2.0)
            await socket.send_close_stream()
            return await inbox.closed(timeout=120)

    results = [m for m in asyncio.run(go()) if m.type == "Results"]
    said = [m.channel.alternatives[0].transcript for m in results]
    assert any(m.is_final and "[PCI]" in m.channel.alternatives[0].transcript for m in results), said
    assert not any(shows_secret(text, SECRETS[:1]) for text in said), said
    words = [w.word for m in results if m.is_final for w in m.channel.alternatives[0].words]
    assert "[PCI]" in words, words  # Deepgram's plain word: the placeholder keeps its brackets
