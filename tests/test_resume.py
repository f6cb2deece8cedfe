"""Resuming a dropped stream (PROTOCOL.md section 7): the bundled client's
replay buffer and reconnect, against a real server through a proxy whose
connections the test cuts, with real speech."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from gateway.client import RESUME_PROMPT_CHARS, ReplayBuffer, _Resume, resumed_url, stream_audio, stream_url
from gateway.textnorm import wer

from .conftest import CONVERSATION, check_continuous, spoken
from .proxy import CuttableProxy

# A resumed stream may be this much worse than the same audio streamed
# without a drop: the cut utterance is decoded again from its start, on a
# new session whose prompt is the recent text rather than the whole of it.
WER_MARGIN = 0.05


def ramp(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


# -- the parts, without a server ------------------------------------------


def test_replay_buffer_holds_what_no_final_has_acknowledged():
    buffer = ReplayBuffer(sample_rate=10, limit_s=100)
    for start in range(0, 50, 10):
        buffer.append(ramp(10, start))
    assert (buffer.start, buffer.end, buffer.held) == (0, 50, 50)
    buffer.acknowledge(23)  # a final ended 2.3 s in: the rest is held
    assert buffer.start == 23
    assert buffer.samples().tolist() == list(range(23, 50))
    buffer.acknowledge(10)  # an older acknowledgement changes nothing
    assert buffer.start == 23
    buffer.acknowledge(50)
    assert buffer.held == 0 and buffer.samples().size == 0
    buffer.append(ramp(5, 50))
    assert buffer.samples().tolist() == list(range(50, 55))
    assert buffer.dropped == 0


def test_replay_buffer_is_bounded_and_counts_what_it_let_go():
    buffer = ReplayBuffer(sample_rate=10, limit_s=3)  # 30 samples
    for start in range(0, 45, 15):
        buffer.append(ramp(15, start))
    assert buffer.held == 30 and buffer.dropped == 15
    assert buffer.samples().tolist() == list(range(15, 45))
    buffer.acknowledge(5)  # acknowledges audio already let go: nothing more
    assert (buffer.start, buffer.dropped) == (15, 15)
    assert buffer.lost() == 10  # 5..15 was neither final nor held: a resume leaves it out
    assert buffer.lost() == 0  # and says so once


def test_resumed_url_sets_the_resume_point_and_keeps_the_callers_options():
    url = stream_url("ws://h:1", language="en", endpoint_ms=300, time_offset=5)
    resumed = parse_qs(urlsplit(resumed_url(url, 12.3456789, 7, "the words so far")).query)
    assert resumed["time_offset"] == ["12.345679"]
    assert resumed["first_segment_id"] == ["7"]
    assert resumed["prompt"] == ["the words so far"]
    assert resumed["language"] == ["en"] and resumed["endpoint_ms"] == ["300"]
    own = parse_qs(urlsplit(resumed_url(stream_url("ws://h:1", prompt="Quilter, Kubernetes"), 1.0, 1, "recent")).query)
    assert own["prompt"] == ["Quilter, Kubernetes"]  # vocabulary the caller chose stays


def test_resume_point_follows_the_finals():
    resume = _Resume(base_offset=100.0, next_id=7, sample_rate=16000)
    final = {"segment": {"id": 9, "end": 101.5, "text": " Hello there."}, "ended_at": 102.0}
    assert resume.final(final) == 32000  # 2 s after the stream's own start
    assert resume.next_id == 10
    assert resume.prompt() == "Hello there."
    for i in range(40):
        resume.final({"segment": {"id": 10 + i, "end": 0, "text": f" sentence number {i}."}, "ended_at": 103.0})
    prompt = resume.prompt()
    assert prompt is not None and len(prompt) <= RESUME_PROMPT_CHARS
    assert prompt.endswith("sentence number 39.") and prompt.startswith("sentence")


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
        assert proxy.connections == 2

    assert cuts, "the stream ended before the cut"
    assert result.resumes == 1 and result.failure is None and result.gap_s == 0
    assert reconnects and "dropped" in reconnects[0][1]
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


def test_a_final_cut_by_a_shutdown_acknowledges_only_up_to_its_last_word():
    """A draining server finalises the utterance in progress where it stands: the words
    it could not finish are after the last word's end, so that audio is sent again."""
    cut = {
        "segment": {"id": 3, "start": 1.0, "end": 3.4, "text": " He began a confused complaint against the wizard,",
                    "words": [{"word": " wizard,", "start": 3.0, "end": 3.4, "probability": 0.9}]},
        "ended_at": 4.0, "end_reason": "flush",
    }
    assert _Resume(0.0, 0, 16000).final(cut, cut=True) == round(3.4 * 16000)
    assert _Resume(0.0, 0, 16000).final(cut) == 4.0 * 16000  # a flush the client asked for: all of it
    ended = dict(cut, end_reason="endpoint")  # finished before the shutdown: its pause is done with
    assert _Resume(0.0, 0, 16000).final(ended, cut=True) == 4.0 * 16000
    empty = dict(cut, segment=dict(cut["segment"], text="", words=[]))  # nothing made out: all of it again
    assert _Resume(0.0, 0, 16000).final(empty, cut=True) == 1.0 * 16000
