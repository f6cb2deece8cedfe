"""Twilio Media Streams in, ``GET /v0/telephony/twilio`` (README "Telephony").

Twilio (and the Twilio-compatible Telnyx, SignalWire and Fonoster streams)
opens the socket and sends JSON: ``connected``, ``start`` (the call, its
tracks and the ``<Parameter>``s of the TwiML), ``media`` (base64 G.711
mu-law at 8 kHz, per track), ``dtmf``, ``mark``, ``stop``. Its ``<Stream>``
URL carries no query, so the session's options come in-band, in ``start``:
this door opens in-band (``opens_in_band``). The stream is one-way: nothing
is sent back; the transcript goes to the session's subscribers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.core.commands import Audio, Command, End, Signal
from gateway.core.errors import ProtocolError
from gateway.core.events import Event
from gateway.core.options import OPTION_KEYS

from ..dialect import Dialect, Frame, Upgrade
from .aligner import RATE, TrackAligner

log = logging.getLogger(__name__)

# Options a <Parameter> may set; the audio's format is Twilio's.
PARAMETER_OPTIONS = tuple(k for k in OPTION_KEYS if k not in ("sample_rate", "encoding", "channels", "channel_labels"))
TRACK_LABELS = {"inbound": "inbound_label", "outbound": "outbound_label"}


def twilio_signature(auth_token: str, url: str) -> str:
    """Twilio's X-Twilio-Signature of a request without a body: base64 HMAC-SHA1 of its URL."""
    return base64.b64encode(hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()).decode()


class TwilioDialect(Dialect):
    name = "twilio"
    opens_in_band = True
    auth_token: ClassVar[str | None] = None  # --twilio-auth-token: check X-Twilio-Signature
    public_url: ClassVar[str | None] = None  # --public-url: the URL Twilio signed is built from it

    @classmethod
    def configured(cls, auth_token: str | None, public_url: str | None) -> type[TwilioDialect]:
        if auth_token and not public_url:
            raise ValueError("--twilio-auth-token needs --public-url: Twilio signs the URL it connects to")
        return type(cls.__name__, (cls,), {"auth_token": auth_token or None, "public_url": public_url or None})

    def __init__(self, upgrade: Upgrade):
        super().__init__(upgrade)
        self._signed = False
        self._start: dict[str, Any] = {}
        self._parameters: dict[str, str] = {}
        self._aligner: TrackAligner | None = None

    # -- opening --------------------------------------------------------------
    def upgrade_refusal(self) -> tuple[int, dict[str, Any]] | None:
        if not self.auth_token:
            return None
        base = (self.public_url or "").rstrip("/")
        url = base + self.upgrade.path
        if self.upgrade.query:
            url += "?" + "&".join(f"{k}={v}" for k, v in self.upgrade.query)
        given = self.upgrade.header("x-twilio-signature") or ""
        if not hmac.compare_digest(twilio_signature(self.auth_token, url), given):
            message = "X-Twilio-Signature does not match this server's Twilio auth token and public URL"
            return 403, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "bad_signature"}}
        self._signed = True
        return None

    def authorized_at_upgrade(self) -> bool:
        return self._signed  # signed with the account's token: Twilio itself

    def open_with(self, frame: Frame) -> bool:
        """Messages before the audio: ``connected``, then ``start`` (True: ready)."""
        message = self._json(frame)
        event = message.get("event")
        if event == "connected":
            return False
        if event != "start" or not isinstance(message.get("start"), dict):
            raise ProtocolError("invalid_message", f"expected Twilio's connected and start messages, got {event!r}")
        start = message["start"]
        fmt = start.get("mediaFormat") or {}
        if fmt and (fmt.get("encoding") != "audio/x-mulaw" or int(fmt.get("sampleRate", RATE)) != RATE):
            raise ProtocolError("invalid_config", f"media format {fmt} is not Twilio's audio/x-mulaw at 8000 Hz")
        tracks = [t for t in start.get("tracks") or ["inbound"] if t in TRACK_LABELS]
        if not tracks:
            raise ProtocolError("invalid_config", f"no inbound or outbound track in {start.get('tracks')!r}")
        parameters = start.get("customParameters") or {}
        self._parameters = {str(k): str(v) for k, v in parameters.items()} if isinstance(parameters, dict) else {}
        self._start = start
        self._aligner = TrackAligner(tracks)
        return True

    def api_key(self) -> str | None:
        return self._parameters.get("api_key")

    def session_id(self) -> str | None:
        call = self._start.get("callSid")
        return str(call) if call else None

    def webhook_url(self) -> str | None:
        return self._parameters.get("webhook_url")

    def options(self) -> Mapping[str, Any]:
        assert self._aligner is not None, "options come from start"
        tracks = self._aligner.tracks
        options: dict[str, Any] = {k: v for k, v in self._parameters.items() if k in PARAMETER_OPTIONS}
        options |= {
            "sample_rate": RATE, "encoding": "mulaw", "channels": len(tracks),
            "channel_labels": ",".join(self._parameters.get(TRACK_LABELS[t], t) for t in tracks),
        }
        return options

    # -- the call ------------------------------------------------------------------
    def commands(self, frame: Frame) -> list[Command]:
        message = self._json(frame)
        event = message.get("event")
        if event == "media":
            return self._media(message.get("media"))
        if event == "stop":
            assert self._aligner is not None
            tail = self._aligner.flush()
            return [*([Audio(tail)] if tail else []), End()]
        if event == "dtmf":
            dtmf: dict[str, Any] = message["dtmf"] if isinstance(message.get("dtmf"), dict) else {}
            digit = str(dtmf.get("digit", ""))[:1]
            if digit:  # for the call's followers, at the time it came
                track = str(dtmf.get("track", "inbound_track")).removesuffix("_track")
                channel = self._aligner.tracks.index(track) if self._aligner and track in self._aligner.tracks else 0
                return [Signal("dtmf", digit, channel)]
        return []  # connected, mark and events Twilio may add: nothing to transcribe

    def _media(self, media: Any) -> list[Command]:
        assert self._aligner is not None
        if not isinstance(media, dict):
            raise ProtocolError("invalid_message", "a media message needs its 'media' object")
        track = media.get("track", "inbound")
        if track not in self._aligner.tracks:
            raise ProtocolError("invalid_message", f"media of track {track!r}, which start did not announce")
        try:
            payload = base64.b64decode(media.get("payload", ""), validate=True)
            timestamp = int(media.get("timestamp", 0))
        except (binascii.Error, ValueError, TypeError):
            raise ProtocolError("invalid_audio", "media: payload must be base64 and timestamp a number of ms") from None
        if timestamp < 0:
            raise ProtocolError("invalid_audio", "media: timestamp must not be negative")
        ready = self._aligner.add(track, timestamp, payload)
        return [Audio(ready)] if ready else []

    def at_loss(self) -> list[Command]:
        tail = self._aligner.flush() if self._aligner is not None else b""
        return [Audio(tail)] if tail else []

    def frames(self, event: Event) -> list[Frame]:
        return []  # a one-way stream: Twilio reads nothing; subscribers and webhooks get the transcript

    @staticmethod
    def _json(frame: Frame) -> dict[str, Any]:
        try:
            message = json.loads(frame)
        except (ValueError, RecursionError):
            raise ProtocolError("invalid_message", "Twilio messages are JSON text") from None
        if not isinstance(message, dict):
            raise ProtocolError("invalid_message", "Twilio messages are JSON objects")
        return message
