"""Deepgram live streaming, ``GET /v1/listen``."""

from .dialect import DeepgramDialect

__all__ = ["DeepgramDialect"]
