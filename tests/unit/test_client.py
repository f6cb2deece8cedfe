"""The bundled client's resume parts (docs/protocol.md section 7): the replay buffer and the resume URL, without a server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np

from gateway.client import RESUME_PROMPT_CHARS, ReplayBuffer, _Resume, resumed_url, stream_url


def ramp(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


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
