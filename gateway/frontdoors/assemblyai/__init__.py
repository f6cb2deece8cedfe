"""AssemblyAI Universal-Streaming (v3), ``GET /v3/ws``."""

from .dialect import AssemblyAIDialect

__all__ = ["AssemblyAIDialect"]
