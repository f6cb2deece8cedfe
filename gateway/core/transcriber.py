"""The decode policy of one audio track (a channel): utterances in, partials and finals out.

The VAD (``vad.Segmenter``) cuts the track into utterances (see
``gateway.core.utterance`` for their states). For each one:

- every ``partial_interval_ms`` of new speech a greedy partial decode is
  asked for, with the stable prefix forced; each result yields a
  ``transcript.partial`` whose ``stable_text`` is the longest word prefix
  it shares with a hypothesis over at least ``stable_lag_ms`` less audio;
- when the trailing silence reaches the speculation wait (longer when the
  last partial did not end a sentence; see ``speculation``) the final
  starts speculatively; if speech resumes it is withdrawn, otherwise it is
  the final when the endpoint comes ``endpoint_ms`` after the speech;
- the final is decoded without the stable prefix, and again with it only
  if it contradicts it; finals are emitted in segment order, exactly once
  per utterance, and their text is the prompt of the next utterance.

With ``diarize``, who is speaking is embedded as the speech goes by and
each final carries its speaker (``gateway.core.voices``). With ``redact``,
finals and partials are redacted before they leave (``gateway.core.redact``):
the decodes see the words as said (the next utterance's prompt too), nothing
outside the gateway does.

Times are sample counts at 16 kHz from the first sample of the track.
Decode work goes out through the session's ``Outbox``; results come back
through ``decoded``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from gateway.audio.resample import SAMPLE_RATE
from gateway.inference.jobs import DecodeJob, EmbedJob, Priority, VoiceWindows
from gateway.inference.records import DecodeOptions, Decoding
from vad.segmenter import Classifier, Segmenter, SegmenterConfig, SegmentEvent, SpeechEnd, SpeechStart

from .buffer import SampleBuffer
from .commands import DecodeRequest
from .events import ErrorEvent, SpeechStarted, TranscriptFinal, TranscriptPartial
from .options import SessionOptions
from .outbox import Outbox
from .records import make_segment
from .redact import TrackRedaction
from .settings import StreamSettings
from .speculation import missed_words, speculation_wait, tail_is_quiet
from .utterance import Utterance, UtteranceState
from .voices import TrackVoices

log = logging.getLogger(__name__)

ClassifierFactory = Callable[[SegmenterConfig], Classifier]  # the VAD's frame judge, for tests


class Transcriber:
    def __init__(
        self,
        options: SessionOptions,
        settings: StreamSettings,
        model_id: str,
        stream: str,
        outbox: Outbox,
        segment_ids: Iterator[int],
        classifier_factory: ClassifierFactory | None = None,
        channel: int = 0,
        label: str = "0",
    ):
        self.options = options
        self.settings = settings
        self.model_id = model_id
        self.channel, self.label = channel, label
        self._t0 = options.time_offset  # where this stream's time starts (a resumed stream)
        self._seek0 = int(round(options.time_offset * SAMPLE_RATE))
        self._stream = stream  # the engine keeps one pending partial per stream (per channel)
        self._outbox = outbox
        self._segment_ids = segment_ids
        config = SegmenterConfig(
            aggressiveness=options.vad_aggressiveness,
            endpoint_ms=options.endpoint_ms,
            max_segment_s=options.max_segment_s,
            pre_roll_ms=options.pre_roll_ms,
        )
        self._segmenter = Segmenter(config, classifier_factory(config) if classifier_factory else None)
        self._audio = SampleBuffer()
        self._utterances: deque[Utterance] = deque()  # not yet finalised, in order
        self._flushes: deque[int] = deque()  # per flush not yet done: the last segment id it ended (-1: none)
        self.flushes_done: deque[int] = deque()  # the same, once done: for the session to report
        self.finals: list[str] = []  # the text of every final, in order, as sent (redacted)
        self._said: list[str] = []  # the same as decoded: the next decodes' prompt, never sent
        self.final_starts: list[float] = []  # where each began (seconds)
        self.language: str | None = None  # of the latest final with speech
        self.utterances = 0  # started so far
        self.closing = False  # no more audio will come
        self._speech_ended = 0  # absolute sample where the last utterance ended
        self._relieve = False  # the engine is under pressure
        self._final_decode_ms = 0
        self.voices = TrackVoices(label if options.channels > 1 else None) if options.diarize else None
        self.redaction = TrackRedaction(options.redact) if options.redact else None

    # -- inputs -------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> None:
        """New audio at 16 kHz."""
        if samples.size == 0:
            return
        self._audio.append(samples)
        self._on_segmenter(self._segmenter.feed(samples))
        self._advance()

    def flush(self) -> None:
        """End the utterance in progress now; ``Flushed`` follows its final."""
        self._on_segmenter(self._segmenter.flush())
        self._flushes.append(self._utterances[-1].segment_id if self._utterances else -1)
        self._advance()

    def close(self) -> None:
        """No more audio: end the utterance in progress, finalise everything."""
        self._on_segmenter(self._segmenter.flush())
        self.closing = True
        self._advance()

    def set_load(self, pressure: float, final_decode_s: float) -> None:
        self._relieve = pressure >= self.settings.relief_pressure
        self._final_decode_ms = int(final_decode_s * 1000)

    def embedded(self, request_id: int, windows: VoiceWindows | None) -> None:
        """Result of an embed request (None: it failed or was cancelled)."""
        if self.voices is not None:
            self.voices.embedded(request_id, windows)
        self._advance()

    def decoded(self, request_id: int, decoding: Decoding | None, error: str | None = None) -> None:
        """Result of a request; ``decoding`` None with no error: it was cancelled."""
        if self.voices is not None and self.voices.owns(request_id):
            self.embedded(request_id, None)  # who is speaking is a side path: the final goes on without it
            return
        for u in self._utterances:
            if u.partial_in_flight == request_id:
                u.partial_in_flight = None
                if decoding is not None:
                    self._on_partial(u, decoding)
                break
            if u.final_request is not None and u.final_request.id == request_id:
                if decoding is None and error is None:  # cancelled: ask again
                    self._withdraw_final(u)
                elif error is not None:
                    u.failed = error
                    self._outbox.emit(ErrorEvent("decode_failed", f"segment {u.segment_id}: {error}", segment_id=u.segment_id))
                elif decoding is not None and self._breaks_promise(u, decoding):
                    log.debug("segment %d: final contradicts stable_text, decoding again held to it%s", u.segment_id,
                              "" if self.redaction else f": {decoding.text!r} against {u.stable_text!r}")
                    self._withdraw_final(u)
                    u.force_prefix = True
                else:
                    u.decoding = decoding
                break
        self._advance()

    # -- state --------------------------------------------------------------
    @property
    def pending_finals(self) -> int:
        """Utterances that ended but whose final is not sent yet."""
        return sum(u.state is UtteranceState.FINAL_PENDING for u in self._utterances)

    @property
    def last_speech_s(self) -> float:
        """Where speech was last heard, in audio seconds: the end of the last
        utterance, or the audio so far while one is open."""
        heard = self._segmenter.samples_fed if self._segmenter.in_speech else self._speech_ended
        return heard / SAMPLE_RATE

    def owns(self, request_id: int) -> bool:
        """Whether a decode request in flight is one of this track's."""
        return any(
            u.partial_in_flight == request_id or (u.final_request is not None and u.final_request.id == request_id)
            for u in self._utterances
        ) or (self.voices is not None and self.voices.owns(request_id))

    @property
    def idle(self) -> bool:
        """Every utterance finalised."""
        return not self._utterances

    # -- the VAD's events -----------------------------------------------------
    def _on_segmenter(self, events: Sequence[SegmentEvent]) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                started = Utterance(next(self._segment_ids), event.start, language=self.options.language)
                started.partial_requested_at = event.start
                self.utterances += 1
                self._utterances.append(started)
                if self.voices is not None:
                    self.voices.started(started.segment_id, event.onset)
                self._outbox.emit(SpeechStarted(started.segment_id, self._t0 + event.start / SAMPLE_RATE, self.channel, self.label))
            elif isinstance(event, SpeechEnd):
                u = self._open_utterance()
                if u is None:
                    continue
                u.end, u.end_reason = event.end, event.reason
                self._speech_ended = event.end
                if self.voices is not None:
                    self.voices.ended(u.segment_id, event.speech_end)
                u.move("ended")
                u.speculation_silence_start = None  # the endpoint confirms it
                if u.final_request is not None:
                    if u.final_request.audio_end > u.end:
                        self._cancel_final(u)  # a speculation ran past a max-length cut
                    else:
                        audio_end = u.final_request.audio_end  # where the speculation stopped listening
                        tail = self._audio.slice(audio_end, u.end)
                        u.verify_tail = not tail_is_quiet(self._audio.slice(u.start, audio_end), tail)
                        if u.decoding is None:
                            self._promote_embeddings(u)
                            self._outbox.promote(u.final_request.id)  # it is a final now

    def _open_utterance(self) -> Utterance | None:
        if self._utterances and self._utterances[-1].is_open:
            return self._utterances[-1]
        return None

    def _advance(self) -> None:
        """After any input: send the finals that are ready, then ask for the
        decodes the state calls for (finals first, so context is current)."""
        self._emit_ready_finals()
        u = self._open_utterance()
        if u is not None and not self.closing:
            self._check_speculation(u)
            self._maybe_request_partial(u)
            self._maybe_request_embedding(u)
        for u in self._utterances:
            if u.final_request is None and u.decoding is None and u.failed is None:
                if not self._ready_for_final(u):
                    break  # finals are chained: the next needs this one's text
                self._request_final(u)
        keep = min([u.start for u in self._utterances], default=self._audio.end)
        margin = (self.options.pre_roll_ms + 1000) * SAMPLE_RATE // 1000
        self._audio.discard_before(min(keep, self._audio.end - margin))

    # -- speculation ------------------------------------------------------------
    def _ready_for_final(self, u: Utterance) -> bool:
        previous_pending = any(
            p.decoding is None and p.failed is None for p in self._utterances if p.segment_id < u.segment_id
        )
        if previous_pending:
            return False
        if not u.is_open:
            return True
        # Speculate: the speech may have ended; the endpoint will tell.
        return (
            self.settings.speculative_final
            and not self.closing
            and self._segmenter.trailing_silence_ms
            >= speculation_wait(
                u.hypothesis, self.settings, self._segmenter.endpoint_ms, self._relieve, self._final_decode_ms
            )
        )

    def _check_speculation(self, u: Utterance) -> None:
        if u.speculation_silence_start is None:
            return
        if self._segmenter.speech_end != u.speculation_silence_start:
            log.debug("segment %d: speculation void, speech resumed", u.segment_id)
            self._cancel_final(u)  # speech resumed: the speculation is void

    def _cancel_final(self, u: Utterance) -> None:
        """Drop the final asked for (and its result): it is asked for again."""
        if u.final_request is not None:
            self._outbox.cancel(u.final_request.id)
        u.decoding = None
        self._withdraw_final(u)

    @staticmethod
    def _withdraw_final(u: Utterance) -> None:
        u.final_request = None
        u.speculation_silence_start = None
        if u.state is UtteranceState.SPECULATING:
            u.move("withdrawn")

    @staticmethod
    def _breaks_promise(u: Utterance, decoding: Decoding) -> bool:
        """Whether a final decoded freely drops words partials called stable."""
        if not u.stable or u.force_prefix or not decoding.is_speech:
            return False
        return not u.keeps_stable(decoding.text.split())

    # -- partials ---------------------------------------------------------------
    def _maybe_request_partial(self, u: Utterance) -> None:
        s = self.settings
        if not self.options.interim_results or u.partial_in_flight is not None or u.final_request is not None:
            return
        now = self._audio.end
        if self._segmenter.trailing_silence_ms >= s.partial_interval_ms:
            return  # nothing new is being said
        if now - u.start < s.first_partial_ms * SAMPLE_RATE // 1000:
            return
        interval = s.partial_interval_ms * (3 if self._relieve else 1)
        if u.partials_sent and now - u.partial_requested_at < interval * SAMPLE_RATE // 1000:
            return
        options = DecodeOptions(
            language=u.language,
            task=self.options.task,
            prompt=self._context(),
            prefix=u.stable_text or None,
            beam_size=s.partial_beam_size,
            temperatures=(0.0,),
            word_timestamps=False,
            fallback=False,
            suppress_lone_space=True,
            min_window_s=s.partial_window_s,
        )
        request = self._request("partial", u, now, options, Priority.PARTIAL)
        u.partial_in_flight = request.id
        u.partial_requested_at = now
        u.partials_sent += 1

    def _on_partial(self, u: Utterance, decoding: Decoding) -> None:
        if u.final_request is not None or not decoding.is_speech:
            return  # the final is on its way; its prefix must not move
        s = self.settings
        if u.language is None and (
            decoding.language_probability >= s.language_min_probability and decoding.duration >= s.language_min_audio_s
        ):
            u.language = decoding.language
        words = decoding.text.split()
        if not u.keeps_stable(words):
            words = u.stable + words[len(u.stable) :]
        end = u.start + int(round(decoding.duration * SAMPLE_RATE))
        u.agree(end, words, lag=s.stable_lag_ms * SAMPLE_RATE // 1000)
        text, stable_text = " ".join(words), u.stable_text
        if self.redaction is not None:
            text, stable_text = self.redaction.partial(words, len(u.stable))
        self._outbox.emit(
            TranscriptPartial(
                u.segment_id, self._t0 + u.start / SAMPLE_RATE, self._t0 + end / SAMPLE_RATE, text, stable_text,
                self.channel, self.label, self.voices.provisional(u.segment_id) if self.voices is not None else None,
            )
        )

    # -- finals -------------------------------------------------------------------
    def _request_final(self, u: Utterance) -> None:
        end = u.end if u.end is not None else self._audio.end
        # The final is decoded freely first: forcing the stable prefix of
        # greedy partials on every final cost tiny.en 2.6 WER points on the
        # benchmark corpus (12.8 % against 10.2 % offline), because partials
        # of the first second often agree on the same wrong words. Only a
        # final that contradicts stable_text, which clients were promised,
        # is decoded again with it forced (see decoded()).
        language = u.language if u.stable else self.options.language
        options = DecodeOptions(
            language=language,
            task=self.options.task,
            prompt=self._context(),
            prefix=(u.stable_text or None) if u.force_prefix else None,
            beam_size=self.settings.final_beam_size,
            temperatures=self.settings.final_temperatures,
            word_timestamps=True,
        )
        speculative = u.is_open
        priority = Priority.SPECULATIVE if speculative else Priority.FINAL
        if self.voices is not None:  # first: at the same priority, it runs before the decode or beside it
            self._promote_embeddings(u)
            voiced_end = self._segmenter.speech_end if speculative else None  # where the pause began
            rest = self.voices.rest(u.segment_id, end if voiced_end is None else min(end, voiced_end))
            if rest is not None:
                self._request_embedding(u, *rest, priority)
        u.final_request = self._request("final", u, end, options, priority)
        if speculative:
            u.move("speculate")
            u.speculation_silence_start = self._segmenter.speech_end

    def _emit_ready_finals(self) -> None:
        while self._utterances:
            u = self._utterances[0]
            if u.is_open or (u.decoding is None and u.failed is None):
                break
            if self.voices is not None and not self.voices.ready(u.segment_id):
                break  # its last embedding is a few windows, asked for before its decode
            if u.verify_tail:
                u.verify_tail = False
                if missed_words(u.decoding):
                    log.debug("segment %d: speculation cut words short, decoding again", u.segment_id)
                    self._cancel_final(u)
                    break
            self._utterances.popleft()
            u.move("emitted")
            self._outbox.emit(self._final_event(u))
        # Finals go out in segment order: a flush is done when none of the
        # utterances it ended is left.
        first_left = self._utterances[0].segment_id if self._utterances else None
        while self._flushes and (first_left is None or self._flushes[0] < first_left):
            self.flushes_done.append(self._flushes.popleft())

    def _final_event(self, u: Utterance) -> TranscriptFinal:
        assert u.end is not None
        start, end = self._t0 + u.start / SAMPLE_RATE, self._t0 + u.end / SAMPLE_RATE
        d = u.decoding
        self.final_starts.append(start)
        speech = d is not None and d.is_speech
        speaker: str | None = None
        word_speakers: tuple[str, ...] = ()
        if self.voices is not None:
            words = d.words if d is not None and d.is_speech else ()
            middles = np.array([u.start / SAMPLE_RATE + (w.start + w.end) / 2 for w in words])
            speaker, word_speakers = self.voices.final(u.segment_id, speech, end - start, middles)
        if d is None or not d.is_speech:
            segment = make_segment(u.segment_id, self._seek0 + u.start, "", (), d, (), start, start, end)
            self.finals.append("")
            self._said.append("")
            segment = replace(segment, speaker=speaker)
            return TranscriptFinal(segment, d.language if d else self.language, u.end_reason, end, self.channel, self.label)
        segment = make_segment(u.segment_id, self._seek0 + u.start, " " + d.text, d.tokens, d, d.words, start, start, end)
        segment = replace(segment, speaker=speaker, word_speakers=word_speakers)
        if self.redaction is not None:
            segment = self.redaction.final(segment)
        self.finals.append(segment.text.strip())
        self._said.append(d.text)
        self.language = d.language
        return TranscriptFinal(segment, d.language, u.end_reason, end, self.channel, self.label)

    # -- helpers ------------------------------------------------------------------
    def _context(self) -> str | None:
        recent = " ".join(t for t in self._said if t).split()[-self.settings.context_words :]
        parts = [p for p in (self.options.prompt, " ".join(recent)) if p]
        return " ".join(parts) or None

    # -- who is speaking (diarize) ---------------------------------------------------
    def _maybe_request_embedding(self, u: Utterance) -> None:
        if self.voices is not None and u.final_request is None:
            block = self.voices.next_block(u.segment_id, self._audio.end)
            if block is not None:
                self._request_embedding(u, *block, Priority.PARTIAL)  # background: it fills idle time

    def _request_embedding(self, u: Utterance, start: int, end: int, priority: Priority) -> None:
        assert self.voices is not None
        job = EmbedJob.whole(self._audio.slice(start, end), priority)
        request = self._outbox.request("embed", u.segment_id, end, job)
        self.voices.asked(u.segment_id, request.id, start, end)

    def _promote_embeddings(self, u: Utterance) -> None:
        """The utterance's embeddings still waiting go ahead with its final."""
        if self.voices is not None:
            for request_id in sorted(self.voices.in_flight(u.segment_id)):
                self._outbox.promote(request_id)

    def _request(self, kind: str, u: Utterance, end: int, options: DecodeOptions, priority: Priority) -> DecodeRequest:
        job = DecodeJob(
            audio=self._audio.slice(u.start, end),
            options=options,
            priority=priority,
            model=self.model_id,
            stream=self._stream,
        )
        return self._outbox.request(kind, u.segment_id, end, job)
