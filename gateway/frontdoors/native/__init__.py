"""The gateway's own protocol, ``GET /v0/audio/stream`` (README "Streaming protocol")."""

from .dialect import NativeDialect, parse_message

__all__ = ["NativeDialect", "parse_message"]
