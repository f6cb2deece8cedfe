"""stt-gateway: a streaming real-time transcription gateway on faster-whisper."""

__version__ = "0.1.0"
