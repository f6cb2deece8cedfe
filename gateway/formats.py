"""Batch results rendered in the API's response formats (json, text, srt, vtt, verbose_json)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .protocol import Segment

if TYPE_CHECKING:
    from .batch import Transcription

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}


def render(result: Transcription, fmt: str, words: bool, indent: int | None = None) -> str:
    """The body of a ``response_format`` (see MEDIA_TYPES for its type)."""
    if fmt == "json":
        return json.dumps({"text": result.text}, ensure_ascii=False, indent=indent)
    if fmt == "text":
        return result.text + "\n"
    if fmt == "srt":
        return to_srt(result.segments)
    if fmt == "vtt":
        return to_vtt(result.segments)
    body = to_verbose_json(result.text, result.task, result.language, result.duration, result.segments, words)
    return json.dumps(body, ensure_ascii=False, indent=indent)


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[Segment]):
    """Segments with text, as one cue line each: a blank line would end the cue early."""
    for segment in segments:
        text = " ".join(segment.text.split())
        if text:
            yield segment, text.replace("-->", "->")


def _vtt_escape(text: str) -> str:
    # In WebVTT cue text "<" opens a tag and "&" an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(segments: list[Segment]) -> str:
    blocks = [
        f"{n}\n{_clock(s.start, ',')} --> {_clock(max(s.end, s.start + 0.001), ',')}\n{text}\n"
        for n, (s, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: list[Segment]) -> str:
    blocks = [
        f"{_clock(s.start, '.')} --> {_clock(max(s.end, s.start + 0.001), '.')}\n{_vtt_escape(text)}\n"
        for s, text in _cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_verbose_json(
    text: str, task: str, language: str, duration: float, segments: list[Segment], words: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": round(duration, 3),
        "text": text,
        "segments": [s.to_dict(words=False) for s in segments],
    }
    if words:
        out["words"] = [w.to_dict(probability=False) for s in segments for w in s.words]
    return out
