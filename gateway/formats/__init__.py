"""Batch results rendered in the API's response formats (json, text, srt, vtt, verbose_json, diarized_json)."""

from __future__ import annotations

import json

from gateway.core.records import Transcription

from .subtitles import to_srt, to_vtt
from .verbose_json import to_diarized_json, to_verbose_json

__all__ = ["MEDIA_TYPES", "RESPONSE_FORMATS", "render", "to_diarized_json", "to_srt", "to_verbose_json", "to_vtt"]

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "diarized_json": "application/json",
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
    if fmt == "diarized_json":
        return json.dumps(to_diarized_json(result), ensure_ascii=False, indent=indent)
    body = to_verbose_json(result.text, result.task, result.language, result.duration, result.segments, words)
    return json.dumps(body, ensure_ascii=False, indent=indent)
