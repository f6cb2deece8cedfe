"""Server-side tuning of live streams: one typed object with measured defaults."""

from __future__ import annotations

from dataclasses import dataclass

from .options import MAX_PROMPT_CHARS
from .signals import SignalLimits


@dataclass(frozen=True)
class StreamSettings:
    """Server-side tuning of live streams (not client options)."""

    # New speech between partials. 300 ms against 400: one stream's caption
    # moved every 0.31 s instead of 0.42 s (bench.captions), with the same
    # streamed WER (11.01 %, bench.streaming) and no later finals at 8 or 18
    # streams, where relief_pressure stretches the interval anyway.
    partial_interval_ms: int = 300
    # The least encoder window of a partial (shorter audio is padded up to
    # it): the encoder's cost grows with the window, and a partial is
    # greedy and disposable (bench.captions measures the trade).
    partial_window_s: float = 10.0
    # A word is stable once a hypothesis over at least this much less audio
    # had it too. Against the previous partial (then 400 ms earlier) wrong stable
    # words cost tiny.en 2.6 WER points on the benchmark corpus; a 1 s lag
    # 1.5, 2 s 1.1, 3 s 1.5 (streamed minus offline WER, 4 streams).
    stable_lag_ms: int = 2000
    first_partial_ms: int = 500  # utterance audio (pre-roll included) before the first partial
    speculative_final: bool = True
    # A final starts speculatively after this much trailing silence when the
    # last partial ends a sentence (". ? !"), else after the longer wait: at
    # 8 tiny.en streams a flat 200 ms wasted about one speculation per final.
    speculate_after_ms: int = 150
    speculate_mid_sentence_ms: int = 300
    speculate_earliest_ms: int = 60
    partial_beam_size: int = 1
    final_beam_size: int = 5
    # Whisper's fallback ladder, shortened: each step is a full decode, and a
    # live final that went through all six took over a second.
    final_temperatures: tuple[float, ...] = (0.0, 0.4, 0.8)
    context_words: int = 60  # previous finals passed as prompt
    max_prompt_chars: int = MAX_PROMPT_CHARS  # a longer client prompt is refused (invalid_config)
    max_pending_finals: int = 2  # backpressure: stop reading audio beyond this
    # A multilingual model's language, detected on a partial, holds for the
    # rest of the utterance's partials only when the detection is this sure
    # over this much audio: on the first 0.5 s of an English clip base said
    # Spanish, and every later partial came out in Spanish.
    language_min_probability: float = 0.8
    language_min_audio_s: float = 1.5
    # Engine pressure (see EngineLoad.pressure) above which a stream asks for
    # partials three times less often, so that finals keep the CPU.
    relief_pressure: float = 0.8
    signals: SignalLimits = SignalLimits()  # DTMF keys a session takes (gateway.core.signals)
