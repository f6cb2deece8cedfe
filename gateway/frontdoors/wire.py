"""Reading untrusted values: one helper per wire rule, for every door.

A client can put any JSON value (or any string, in a query) where a door
expects a flag, a number of milliseconds or a list of words. Each helper
here takes that value and either returns what it means or raises the
door's ``ProtocolError``; nothing else escapes, whatever the value (a
nested list ten thousand deep, ``Infinity``, a superscript two that
``str.isdigit`` calls a digit). ``Problem`` says which error: at the
opening a refusal (``OPENING``), mid-stream an error event that keeps the
session (``MESSAGE``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import ProtocolError
from gateway.core.options import flag_word

MAX_LIST = 1000  # items in a list of words (keyterms): more is not a prompt
_DIGITS = re.compile(r"\s*-?[0-9]{1,40}\s*")  # ASCII only ("²".isdigit() is true), and never thousands of digits


@dataclass(frozen=True)
class Problem:
    code: str
    fatal: bool

    def __call__(self, message: str) -> ProtocolError:
        return ProtocolError(self.code, message, fatal=self.fatal)


OPENING = Problem("invalid_config", True)
MESSAGE = Problem("invalid_message", False)


def json_value(text: str | bytes, what: str, problem: Problem = MESSAGE) -> Any:
    """Any JSON value of a text frame or a query value."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):  # RecursionError: nested deeper than the parser goes
        raise problem(f"{what} must be JSON") from None


def json_object(text: str | bytes, what: str, problem: Problem = MESSAGE) -> dict[str, Any]:
    """A JSON object (a control message)."""
    value = json_value(text, what, problem)
    if not isinstance(value, dict):
        raise problem(f"{what} must be a JSON object")
    return value


def text(value: Any, name: str, problem: Problem = OPENING, max_chars: int | None = None) -> str | None:
    """A string, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise problem(f"{name} must be a string, got {shown(value)}")
    if max_chars is not None and len(value) > max_chars:
        raise problem(f"{name} is {len(value)} characters; at most {max_chars}")
    return value


def flag(value: Any, name: str, default: bool, problem: Problem = OPENING) -> bool:
    """true or false: a JSON boolean, or its spelling in a query (``flag_word``: "true", "1", "yes", "on", ...)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    meaning = flag_word(value) if isinstance(value, str) else None
    if meaning is not None:
        return meaning
    raise problem(f"{name} must be true or false, got {shown(value)}")


def number(value: Any, name: str, problem: Problem = OPENING, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number within [low, high]: a JSON number or its spelling in a query."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise problem(f"{name} must be a number, got {shown(value)}")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise problem(f"{name} must be a number, got {shown(value)}") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise problem(f"{name} must be a finite number from {low:g} to {high:g}, got {shown(value)}")
    return result


def integer(value: Any, name: str, problem: Problem = OPENING, low: int = 0, high: int = 2**31) -> int:
    """A whole number within [low, high]: a JSON integer or ASCII digits."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise problem(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return value


def milliseconds(value: Any, name: str, clamp: tuple[float, float], problem: Problem = OPENING) -> int:
    """A duration in milliseconds (any non-negative number), brought within ``clamp``."""
    ms = number(value, name, problem, low=0.0)
    low, high = clamp
    return int(min(max(ms, low), high))


def words(value: Any, name: str, problem: Problem = OPENING) -> list[str]:
    """A list of strings; in a query, that list written as JSON."""
    if isinstance(value, str):
        value = json_value(value, name, problem)
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise problem(f"{name} must be a list of strings, got {shown(value)}")
    if len(value) > MAX_LIST:
        raise problem(f"{name} has {len(value)} items; at most {MAX_LIST}")
    return value


def shown(value: Any) -> str:
    """A value as an error message may quote it: short, whatever it is."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        shown = type(value).__name__
    return shown if len(shown) <= 60 else shown[:57] + "..."
