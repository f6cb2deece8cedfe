"""Whole-file transcription: plan the chunks (``chunks``), decode them on the
engine, repair what Whisper skipped, join them in file time
(``transcription``)."""
