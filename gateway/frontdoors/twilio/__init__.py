"""Twilio Media Streams in, ``GET /v0/telephony/twilio``."""

from .aligner import TrackAligner
from .dialect import TwilioDialect, TwilioSettings, twilio_signature

__all__ = ["TrackAligner", "TwilioDialect", "TwilioSettings", "twilio_signature"]
