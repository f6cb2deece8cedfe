"""Response formats from Segment records: valid subtitles whatever the text, the documented verbose_json."""

from __future__ import annotations

import io

from gateway.core.records import Segment, Word
from gateway.formats import to_srt, to_verbose_json, to_vtt


def segment(i: int, start: float, end: float, text: str, words=()) -> Segment:
    return Segment(i, i * 100, start, end, text, (50257 + i,), 0.0, -0.3, 1.2, 0.01, tuple(words))


SEGMENTS = [
    segment(0, 0.0, 1.5, " Line one\n\nstill line one --> arrow"),
    segment(1, 1.5, 1.5, " A zero-length cue"),
    segment(2, 2.0, 2.5, "   "),  # no text: no cue
    segment(3, 3725.25, 3727.0, " AT&T <b>not a tag</b>"),
]


def test_srt_parses_with_one_cue_per_spoken_segment():
    import srt

    cues = list(srt.parse(to_srt(SEGMENTS)))
    assert [c.index for c in cues] == [1, 2, 3]
    assert cues[0].content == "Line one still line one -> arrow"
    assert cues[1].start.total_seconds() == 1.5 and cues[1].end > cues[1].start
    assert cues[2].start.total_seconds() == 3725.25 and cues[2].content == "AT&T <b>not a tag</b>"
    assert to_srt([]) == ""


def test_vtt_parses_and_escapes_markup():
    import webvtt

    text = to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n")
    cues = list(webvtt.from_buffer(io.StringIO(text)))
    assert [c.start for c in cues] == ["00:00:00.000", "00:00:01.500", "01:02:05.250"]
    assert cues[1].end == "00:00:01.501"
    assert cues[2].text == "AT&amp;T &lt;b&gt;not a tag&lt;/b&gt;"
    assert list(webvtt.from_buffer(io.StringIO(to_vtt([])))) == []


def test_verbose_json_shape():
    words = [Word(" Hi", 0.1, 0.4, 0.9), Word(" there.", 0.4, 0.9, 0.8)]
    segments = [segment(0, 0.1, 0.9, " Hi there.", words)]
    out = to_verbose_json("Hi there.", "transcribe", "en", 1.23456, segments, words=True)
    assert list(out) == ["task", "language", "duration", "text", "segments", "words"]
    assert out["duration"] == 1.235
    assert set(out["segments"][0]) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob",
    }
    assert out["words"] == [{"word": " Hi", "start": 0.1, "end": 0.4}, {"word": " there.", "start": 0.4, "end": 0.9}]
    assert "words" not in to_verbose_json("Hi there.", "transcribe", "en", 1.0, segments, words=False)
