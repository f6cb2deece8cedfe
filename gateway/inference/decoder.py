"""Whisper decoding of one piece of audio (an utterance, or a chunk of a file).

faster-whisper's ``transcribe`` always runs the encoder on a 30 s window, so a
2 s partial costs as much as a 30 s file. Here the encoder sees only the audio
plus ``padding_s`` of silence (CTranslate2 accepts fewer than 3000 mel frames),
which is several times cheaper. A short window can make the decoder loop, so
every result passes the guards of ``gateway.inference.guards`` (token budget
tied to the duration, repetition and compression checks) and a result that
looks wrong is decoded again on the full 30 s window, then with temperature
fallback as Whisper does.

A result with a high no-speech probability and a low average log-probability,
or a stock phrase said with a high no-speech probability, is judged not
speech and comes back with ``is_speech=False``.

This module does model work only; scheduling belongs to
``gateway.inference.engine``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .guards import HALLUCINATION_NO_SPEECH, compression_ratio, is_repetition_loop, is_stock_phrase, trim_repetition
from .records import DecodedSegment, DecodeOptions, Decoding, Word

SAMPLE_RATE = 16000
HOP = 160  # samples per mel frame
WINDOW_FRAMES = 3000  # Whisper's 30 s window
MAX_TOKENS = 448  # Whisper's decoder context
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    window: str
    truncated: bool
    looping: bool = field(default=False)

    def is_silence(self, o: DecodeOptions) -> bool:
        return (
            self.no_speech_prob > o.no_speech_threshold
            and self.avg_logprob < o.silence_log_prob_threshold
        )

    def looks_wrong(self, o: DecodeOptions, duration: float) -> bool:
        # A word or two ("Um.", "Word.") has a low average log-probability by
        # nature; sampling at higher temperatures does not help them and cost
        # live finals over a second, so below 2 s only a broken decode counts.
        unsure = self.avg_logprob < o.log_prob_threshold and duration >= 2.0
        return self.truncated or self.looping or self.compression_ratio > o.compression_ratio_threshold or unsure


class WhisperDecoder:
    """Decodes audio of at most 30 s with one loaded faster-whisper model."""

    def __init__(self, model, padding_s: float = 1.0, tokens_per_second: float = 12.0):
        self.model = model  # faster_whisper.WhisperModel
        self.padding_samples = int(padding_s * SAMPLE_RATE)
        self.tokens_per_second = tokens_per_second
        self.multilingual = model.model.is_multilingual
        self._tokenizers: dict[tuple[str, str], object] = {}

    # -- public -----------------------------------------------------------
    def decode(self, audio: np.ndarray, options: DecodeOptions) -> Decoding:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.shape[0] > WINDOW_FRAMES * HOP:
            raise ValueError("audio longer than 30 s: split it before decoding")
        duration = audio.shape[0] / SAMPLE_RATE
        content_frames = max(1, audio.shape[0] // HOP)

        windows = ["short", "full"] if self._short_window_fits(audio, options) else ["full"]
        encoded: dict[str, object] = {}
        language, language_probability = options.language, 1.0
        attempts: list[_Attempt] = []
        chosen: _Attempt | None = None

        plan = [(w, options.temperatures[0]) for w in windows]
        plan += [("full", t) for t in options.temperatures[1:]]
        if not options.fallback:
            plan = plan[:1]
        for window, temperature in plan:
            if window not in encoded:
                encoded[window] = self._encode(audio, window, options.min_window_s)
            if language is None:
                language, language_probability = self._detect_language(encoded[window])
            tokenizer = self.tokenizer(language, options.task)
            attempt = self._generate(
                encoded[window], tokenizer, options, temperature, window, duration
            )
            attempts.append(attempt)
            if attempt.is_silence(options) or not attempt.looks_wrong(options, duration):
                chosen = attempt
                break
        if chosen is None:
            sane = [a for a in attempts if not (a.looping or a.truncated)]
            chosen = max(sane or attempts, key=lambda a: a.avg_logprob)

        assert language is not None  # detected on the first attempt
        tokenizer = self.tokenizer(language, options.task)
        if not options.fallback and chosen.looks_wrong(options, duration) and not chosen.is_silence(options):
            text = " ".join(trim_repetition(tokenizer.decode(chosen.tokens).split()))
            chosen.tokens = tokenizer.encode(" " + text) if text else []
        segments = self._segments(chosen, tokenizer, options, content_frames, duration)
        if options.word_timestamps and segments:
            segments = self._add_words(segments, tokenizer, encoded[chosen.window], content_frames)
        text = "".join(s["text"] for s in segments)
        is_speech = not (
            chosen.is_silence(options)
            or not any(c.isalnum() for c in text)
            or (chosen.no_speech_prob > HALLUCINATION_NO_SPEECH and is_stock_phrase(text))
            or (chosen.no_speech_prob > options.no_speech_threshold and chosen.looks_wrong(options, duration))
        )
        return Decoding(
            segments=self.to_segments(segments),
            language=language,
            language_probability=language_probability,
            avg_logprob=chosen.avg_logprob,
            compression_ratio=chosen.compression_ratio,
            no_speech_prob=chosen.no_speech_prob,
            temperature=chosen.temperature,
            is_speech=is_speech,
            window=chosen.window,
            duration=duration,
            attempts=len(attempts),
        )

    # -- encoder ----------------------------------------------------------
    def _short_window_fits(self, audio: np.ndarray, options: DecodeOptions) -> bool:
        return options.short_window and (
            audio.shape[0] + self.padding_samples < WINDOW_FRAMES * HOP
        )

    def _encode(self, audio: np.ndarray, window: str, min_window_s: float):
        fe = self.model.feature_extractor
        if window == "short":
            silence = max(self.padding_samples, int(min_window_s * SAMPLE_RATE) - audio.shape[0])
            padded = np.concatenate([audio, np.zeros(silence, np.float32)])
            features = fe(padded, padding=0)
            frames = features.shape[-1] - features.shape[-1] % 2  # conv stride 2
            features = features[:, :frames]
        else:
            features = fe(audio)
            if features.shape[-1] < WINDOW_FRAMES:
                features = np.pad(features, ((0, 0), (0, WINDOW_FRAMES - features.shape[-1])))
            features = features[:, :WINDOW_FRAMES]
        return self.model.encode(features)

    def _detect_language(self, encoder_output) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        token, probability = self.model.model.detect_language(encoder_output)[0][0]
        return token[2:-2], probability

    def text_tokens(self, text: str, language: str, task: str) -> tuple[int, ...]:
        """Token ids of ``text`` (as a segment's ``tokens``: no special tokens)."""
        return tuple(self.tokenizer(language, task).encode(text)) if text else ()

    def tokenizer(self, language: str, task: str) -> Any:
        """faster-whisper's tokenizer for a language and task (cached)."""
        from faster_whisper.tokenizer import Tokenizer

        key = (language, task)
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(
                self.model.hf_tokenizer,
                self.multilingual,
                task=task if self.multilingual else "transcribe",
                language=language if self.multilingual else "en",
            )
        return self._tokenizers[key]

    # -- decoder ----------------------------------------------------------
    def _prompt(self, tokenizer, options: DecodeOptions) -> tuple[list[int], int]:
        prompt: list[int] = []
        if options.prompt and options.prompt.strip():
            context = tokenizer.encode(" " + options.prompt.strip())
            prompt = [tokenizer.sot_prev, *context[-(MAX_TOKENS // 2 - 1) :]]
        prompt += tokenizer.sot_sequence
        if not options.segment_timestamps:
            prompt.append(tokenizer.no_timestamps)
        prefix: list[int] = []
        if options.prefix and options.prefix.strip():
            prefix = tokenizer.encode(" " + options.prefix.strip())[: MAX_TOKENS // 2 - 1]
            if options.segment_timestamps:
                prompt.append(tokenizer.timestamp_begin)
        return prompt + prefix, len(prefix)

    def _generate(self, encoder_output, tokenizer, options, temperature, window, duration) -> _Attempt:
        prompt, prefix_len = self._prompt(tokenizer, options)
        budget = int(math.ceil(duration * self.tokens_per_second)) + 16
        if options.segment_timestamps:
            budget += int(duration) + 4  # timestamp pairs
        max_length = min(MAX_TOKENS, len(prompt) + budget)
        if temperature > 0:
            kwargs = dict(beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=temperature)
        else:
            kwargs = dict(beam_size=options.beam_size)
        result = self.model.model.generate(
            encoder_output,
            [prompt],
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed(tokenizer, options),
            max_initial_timestamp_index=50,
            **kwargs,
        )[0]
        # CTranslate2 returns the forced prefix as part of the sequence.
        tokens = list(result.sequences_ids[0])
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode(tokens).strip()
        return _Attempt(
            tokens=tokens,
            avg_logprob=avg_logprob,
            compression_ratio=compression_ratio(text),
            no_speech_prob=result.no_speech_prob,
            temperature=temperature,
            window=window,
            truncated=len(prompt) - prefix_len + len(tokens) >= max_length,
            # Only a short window loops this way; on the full window Whisper's
            # own compression-ratio check applies, as in faster-whisper.
            looping=window == "short" and is_repetition_loop(text.split()),
        )

    @staticmethod
    def _suppressed(tokenizer, options: DecodeOptions) -> list[int]:
        from faster_whisper.transcribe import get_suppressed_tokens

        tokens = list(get_suppressed_tokens(tokenizer, [-1]))
        if options.suppress_lone_space:
            tokens += tokenizer.encode(" ")
        return tokens

    # -- results ----------------------------------------------------------
    def _segments(self, attempt, tokenizer, options, content_frames, duration) -> list[dict]:
        ts = tokenizer.timestamp_begin
        tokens = attempt.tokens
        if not options.segment_timestamps:
            pieces = [dict(start=0.0, end=duration, tokens=[t for t in tokens if t < tokenizer.eot])]
        else:
            pieces = []
            current: dict | None = None
            for t in tokens:
                if t >= ts:
                    time = min((t - ts) * 0.02, duration)
                    if current is None:
                        current = dict(start=time, end=time, tokens=[])
                    else:
                        current["end"] = time
                        if current["tokens"]:
                            pieces.append(current)
                        current = None
                elif t < tokenizer.eot:
                    if current is None:  # text without an opening timestamp
                        start = pieces[-1]["end"] if pieces else 0.0
                        current = dict(start=start, end=start, tokens=[])
                    current["tokens"].append(t)
            if current is not None and current["tokens"]:
                current["end"] = duration  # unfinished: runs to the end of the chunk
                pieces.append(current)
        out = []
        for p in pieces:
            text = tokenizer.decode(p["tokens"])
            if text.strip():
                out.append(dict(seek=0, start=p["start"], end=max(p["end"], p["start"]), tokens=p["tokens"], text=text))
        return out

    def _add_words(self, segments, tokenizer, encoder_output, content_frames) -> list[dict]:
        self.model.add_word_timestamps(
            [segments],
            tokenizer,
            encoder_output,
            content_frames,
            PREPEND_PUNCTUATIONS,
            APPEND_PUNCTUATIONS,
            last_speech_timestamp=0.0,
        )
        limit = content_frames * HOP / SAMPLE_RATE
        for s in segments:
            s["words"] = [
                Word(
                    word=w["word"],
                    start=round(min(w["start"], limit), 3),
                    end=round(min(max(w["end"], w["start"]), limit), 3),
                    probability=round(float(w["probability"]), 4),
                )
                for w in s.get("words", [])
            ]
            if s["words"]:
                s["start"], s["end"] = s["words"][0].start, s["words"][-1].end
        return segments

    @staticmethod
    def to_segments(raw: list[dict]) -> tuple[DecodedSegment, ...]:
        return tuple(
            DecodedSegment(
                start=round(float(s["start"]), 3),
                end=round(float(s["end"]), 3),
                text=s["text"],
                tokens=tuple(s["tokens"]),
                words=tuple(s.get("words", ())),
            )
            for s in raw
        )
