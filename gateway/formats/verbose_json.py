"""OpenAI's verbose_json body (text, task, language, duration, segments and words), and its diarized_json."""

from __future__ import annotations

from typing import Any

from gateway.core.records import Segment, Transcription


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
        out["words"] = [w for s in segments for w in s.word_dicts(probability=False)]
    return out


def to_diarized_json(result: Transcription) -> dict[str, Any]:
    """OpenAI's diarized_json: segments of type ``transcript.text.segment``
    with a ``speaker``: the voice diarization found, or the channel's
    label (a multichannel file, one voice per channel)."""
    return {
        "task": "transcribe",
        "duration": round(result.duration, 3),
        "text": result.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{s.id:03d}",
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text.strip(),
                "speaker": s.speaker or s.label or "A",
            }
            for s in result.segments
            if s.text.strip()
        ],
        "usage": {"type": "duration", "seconds": round(result.duration, 3)},
    }
