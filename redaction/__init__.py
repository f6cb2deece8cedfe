"""Sensitive numbers in a transcript: where they are, and what replaces them (contract section 10).

Pure text processing, no I/O and nothing of ``gateway``, like ``vad`` and
``speakers``: words (with their times) in, the spans to redact out. Being
built (issue 24): ``spoken`` reads the digits said in a run of words, the
speech-specific part no library does (Whisper writes spoken digits as
numerals with commas or hyphens, or spells them out); ``detect`` judges
each run by length, checksum (python-stdnum, phonenumbers) and the words
around it, and finds e-mail addresses.
"""

from redaction.detect import KINDS, Finding, find
from redaction.spoken import NumberRun, number_runs

__all__ = ["KINDS", "Finding", "NumberRun", "find", "number_runs"]
