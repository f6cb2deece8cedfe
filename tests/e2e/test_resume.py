"""Resuming a dropped stream (docs/protocol.md section 7): the bundled client's
replay buffer and reconnect, against a real server through a proxy whose
connections the test cuts, with real speech."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bench.textnorm import wer
from gateway.client import stream_audio, stream_url
from tests.clips import CONVERSATION, check_continuous, spoken

from .proxy import CuttableProxy

# A resumed stream may be this much worse than the same audio streamed
# without a drop: the cut utterance is decoded again from its start, on a
# new session whose prompt is the recent text rather than the whole of it.
WER_MARGIN = 0.05


# -- the parts, without a server ------------------------------------------


# -- against a real server -------------------------------------------------


@pytest.fixture(scope="module")
def speech():
    return spoken(*CONVERSATION)


def cut_after_finals(proxy: CuttableProxy, count: int, cuts: list[float]):
    """on_event: cut the network once ``count`` finals have arrived (and a
    partial of the next utterance has begun: the cut lands mid-speech)."""
    seen = {"finals": 0}

    def on_event(event: dict, arrival: float) -> None:
        if event["type"] == "transcript.final":
            seen["finals"] += 1
        elif event["type"] == "transcript.partial" and seen["finals"] >= count and not cuts:
            cuts.append(arrival)
            threading.Thread(target=proxy.cut, daemon=True).start()

    return on_event


def test_a_dropped_connection_resumes_with_continuous_ids_and_times(server, speech):
    samples, reference = speech
    plain = asyncio.run(stream_audio(stream_url(server.ws), samples, speed=3.0))
    plain_wer = wer(reference, plain.text)

    cuts: list[float] = []
    reconnects: list[tuple[int, str]] = []
    with CuttableProxy(server.port) as proxy:
        result = asyncio.run(
            stream_audio(
                stream_url(proxy.ws), samples, speed=3.0, resumes=5,
                on_event=cut_after_finals(proxy, 2, cuts),
                on_reconnect=lambda attempt, reason, delay: reconnects.append((attempt, reason)),
            )
        )
        # One connection, then one per reconnect: on a busy machine a resume may
        # first be turned away (503 while the dropped session is finalised) and tried again.
        assert proxy.connections == 1 + len(reconnects)

    assert cuts, "the stream ended before the cut"
    assert result.resumes == 1 and result.failure is None and result.gap_s == 0
    assert reconnects and "dropped" in reconnects[0][1]
    assert all("cannot connect" in reason for _, reason in reconnects[1:]), reconnects
    assert result.close_code == 1000 and result.closed is not None
    created = result.of_type("session.created")
    assert len(created) == 2
    resumed_options = created[1]["session"]
    first_after = [f for f in result.finals if result.arrival_of(f) > cuts[0]][0]
    last_before = [f for f in result.finals if result.arrival_of(f) < cuts[0]][-1]
    assert resumed_options["first_segment_id"] == last_before["segment"]["id"] + 1 == first_after["segment"]["id"]
    assert resumed_options["time_offset"] == pytest.approx(last_before["ended_at"], abs=0.001)
    check_continuous(result.finals)
    assert result.finals[-1]["segment"]["end"] <= len(samples) / 16000 + 0.05
    assert wer(reference, result.text) <= plain_wer + WER_MARGIN, (result.text, plain.text)


def test_without_resumes_a_drop_ends_the_stream_and_says_so(server, speech):
    samples, _ = speech
    cuts: list[float] = []
    with CuttableProxy(server.port) as proxy:
        result = asyncio.run(stream_audio(stream_url(proxy.ws), samples, speed=3.0, on_event=cut_after_finals(proxy, 1, cuts)))
    assert cuts and result.resumes == 0
    assert result.closed is None
    assert result.failure is not None and "dropped" in result.failure


def test_a_server_that_stays_away_is_given_up_on(server, speech):
    samples, _ = speech
    cuts: list[float] = []
    tries: list[int] = []
    with CuttableProxy(server.port) as proxy:
        on_event = cut_after_finals(proxy, 1, cuts)

        def gone(event: dict, arrival: float) -> None:
            on_event(event, arrival)
            if cuts:
                proxy.upstream = ("127.0.0.1", 9)  # nothing listens on the discard port: every reconnect fails

        result = asyncio.run(
            stream_audio(stream_url(proxy.ws), samples, speed=3.0, resumes=3, on_event=gone,
                         on_reconnect=lambda attempt, reason, delay: tries.append(attempt))
        )
    assert tries == [1, 2, 3]
    assert result.failure is not None and result.closed is None
    assert result.finals  # what was final before the drop is kept
