"""Session options: one typed object, and the one parser of what clients ask.

Every front door maps its own option names onto these (the native door uses
them as they are), then ``parse_options`` checks the values: strings from a
query string are coerced, unknown keys and bad values are refused with an
``invalid_config`` error that names the problem.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gateway.inference.models import is_diarizing_model
from redaction import KINDS as REDACT_KINDS
from vad.segmenter import SegmenterConfig

from .errors import ProtocolError
from .languages import normalise_language

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
ENCODINGS = ("pcm_s16le", "pcm_s32le", "pcm_f32le", "mulaw", "alaw")
TASKS = ("transcribe", "translate")


# -- channel labels (streams, multichannel files) ------------------------------------------
def split_labels(text: str | None, channels: int) -> tuple[str, ...]:
    """The names in a comma-separated ``channel_labels`` ("0,1,…" when None)."""
    if text is None:
        return tuple(str(c) for c in range(channels))
    return tuple(label.strip() for label in text.split(","))


def channel_labels(text: str | None, channels: int) -> tuple[str, ...]:
    """``split_labels``, refusing (ValueError) a list that does not name each channel once."""
    labels = split_labels(text, channels)
    if len(labels) != channels or not all(0 < len(label) <= 64 for label in labels) or len(set(labels)) != len(labels):
        raise ValueError(
            f"channel_labels must name each of the {channels} channel(s) once (at most 64 characters each), comma-separated "
            f"(e.g. agent,caller); got {text!r}"
        )
    return labels


# -- session options --------------------------------------------------------
@dataclass(frozen=True)
class SessionOptions:
    model: str = "whisper-1"
    language: str | None = None
    task: str = "transcribe"
    prompt: str | None = None
    sample_rate: int = 16000
    encoding: str = "pcm_s16le"
    interim_results: bool = True
    # The VAD's own defaults: one home (vad.segmenter.SegmenterConfig).
    vad_aggressiveness: int = SegmenterConfig.aggressiveness
    endpoint_ms: int = SegmenterConfig.endpoint_ms
    max_segment_s: float = SegmenterConfig.max_segment_s
    pre_roll_ms: int = SegmenterConfig.pre_roll_ms  # audio kept before the detected onset of speech
    channels: int = 1  # interleaved in each frame; each transcribed on its own
    channel_labels: str | None = None  # comma-separated, one per channel; default "0,1,…"
    # Resuming a dropped stream (docs/protocol.md section 7): every time point of the session is
    # shifted by time_offset, and segment ids start at first_segment_id.
    time_offset: float = 0.0
    first_segment_id: int = 0
    diarize: bool = False  # who is speaking: a speaker on every final and partial (docs/protocol.md section 9)
    # What never leaves the gateway (docs/protocol.md section 10): kinds of REDACT_KINDS, in that order.
    # A client's kinds are added to the server's (its floor); none is ever removed.
    redact: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return split_labels(self.channel_labels, self.channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


OPTION_KEYS = tuple(f.name for f in fields(SessionOptions))
LIMITS: dict[str, tuple[float, float]] = {
    "endpoint_ms": (100, 5000), "max_segment_s": (2.0, 28.0), "vad_aggressiveness": (0, 3), "pre_roll_ms": (0, 1000),
    "channels": (1, 8),
    "time_offset": (0.0, 31_536_000.0),  # a year of audio
    "first_segment_id": (0, 1_000_000_000),
}


def prompt_too_long(length: int, limit: int) -> str:
    return (
        f"prompt is {length} characters; the limit is {limit} (Whisper reads only the last 223 tokens "
        "of a prompt, about 900 characters of English)"
    )


def redact_kinds(value: Any) -> tuple[str, ...]:
    """The kinds in a ``redact`` value: comma-separated text or a list of
    names (ValueError naming the problem), in ``REDACT_KINDS`` order."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(k, str) for k in items):
        raise ValueError(f"redact must name kinds, comma-separated or a list (of {', '.join(REDACT_KINDS)}); got {value!r}")
    kinds = {k.strip().lower() for k in items if k.strip()}
    unknown = sorted(kinds - set(REDACT_KINDS))
    if unknown:
        raise ValueError(
            f"redact: unknown kind(s) {', '.join(unknown)}; known: {', '.join(REDACT_KINDS)} "
            "(names and addresses are not redacted: that needs a named-entity model)"
        )
    return tuple(k for k in REDACT_KINDS if k in kinds)


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_config", message, fatal=True)


# How true and false are spelt in a query, a message or the environment: the one rule.
FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def flag_word(text: str) -> bool | None:
    """What a spelling of true or false means (any case, spaces around); None: neither."""
    return FLAG_WORDS.get(text.strip().lower())


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    meaning = flag_word(value) if isinstance(value, str) else None
    if meaning is None:
        raise _invalid(f"{key} must be true or false, got {value!r}")
    return meaning


def _as_number(key: str, value: Any, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise _invalid(f"{key} must be a number, got {value!r}")
    try:
        number = kind(value)
        if kind is int and isinstance(value, float) and value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e400)
        raise _invalid(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if key in LIMITS:
        low, high = LIMITS[key]
        if not low <= number <= high:
            raise _invalid(f"{key} must be between {low} and {high}, got {value!r}")
    return number


MAX_PROMPT_CHARS = 4000  # the default bound; Whisper reads at most the last 223 tokens of it


def parse_options(
    raw: Mapping[str, Any], base: SessionOptions, languages: Collection[str], max_prompt_chars: int = MAX_PROMPT_CHARS
) -> SessionOptions:
    """Apply client-given options over ``base``; refuse unknown keys and bad values.

    Model names are checked by the caller, which knows the registry.
    """
    unknown = sorted(set(raw) - set(OPTION_KEYS))
    if unknown:
        raise _invalid(
            f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(OPTION_KEYS)}"
        )
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("model", "prompt", "channel_labels"):
            if value is not None and not isinstance(value, str):
                raise _invalid(f"{key} must be a string")
            if key == "prompt" and value is not None and len(value) > max_prompt_chars:
                raise _invalid(prompt_too_long(len(value), max_prompt_chars))
            changes[key] = value if key != "model" else (value or base.model)
            if key == "model" and value and is_diarizing_model(value) and "diarize" not in raw:
                changes["diarize"] = True  # OpenAI's diarizing model, at every door: who is speaking
        elif key == "language":
            try:
                changes[key] = normalise_language(value, languages)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
        elif key == "task":
            if value not in TASKS:
                raise _invalid(f"task must be one of {', '.join(TASKS)}, got {value!r}")
            changes[key] = value
        elif key == "encoding":
            if value not in ENCODINGS:
                raise _invalid(f"encoding must be one of {', '.join(ENCODINGS)}, got {value!r}")
            changes[key] = value
        elif key == "sample_rate":
            rate = _as_number(key, value, int)
            if rate not in SAMPLE_RATES:
                raise _invalid(
                    f"sample_rate {value!r} is not supported; use one of {', '.join(map(str, SAMPLE_RATES))}"
                )
            changes[key] = rate
        elif key == "redact":
            try:
                asked = redact_kinds(value)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            # Added to what is on already (the server's floor, or earlier asks): never fewer.
            changes[key] = tuple(k for k in REDACT_KINDS if k in set(asked) | set(base.redact))
        elif key in ("interim_results", "diarize"):
            changes[key] = _as_bool(key, value)
        elif key in ("vad_aggressiveness", "endpoint_ms", "pre_roll_ms", "channels", "first_segment_id"):
            changes[key] = _as_number(key, value, int)
        elif key in ("max_segment_s", "time_offset"):
            changes[key] = float(_as_number(key, value, float))
    options = replace(base, **changes)
    try:
        channel_labels(options.channel_labels, options.channels)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return options
