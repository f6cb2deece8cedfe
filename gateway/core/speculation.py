"""Speculative finals: when to start one before the endpoint, and when to redo it.

A final decode takes time (tiny.en about 0.2 s, base 0.45 s and more), so a
stream starts it when a pause begins instead of at the endpoint
``endpoint_ms`` later; if speech resumes, the speculation is withdrawn.
These are the rules, as pure functions of what the transcriber knows.
"""

from __future__ import annotations

import numpy as np

from gateway.inference.records import Decoding

from .buffer import frame_rms
from .settings import StreamSettings

SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")


def speculation_wait(
    hypothesis: list[str], settings: StreamSettings, endpoint_ms: int, relieve: bool, final_decode_ms: int
) -> int:
    """Trailing silence (ms) after which the final starts speculatively.

    ``hypothesis``: the latest partial's words; ``relieve``: the engine is
    under pressure; ``final_decode_ms``: how long a final decode takes now.
    """
    s = settings
    ends_sentence = bool(hypothesis) and hypothesis[-1].endswith(SENTENCE_ENDS)
    wait = s.speculate_after_ms if ends_sentence else s.speculate_mid_sentence_ms
    # Long utterances end at a shorter pause (see SegmenterConfig).
    wait = min(wait, max(s.speculate_after_ms, endpoint_ms - 100))
    if relieve or not ends_sentence:
        return wait
    # With CPU to spare, start early enough for the decode to be done at
    # the endpoint: a slow model (base: 0.45 s and more) starts at once.
    # Only after a finished sentence: mid-sentence pauses are where speech
    # resumes, and speculating into every one of them cost base a third of
    # its capacity (a "speculation storm").
    in_time = endpoint_ms - final_decode_ms - 50
    return max(s.speculate_earliest_ms, min(wait, in_time))


def tail_is_quiet(speech: np.ndarray, tail: np.ndarray) -> bool:
    """Whether the audio after a speculation, which the VAD called
    non-speech, is quiet (20 dB under the utterance's speech level).

    If not, it may hold words the VAD missed but Whisper would hear, or
    only a breath: ``missed_words`` decides once the speculative decode is in.
    """
    if tail.size < 480:
        return True
    level = np.percentile(frame_rms(speech), 90) if speech.size >= 480 else 0.0
    return float(frame_rms(tail).max()) < 0.1 * level


def missed_words(decoding: Decoding | None) -> bool:
    """A speculative final whose last word runs into the end of its audio
    was cut mid-speech: the words went on past it.

    Breaths after a sentence are loud but hold no words; measured at 8
    tiny.en streams, re-decoding on loudness alone redid one final in four.
    """
    d = decoding
    if d is None or not d.is_speech or not d.words:
        return False
    return d.words[-1].end >= d.duration - 0.15
