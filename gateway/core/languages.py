"""Which languages and tasks a model serves: one rule for streams and files."""

from __future__ import annotations

from collections.abc import Collection

AUTO = (None, "", "auto")  # ways to ask for language detection


def normalise_language(value: object, languages: Collection[str]) -> str | None:
    """An ISO-639-1 code Whisper knows, lower-cased; None for detection.

    Raises ``ValueError`` with the message a client is shown.
    """
    if value in AUTO:
        return None
    if not isinstance(value, str) or value.lower() not in languages:
        raise ValueError(
            "language must be an ISO-639-1 code Whisper knows (e.g. en, de, es) or omitted "
            f"for auto-detection, got {value!r}"
        )
    return value.lower()


def english_only_refusal(model: str, multilingual: bool | None, language: str | None, task: str) -> str | None:
    """Why an English-only model cannot do what is asked, or None when it can.

    ``multilingual`` None (a model not loaded yet whose name says nothing)
    is given the benefit of the doubt.
    """
    if multilingual is not False:
        return None
    if task == "translate":
        what = "translate"
    elif language not in (None, "en"):
        what = f"transcribe language {language!r}"
    else:
        return None
    return f"model {model!r} is English-only and cannot {what}; omit language or use a multilingual model such as base"
