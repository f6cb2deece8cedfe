"""Twilio Media Streams in, ``GET /v0/telephony/twilio``."""

from .aligner import TrackAligner
from .dialect import TwilioDialect, twilio_signature

__all__ = ["TrackAligner", "TwilioDialect", "twilio_signature"]
