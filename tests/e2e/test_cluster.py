"""Two replicas behind HAProxy (deploy/haproxy.cfg, started by deploy/cluster.py), on
loopback: streams of real speech spread, a full replica sends them to the other, a
SIGTERM drains, and a SIGKILL mid-utterance is survived by the bundled client.

Needs Debian's haproxy: skipped without it, failed in CI (.ci/run installs it and sets
STT_GATEWAY_REQUIRE_HAPROXY=1).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from bench.textnorm import wer
from deploy.cluster import Cluster, get_json, haproxy_binary
from gateway.client import stream_audio, stream_url
from tests.clips import CLIPS, CONVERSATION, check_continuous, load_clip, spoken, wav_bytes

WER_MARGIN = 0.05  # as in tests/e2e/test_resume.py: a resumed stream against the same audio streamed whole
# Two replicas share this machine's cores with the test: one decode each, no load-based
# refusals (the cap is what these tests are about).
SERVE = ["--workers", "1", "--cpu-threads", "1", "--admission", "false", "--drain-timeout-s", "15"]


def _haproxy() -> None:
    if haproxy_binary() is None:
        if os.environ.get("STT_GATEWAY_REQUIRE_HAPROXY") == "1":
            pytest.fail("haproxy is required (STT_GATEWAY_REQUIRE_HAPROXY=1): apt-get install haproxy")
        pytest.skip("needs Debian's haproxy: apt-get install haproxy (.ci/run installs it)")


@pytest.fixture
def cluster_of():
    started: list[Cluster] = []

    def start(replica_args: list[list[str]] | None = None) -> Cluster:
        _haproxy()
        cluster = Cluster(replicas=2, serve_args=SERVE, replica_args=replica_args or [])
        started.append(cluster)
        cluster.__enter__()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope="module")
def speech():
    return spoken(*CONVERSATION)


def streams_on(cluster: Cluster) -> list[int]:
    return [replica.health()["streams"] if replica.alive() else 0 for replica in cluster.members]


def test_streams_spread_and_a_full_replica_sends_them_to_the_other(cluster_of):
    # replica1 takes 1 stream, replica2 takes 3: four fit, the fifth finds no room.
    cluster = cluster_of([["--max-streams", "1"], ["--max-streams", "3"]])
    clip = CLIPS["lhotse-libri-2412-153948-0000"]
    samples = load_clip(clip.id)
    opened = 0
    refused: list[int] = []

    async def one(i: int):
        nonlocal opened
        await asyncio.sleep(0.05 * i)  # faster than the checks: a full replica must refuse, and be retried past

        def seen(event: dict, arrival: float) -> None:
            nonlocal opened
            opened += event["type"] == "session.created"

        return await stream_audio(stream_url(cluster.ws, session_id=f"s{i}"), samples, speed=1.5, on_event=seen)

    async def fifth(results: asyncio.Future) -> None:
        deadline = time.monotonic() + 30
        while opened < 4:
            if results.done() or time.monotonic() > deadline:
                return  # a stream failed to open: the checks below say which
            await asyncio.sleep(0.05)
        try:
            async with websockets.connect(stream_url(cluster.ws)):
                pass
        except InvalidStatus as exc:
            refused.append(exc.response.status_code)
            assert exc.response.headers.get("Retry-After")

    async def run():
        results = asyncio.gather(*(one(i) for i in range(4)))
        await fifth(results)
        where = await asyncio.to_thread(streams_on, cluster)
        return await results, where

    results, where = asyncio.run(run())
    assert where == [1, 3]  # none refused while there was room on either
    assert refused == [503]
    for result in results:
        assert result.close_code == 1000 and result.failure is None
        assert wer(clip.text, result.text) <= 0.25, result.text
    # The streams came faster than the health checks: a full replica refused
    # at least one upgrade, and the balancer retried it on the other.
    backend = cluster.stats()["BACKEND"]
    assert int(backend["wretr"]) + int(backend["wredis"]) >= 1, backend


def test_sigterm_drains_a_replica_and_new_streams_go_to_the_other(cluster_of, speech):
    cluster = cluster_of()
    samples, reference = speech
    first, second = cluster.members
    events: list[tuple[float, dict]] = []
    finals_seen = threading.Event()

    def on_event(event: dict, arrival: float) -> None:
        events.append((time.monotonic(), event))
        if event["type"] == "transcript.final":
            finals_seen.set()

    async def run():
        streaming = asyncio.create_task(stream_audio(stream_url(cluster.ws), samples, speed=2.0, resumes=5, on_event=on_event))
        while not finals_seen.is_set():
            await asyncio.sleep(0.05)
        where = await asyncio.to_thread(streams_on, cluster)
        assert sorted(where) == [0, 1]
        draining = cluster.members[where.index(1)]
        other = cluster.members[where.index(0)]
        draining.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Not ready at once: the balancer stops sending it streams.
        status = await asyncio.to_thread(get_json, draining.url + "/readyz")
        assert status[0] == 503 and status[1]["status"] == "draining"
        await asyncio.to_thread(cluster.wait_until, lambda: cluster.states().get(draining.name) != "UP", 5, "marked down")
        # A new stream now goes to the other replica.
        newcomer = await stream_audio(stream_url(cluster.ws, session_id="after-sigterm"), load_clip("ds-ldc93s1"), speed=3.0)
        assert newcomer.close_code == 1000 and newcomer.failure is None
        code, snapshot = await asyncio.to_thread(get_json, other.url + "/v0/sessions/after-sigterm")
        assert code == 200 and snapshot["session_id"] == "after-sigterm"
        return await streaming, draining, signalled

    result, draining, signalled = asyncio.run(run())
    # The drained replica finalised its stream and said so, then exited by itself (uvicorn
    # re-raises the signal it caught, so the status is "ended by SIGTERM").
    assert draining.process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "finalising 1 open stream(s) before exit" in draining.log.read_text()
    after = [event for at, event in events if at >= signalled]
    kinds = [event["type"] for event in after]
    assert "error" in kinds and after[kinds.index("error")]["code"] == "server_shutdown"
    assert "session.closed" in kinds[kinds.index("error") :]
    # ... and the bundled client went on elsewhere, continuously.
    assert result.resumes == 1 and result.failure is None and result.close_code == 1000
    check_continuous(result.finals)
    assert wer(reference, result.text) <= 0.25, result.text


def test_sigkill_mid_utterance_the_cli_resumes_on_the_other_replica(cluster_of, speech, tmp_path):
    cluster = cluster_of()
    samples, reference = speech
    plain = asyncio.run(stream_audio(stream_url(cluster.ws), samples, speed=3.0))
    assert plain.failure is None
    audio = tmp_path / "speech.wav"
    audio.write_bytes(wav_bytes(samples))

    cli = subprocess.Popen(
        [sys.executable, "-m", "gateway", "stream", str(audio), "--url", cluster.ws, "--speed", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    events: list[dict] = []
    killed: list[str] = []
    assert cli.stdout is not None
    for line in cli.stdout:
        event = json.loads(line)
        events.append(event)
        finals = sum(e["type"] == "transcript.final" for e in events)
        if not killed and finals >= 2 and event["type"] == "transcript.partial":
            where = streams_on(cluster)
            victim = cluster.members[where.index(1)]
            victim.process.kill()  # mid-utterance: a partial of the third one is out
            killed.append(victim.name)
    assert cli.wait(timeout=60) == 0, cli.stderr.read() if cli.stderr else ""

    assert killed
    notes = [e for e in events if e["type"] == "client.reconnecting"]
    assert notes and "dropped" in notes[0]["message"]
    created = [e for e in events if e["type"] == "session.created"]
    assert len(created) == 2
    finals = [e for e in events if e["type"] == "transcript.final"]
    check_continuous(finals)
    assert finals[-1]["segment"]["end"] <= len(samples) / 16000 + 0.05
    text = " ".join(f["segment"]["text"].strip() for f in finals if f["segment"]["text"].strip())
    assert wer(reference, text) <= wer(reference, plain.text) + WER_MARGIN, (text, plain.text)
    survivor = next(r for r in cluster.members if r.name not in killed)
    assert survivor.alive()
