"""Twilio Media Streams in, ``GET /v0/telephony/twilio`` (docs/doors/twilio.md).

Twilio (and the Twilio-compatible Telnyx, SignalWire and Fonoster streams)
opens the socket and sends JSON: ``connected``, ``start`` (the call, its
tracks and the ``<Parameter>``s of the TwiML), ``media`` (base64 G.711
mu-law at 8 kHz, per track), ``dtmf``, ``mark``, ``stop``. Its ``<Stream>``
URL carries no query, so the session's options come in-band, in ``start``:
this door opens in band (``opening_frame``). The stream is one-way: nothing
is sent back; the transcript goes to the session's subscribers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass, replace
from typing import Any

from gateway.core.commands import Audio, Command, End, Signal
from gateway.core.errors import ProtocolError
from gateway.core.events import Event
from gateway.core.options import OPTION_KEYS

from .. import wire
from ..dialect import Dialect, Frame, Opening, Refusal, Upgrade
from .aligner import RATE, TrackAligner

log = logging.getLogger(__name__)

# Options a <Parameter> may set; the audio's format is Twilio's.
PARAMETER_OPTIONS = tuple(k for k in OPTION_KEYS if k not in ("sample_rate", "encoding", "channels", "channel_labels"))
TRACK_LABELS = {"inbound": "inbound_label", "outbound": "outbound_label"}
DTMF_KEYS = "0123456789*#ABCD"


def signed_bases(public_url: str) -> list[str]:
    """The base URLs Twilio may have signed: it connects to media streams
    over ``wss://`` only, and signs that URL, so an operator's
    ``https://host`` is checked as ``wss://host`` (``http`` as ``ws``) too."""
    base = public_url.rstrip("/")
    scheme, sep, rest = base.partition("://")
    websocket = {"https": "wss", "http": "ws"}.get(scheme.lower())
    return [base, f"{websocket}{sep}{rest}"] if websocket else [base]


def twilio_signature(auth_token: str, url: str) -> str:
    """Twilio's X-Twilio-Signature of a request without a body: base64 HMAC-SHA1 of its URL."""
    return base64.b64encode(hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()).decode()


@dataclass(frozen=True)
class TwilioSettings:
    """The server's settings of the Twilio door: with an auth token, every
    upgrade must carry Twilio's signature of ``public_url`` + its path."""

    auth_token: str | None = None  # --twilio-auth-token
    public_url: str | None = None  # --public-url: the URL Twilio signed is built from it

    def __post_init__(self) -> None:
        if self.auth_token and not self.public_url:
            raise ValueError("--twilio-auth-token needs --public-url: Twilio signs the URL it connects to")


@dataclass(frozen=True)
class Call:
    """What Twilio's ``start`` message says of the call's audio."""

    tracks: tuple[str, ...]  # inbound and/or outbound, in that order


class TwilioDialect(Dialect):
    name = "twilio"
    telephony = True

    def __init__(self, opened: Opening):
        super().__init__(opened)
        call = opened.wire if isinstance(opened.wire, Call) else Call(("inbound",))
        self._aligner = TrackAligner(list(call.tracks))

    # -- opening --------------------------------------------------------------
    @classmethod
    def presented_key(cls, upgrade: Upgrade) -> str | None:
        return None  # a <Parameter name="api_key">, in start

    @classmethod
    def read_opening(cls, upgrade: Upgrade, settings: Any, presented: Opening) -> Opening | Refusal:
        """The upgrade says only whether Twilio signed it; the call comes in band."""
        twilio = settings if isinstance(settings, TwilioSettings) else TwilioSettings()
        if not twilio.auth_token:
            return replace(presented, in_band=True)
        path = upgrade.path
        if upgrade.query:
            path += "?" + "&".join(f"{k}={v}" for k, v in upgrade.query)
        given = upgrade.header("x-twilio-signature") or ""
        expected = [twilio_signature(twilio.auth_token, base + path) for base in signed_bases(twilio.public_url or "")]
        if not any([hmac.compare_digest(e, given) for e in expected]):  # a list: every form is compared
            message = "X-Twilio-Signature does not match this server's Twilio auth token and public URL"
            return Refusal("bad_signature", message, status=403, unauthorized=True)
        return replace(presented, in_band=True, signed=True)  # signed with the account's token: Twilio itself

    @classmethod
    def opening_frame(cls, frame: Frame, upgraded: Opening) -> Opening | None:
        """Messages before the audio: ``connected``, then ``start`` (the opening)."""
        message = wire.json_object(frame, "a Twilio message")
        event = message.get("event")
        if event == "connected":
            return None
        if event != "start" or not isinstance(message.get("start"), dict):
            raise ProtocolError("invalid_message", f"expected Twilio's connected and start messages, got {wire.shown(event)}")
        start = message["start"]
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise ProtocolError("invalid_config", f"start.mediaFormat must be an object, got {wire.shown(fmt)}")
        if fmt:
            rate = wire.integer(fmt.get("sampleRate", RATE), "start.mediaFormat.sampleRate", high=10**6)
            if fmt.get("encoding") != "audio/x-mulaw" or rate != RATE:
                raise ProtocolError("invalid_config", f"media format {wire.shown(fmt)} is not Twilio's audio/x-mulaw at 8000 Hz")
        announced = start.get("tracks") or ["inbound"]
        if not isinstance(announced, list):
            raise ProtocolError("invalid_config", f"start.tracks must be a list of track names, got {wire.shown(announced)}")
        tracks = tuple(t for t in TRACK_LABELS if t in announced)
        if not tracks:
            raise ProtocolError("invalid_config", f"no inbound or outbound track in {wire.shown(announced)}")
        given = start.get("customParameters") or {}
        parameters = {str(k): v for k, v in given.items() if isinstance(v, str)} if isinstance(given, dict) else {}
        call = start.get("callSid")
        options: dict[str, Any] = {k: v for k, v in parameters.items() if k in PARAMETER_OPTIONS}
        options |= {
            "sample_rate": RATE, "encoding": "mulaw", "channels": len(tracks),
            "channel_labels": ",".join(parameters.get(TRACK_LABELS[t], t) for t in tracks),
        }
        return replace(
            upgraded, in_band=False, options=options, api_key=parameters.get("api_key"),
            session_id=call if isinstance(call, str) and call else None, webhook_url=parameters.get("webhook_url"),
            wire=Call(tracks),
        )

    # -- the call ------------------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        message = wire.json_object(frame, "a Twilio message")
        event = message.get("event")
        if event == "media":
            return self._media(message.get("media"))
        if event == "stop":
            tail = self._aligner.flush()
            return [*([Audio(tail)] if tail else []), End()]
        if event == "dtmf":
            dtmf: dict[str, Any] = message["dtmf"] if isinstance(message.get("dtmf"), dict) else {}
            digit = dtmf.get("digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in DTMF_KEYS:  # for the call's followers, at the time it came
                track = str(dtmf.get("track", "inbound_track")).removesuffix("_track")
                channel = self._aligner.tracks.index(track) if track in self._aligner.tracks else 0
                return [Signal("dtmf", digit, channel)]
        return []  # connected, mark and events Twilio may add: nothing to transcribe

    def _media(self, media: Any) -> list[Command]:
        if not isinstance(media, dict):
            raise ProtocolError("invalid_message", "a media message needs its 'media' object")
        track = media.get("track", "inbound")
        if not isinstance(track, str) or track not in self._aligner.tracks:
            raise ProtocolError("invalid_message", f"media of track {wire.shown(track)}, which start did not announce")
        payload = media.get("payload", "")
        try:
            audio = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        except (binascii.Error, ValueError):
            audio = None
        if audio is None:
            raise ProtocolError("invalid_audio", "media: payload must be base64")
        ready = self._aligner.add(track, self._timestamp(media.get("timestamp", 0)), audio)
        return [Audio(ready)] if ready else []

    @staticmethod
    def _timestamp(value: Any) -> int:
        """Milliseconds since the stream began: Twilio sends a string of digits
        (read exactly: a float would make 1e30 + 20 equal 1e30), or a number."""
        problem = wire.Problem("invalid_audio", False)
        if isinstance(value, float):
            return int(wire.number(value, "media.timestamp", problem, low=0.0))
        return wire.integer(value, "media.timestamp", problem, low=0, high=10**40)

    def at_loss(self) -> list[Command]:
        tail = self._aligner.flush()
        return [Audio(tail)] if tail else []

    def frames(self, event: Event) -> list[Frame]:
        return []  # a one-way stream: Twilio reads nothing; subscribers and webhooks get the transcript

