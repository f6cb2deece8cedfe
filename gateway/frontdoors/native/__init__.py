"""The gateway's own protocol, ``GET /v0/audio/stream`` (docs/protocol.md section 1)."""

from .dialect import NativeDialect, parse_message

__all__ = ["NativeDialect", "parse_message"]
