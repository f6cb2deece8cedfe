"""OpenAI Realtime transcription sessions, ``GET /v1/realtime?intent=transcription``."""

from .dialect import OpenAIRealtimeDialect

__all__ = ["OpenAIRealtimeDialect"]
