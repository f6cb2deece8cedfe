"""Subtitles: SubRip (srt) and WebVTT cues, one per segment with text; a
diarized file's cues name their speaker, a multichannel file's their channel
(``A: text``, WebVTT's ``<v A>``)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.records import Segment


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[Segment]) -> Iterator[tuple[Segment, str]]:
    """Segments with text, as one cue line each: a blank line would end the cue early."""
    for segment in segments:
        text = " ".join(segment.text.split())
        if text:
            yield segment, text.replace("-->", "->")


def _speaker(segment: Segment) -> str:
    """Who said a cue: its speaker (diarized), its channel's label (multichannel), or nothing."""
    name = segment.speaker or segment.label
    return "" if name is None else " ".join(name.split()).replace("-->", "->")


def _vtt_escape(text: str) -> str:
    # In WebVTT cue text "<" opens a tag and "&" an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(segments: list[Segment]) -> str:
    blocks = [
        f"{n}\n{_clock(s.start, ',')} --> {_clock(max(s.end, s.start + 0.001), ',')}\n"
        + (f"{_speaker(s)}: " if _speaker(s) else "") + f"{text}\n"
        for n, (s, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: list[Segment]) -> str:
    blocks = [
        f"{_clock(s.start, '.')} --> {_clock(max(s.end, s.start + 0.001), '.')}\n"
        + (f"<v {_vtt_escape(_speaker(s))}>" if _speaker(s) else "") + f"{_vtt_escape(text)}\n"
        for s, text in _cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
