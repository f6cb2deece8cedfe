"""OpenAI's verbose_json body: text, task, language, duration, segments (and words)."""

from __future__ import annotations

from typing import Any

from gateway.core.records import Segment


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
