"""A door opened as ``StreamDoors.open`` opens it, without a socket: the
dialect's ``Opening`` (or ``Refusal``), in-band messages for a door that has
them, then the options into a core ``StreamSession``. Model-free: the
registry resolves names without loading anything."""

from __future__ import annotations

from typing import Any

from gateway.core.errors import ProtocolError
from gateway.core.options import SessionOptions, parse_options
from gateway.core.session import StreamSession
from gateway.core.settings import StreamSettings
from gateway.frontdoors.dialect import Dialect, Frame, Opening, Refusal, Upgrade
from gateway.inference.models import LoadSettings, ModelRegistry, all_languages

REGISTRY = ModelRegistry("tiny.en", LoadSettings())
LANGUAGES = frozenset(all_languages())
SETTINGS = StreamSettings()


def read_opening(door: type[Dialect], upgrade: Upgrade, settings: Any = None, in_band: list[Frame] | tuple[Frame, ...] = ()) -> Opening | Refusal:
    """The record a door's opening makes (in-band messages fed until it is complete)."""
    opening = door.opening(upgrade, settings)
    for value in (opening.api_key, opening.subprotocol):
        assert value is None or isinstance(value, str), value
    if isinstance(opening, Opening) and opening.in_band:
        try:
            for frame in in_band:
                completed = door.opening_frame(frame, opening)
                if completed is not None:
                    return completed
        except ProtocolError as exc:
            return door.refused(exc)
        raise AssertionError("the in-band opening did not complete")
    return opening


def open_door(
    door: type[Dialect], upgrade: Upgrade, settings: Any = None, in_band: list[Frame] | tuple[Frame, ...] = ()
) -> tuple[Dialect, StreamSession] | Refusal:
    """The dialect and its session, or the refusal its client would be told."""
    opening = read_opening(door, upgrade, settings, in_band)
    if isinstance(opening, Refusal):
        return opening
    for value in (opening.session_id, opening.webhook_url):
        assert value is None or isinstance(value, str), value
    try:
        options = parse_options(opening.options, SessionOptions(), LANGUAGES, SETTINGS.max_prompt_chars)
        session = StreamSession(options, REGISTRY, LANGUAGES, SETTINGS)
    except ProtocolError as exc:
        return door.refused(exc, opening.api_key, opening.subprotocol)
    return door(opening), session


def dialect_of(door: type[Dialect], upgrade: Upgrade, settings: Any = None, in_band: list[Frame] | tuple[Frame, ...] = ()) -> Dialect:
    """The dialect an opening that is not refused makes."""
    opening = read_opening(door, upgrade, settings, in_band)
    assert isinstance(opening, Opening), opening
    return door(opening)
