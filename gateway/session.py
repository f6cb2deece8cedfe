"""One live stream as a sans-I/O state machine: audio in, events out.

Like the protocol objects of h11 and websockets, a ``StreamSession`` never
touches a socket, a thread or an event loop. A transport feeds it what the
client sent (``receive_audio``, ``receive_text``, ``connection_lost``) and
the decodes it asked for (``decoded``), then drains three outboxes:

- ``take_events()``: protocol events for the client, in order;
- ``take_requests()``: decode work for the engine (``DecodeRequest``);
- ``take_cancellations()``: ids of requests whose result is no longer wanted;
- ``take_promotions()``: ids of speculative finals that became finals.

The clock is the sample count of the stream at 16 kHz: every time on the
wire comes from it, never from the wall clock.

Life of an utterance: the VAD declares speech (``speech.started``); every
``partial_interval_ms`` of new speech a greedy partial decode is asked for,
with the stable prefix forced, and each result yields a
``transcript.partial`` whose ``stable_text`` is the longest word prefix it
shares with a hypothesis over at least ``stable_lag_ms`` less audio
(LocalAgreement, as in whisper_streaming, with a lag).
When the trailing silence reaches ``speculate_after_ms`` (longer when the
last partial did not end a sentence) a final decode starts speculatively; if
speech resumes it is cancelled, otherwise it is the final when the endpoint
comes ``endpoint_ms`` after the speech. The final is decoded without the
stable prefix, and again with it only if it contradicts it. Finals are
emitted in segment order, exactly once per utterance, and their text becomes
the prompt (context) of the next utterance.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from vad.segmenter import Segmenter, SegmenterConfig, SpeechEnd, SpeechStart

from . import __version__
from .audio import SAMPLE_RATE, StreamResampler, decode_samples
from .decoder import DecodeOptions, Decoding
from .engine import DecodeJob, Priority
from .models import UnknownModelError
from .protocol import (
    End,
    ErrorEvent,
    Event,
    Flush,
    ProtocolError,
    Segment,
    SessionClosed,
    SessionCreated,
    SessionOptions,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
    parse_client_message,
    parse_options,
    stream_words,
)


log = logging.getLogger(__name__)


class SessionState(enum.Enum):
    OPEN = "open"  # taking audio
    CLOSING = "closing"  # no more audio; finals still to come
    CLOSED = "closed"  # session.closed sent; nothing more will happen


@dataclass(frozen=True)
class StreamSettings:
    """Server-side tuning of live streams (not client options)."""

    partial_interval_ms: int = 400
    # A word is stable once a hypothesis over at least this much less audio
    # had it too. Against the previous partial (400 ms earlier) wrong stable
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
    max_pending_finals: int = 2  # backpressure: stop reading audio beyond this
    pre_roll_ms: int = 300
    # A multilingual model's language, detected on a partial, holds for the
    # rest of the utterance's partials only when the detection is this sure
    # over this much audio: on the first 0.5 s of an English clip base said
    # Spanish, and every later partial came out in Spanish.
    language_min_probability: float = 0.8
    language_min_audio_s: float = 1.5
    # Engine pressure (see EngineLoad.pressure) above which a stream asks for
    # partials three times less often, so that finals keep the CPU.
    relief_pressure: float = 0.8


@dataclass(frozen=True)
class DecodeRequest:
    id: int
    kind: str  # "partial" or "final"
    segment_id: int
    audio_end: int  # absolute sample index the decoded audio ends at
    job: DecodeJob


class ModelCatalog:
    """What a session needs of the model registry (see gateway.models)."""

    def resolve(self, name: str | None) -> str: ...

    def is_multilingual(self, model_id: str) -> bool | None: ...


@dataclass
class _Utterance:
    segment_id: int
    start: int
    end: int | None = None  # set at the endpoint (or cut, or flush)
    end_reason: str = ""
    language: str | None = None
    history: list[tuple[int, list[str]]] = field(default_factory=list)  # (audio end, words) of each partial
    stable: list[str] = field(default_factory=list)
    partial_in_flight: int | None = None
    partial_requested_at: int = 0  # absolute sample of the last partial's audio end
    partials_sent: int = 0
    final_request: DecodeRequest | None = None
    speculation_silence_start: int | None = None  # set while the final is speculative
    verify_tail: bool = False  # the endpoint came after loud non-speech: check the speculation
    force_prefix: bool = False  # the free final contradicted stable_text: decode it again, held to it
    decoding: Decoding | None = None
    failed: str | None = None

    @property
    def stable_text(self) -> str:
        return " ".join(self.stable)

    @property
    def hypothesis(self) -> list[str]:
        """The words of the latest partial."""
        return self.history[-1][1] if self.history else []

    def keeps_stable(self, words: list[str]) -> bool:
        """Whether ``words`` begin with the stable prefix clients were shown."""
        return words[: len(self.stable)] == self.stable


class _SampleBuffer:
    """Audio addressed by absolute sample index; old audio can be dropped."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._start = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index one past the last sample

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._chunks.append(samples)
            self.end += samples.size

    def slice(self, a: int, b: int) -> np.ndarray:
        a = max(a, self._start)
        out, position = [], self._start
        for chunk in self._chunks:
            lo, hi = max(a - position, 0), min(b - position, chunk.size)
            if lo < hi:
                out.append(chunk[lo:hi])
            position += chunk.size
            if position >= b:
                break
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def discard_before(self, index: int) -> None:
        while self._chunks and self._start + self._chunks[0].size <= index:
            self._start += self._chunks.popleft().size


def _frame_rms(samples: np.ndarray, frame: int = 480) -> np.ndarray:
    frames = samples[: samples.size // frame * frame].reshape(-1, frame)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))


def common_prefix(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


class StreamSession:
    def __init__(
        self,
        options: SessionOptions,
        catalog: ModelCatalog,
        languages: set[str],
        settings: StreamSettings = StreamSettings(),
        session_id: str | None = None,
    ):
        self.session_id = session_id or uuid.uuid4().hex
        self.settings = settings
        self._catalog = catalog
        self._languages = languages
        self.state = SessionState.OPEN
        self.detached = False  # the client is gone; events are produced but unread
        self._events: list[Event] = []
        self._requests: list[DecodeRequest] = []
        self._cancellations: list[int] = []
        self._promotions: list[int] = []
        self._request_ids = iter(range(1, 1 << 62))
        self._utterances: deque[_Utterance] = deque()  # not yet finalised, in order
        self._next_segment_id = 0
        self._finals: list[str] = []
        self._language: str | None = None
        self._audio_received = False
        self._relieve = False  # the engine is under pressure
        self._final_decode_ms = 0
        self._input_samples = 0  # at the client's sample rate
        self._configure(options)
        self._events.append(SessionCreated(self.session_id, self.options.to_dict(), __version__))

    # -- configuration ----------------------------------------------------
    def _configure(self, options: SessionOptions) -> None:
        try:
            model_id = self._catalog.resolve(options.model)
        except UnknownModelError as exc:
            raise ProtocolError("invalid_config", str(exc), fatal=True) from None
        if self._catalog.is_multilingual(model_id) is False:
            if options.language not in (None, "en"):
                raise ProtocolError(
                    "invalid_config",
                    f"model {options.model!r} is English-only; omit language or use a multilingual model",
                    fatal=True,
                )
            if options.task == "translate":
                raise ProtocolError(
                    "invalid_config",
                    f"model {options.model!r} is English-only and cannot translate; use a multilingual model",
                    fatal=True,
                )
        self.options = options
        self.model_id = model_id
        self._resampler = StreamResampler(options.sample_rate)
        self._segmenter = Segmenter(
            SegmenterConfig(
                aggressiveness=options.vad_aggressiveness,
                endpoint_ms=options.endpoint_ms,
                max_segment_s=options.max_segment_s,
                pre_roll_ms=self.settings.pre_roll_ms,
            )
        )
        self._audio = _SampleBuffer()

    # -- inputs from the transport -----------------------------------------
    def receive_audio(self, data: bytes) -> None:
        if self.state is not SessionState.OPEN:
            self._error(ProtocolError("invalid_state", "audio after end is ignored; open a new stream"))
            return
        try:
            samples = decode_samples(data, self.options.encoding)
        except ValueError as exc:
            self._error(ProtocolError("invalid_audio", f"frame dropped: {exc}"))
            return
        self._audio_received = True
        self._input_samples += samples.size
        self._process(self._resampler.resample(samples))

    def receive_text(self, text: str) -> None:
        try:
            message = parse_client_message(text)
            if isinstance(message, SessionUpdate):
                self._update(message.session)
            elif self.state is not SessionState.OPEN:
                raise ProtocolError("invalid_state", f"the stream is {self.state.value}; no more messages are taken")
            elif isinstance(message, Flush):
                self._handle_segmenter_events(self._segmenter.flush())
                self._advance()
            elif isinstance(message, End):
                self.end()
        except ProtocolError as exc:
            self._error(exc)

    def _update(self, raw: dict) -> None:
        if self._audio_received or self.state is not SessionState.OPEN:
            raise ProtocolError(
                "invalid_state",
                "session.update must come before any audio; these options stay in force. "
                "Reconnect to change them.",
            )
        self._configure(parse_options(raw, self.options, self._languages))
        self._events.append(SessionUpdated(self.options.to_dict()))

    def end(self) -> None:
        """No more audio: finalise everything, then ``session.closed``."""
        if self.state is not SessionState.OPEN:
            return
        self._process(self._resampler.flush())
        self._handle_segmenter_events(self._segmenter.flush())
        self.state = SessionState.CLOSING
        self._advance()

    def shutdown(self, message: str) -> None:
        """The server is going away: say so, then finalise like ``end``."""
        if self.state is SessionState.OPEN:
            self._events.append(ErrorEvent("server_shutdown", message, fatal=True))
            self.end()

    def set_load(self, pressure: float, final_decode_s: float = 0.0) -> None:
        """The engine's state, as the transport last saw it: its pressure
        (0..1) and how long a final decode takes these days."""
        self._relieve = pressure >= self.settings.relief_pressure
        self._final_decode_ms = int(final_decode_s * 1000)

    def connection_lost(self) -> None:
        """The client went away without ``end``: finalise what was received."""
        self.detached = True
        self.end()

    def decoded(self, request_id: int, decoding: Decoding | None, error: str | None = None) -> None:
        """Result of a request; ``decoding`` None with no error: it was cancelled."""
        for u in self._utterances:
            if u.partial_in_flight == request_id:
                u.partial_in_flight = None
                if decoding is not None:
                    self._on_partial(u, decoding)
                break
            if u.final_request is not None and u.final_request.id == request_id:
                if decoding is None and error is None:  # cancelled: ask again
                    u.final_request = None
                    u.speculation_silence_start = None
                elif error is not None:
                    u.failed = error
                    self._events.append(ErrorEvent("decode_failed", f"segment {u.segment_id}: {error}"))
                elif self._breaks_promise(u, decoding):
                    log.debug("segment %d: final %r contradicts stable_text %r, decoding again held to it",
                              u.segment_id, decoding.text, u.stable_text)
                    u.final_request = None
                    u.speculation_silence_start = None
                    u.force_prefix = True
                else:
                    u.decoding = decoding
                break
        self._advance()

    @staticmethod
    def _breaks_promise(u: _Utterance, decoding: Decoding) -> bool:
        """Whether a final decoded freely drops words partials called stable."""
        if not u.stable or u.force_prefix or not decoding.is_speech:
            return False
        return not u.keeps_stable(decoding.text.split())

    # -- outboxes ---------------------------------------------------------
    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def take_requests(self) -> list[DecodeRequest]:
        requests, self._requests = self._requests, []
        return requests

    def take_cancellations(self) -> list[int]:
        ids, self._cancellations = self._cancellations, []
        return ids

    def take_promotions(self) -> list[int]:
        """Speculative finals the endpoint confirmed: they are finals now."""
        ids, self._promotions = self._promotions, []
        return ids

    @property
    def pending_finals(self) -> int:
        """Utterances that ended but whose final is not sent yet."""
        return sum(u.end is not None for u in self._utterances)

    @property
    def wants_audio(self) -> bool:
        """False while the transport should stop reading (backpressure)."""
        return self.state is SessionState.OPEN and self.pending_finals < self.settings.max_pending_finals

    @property
    def duration(self) -> float:
        return self._input_samples / self.options.sample_rate

    # -- audio path -------------------------------------------------------
    def _process(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        self._audio.append(samples)
        self._handle_segmenter_events(self._segmenter.feed(samples))
        self._advance()

    def _handle_segmenter_events(self, events) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                u = _Utterance(self._next_segment_id, event.start, language=self.options.language)
                u.partial_requested_at = event.start
                self._next_segment_id += 1
                self._utterances.append(u)
                self._events.append(SpeechStarted(u.segment_id, event.start / SAMPLE_RATE))
            elif isinstance(event, SpeechEnd):
                u = self._open_utterance()
                if u is None:
                    continue
                u.end, u.end_reason = event.end, event.reason
                if u.final_request is not None:
                    if u.final_request.audio_end > u.end:
                        self._cancel_final(u)  # a speculation ran past a max-length cut
                    else:
                        u.verify_tail = not self._tail_is_quiet(u)
                        if u.decoding is None:
                            self._promotions.append(u.final_request.id)  # it is a final now
                u.speculation_silence_start = None  # the endpoint confirms it

    def _open_utterance(self) -> _Utterance | None:
        if self._utterances and self._utterances[-1].end is None:
            return self._utterances[-1]
        return None

    def _advance(self) -> None:
        """After any input: send the finals that are ready, then ask for the
        decodes the state calls for (finals first, so context is current)."""
        self._emit_ready_finals()
        u = self._open_utterance()
        if u is not None and self.state is SessionState.OPEN:
            self._check_speculation(u)
            self._maybe_request_partial(u)
        for u in self._utterances:
            if u.final_request is None and u.decoding is None and u.failed is None:
                if not self._ready_for_final(u):
                    break  # finals are chained: the next needs this one's text
                self._request_final(u)
        keep = min([u.start for u in self._utterances], default=self._audio.end)
        margin = (self.settings.pre_roll_ms + 1000) * SAMPLE_RATE // 1000
        self._audio.discard_before(min(keep, self._audio.end - margin))

    def _ready_for_final(self, u: _Utterance) -> bool:
        previous_pending = any(
            p.decoding is None and p.failed is None for p in self._utterances if p.segment_id < u.segment_id
        )
        if previous_pending:
            return False
        if u.end is not None:
            return True
        # Speculate: the speech may have ended; the endpoint will tell.
        return (
            self.settings.speculative_final
            and self.state is SessionState.OPEN
            and self._segmenter.trailing_silence_ms >= self._speculation_wait(u)
        )

    def _speculation_wait(self, u: _Utterance) -> int:
        """Trailing silence after which the final starts speculatively."""
        s = self.settings
        ends_sentence = bool(u.hypothesis) and u.hypothesis[-1].endswith((".", "?", "!", "。", "？", "！"))
        wait = s.speculate_after_ms if ends_sentence else s.speculate_mid_sentence_ms
        # Long utterances end at a shorter pause (see SegmenterConfig).
        wait = min(wait, max(s.speculate_after_ms, self._segmenter.endpoint_ms - 100))
        if self._relieve or not ends_sentence:
            return wait
        # With CPU to spare, start early enough for the decode to be done at
        # the endpoint: a slow model (base: 0.45 s and more) starts at once.
        # Only after a finished sentence: mid-sentence pauses are where speech
        # resumes, and speculating into every one of them cost base a third of
        # its capacity (a "speculation storm").
        in_time = self._segmenter.endpoint_ms - self._final_decode_ms - 50
        return max(s.speculate_earliest_ms, min(wait, in_time))

    def _tail_is_quiet(self, u: _Utterance) -> bool:
        """Whether the audio after a speculation, which the VAD called
        non-speech, is quiet (20 dB under the utterance's speech level).

        If not, it may hold words the VAD missed but Whisper would hear, or
        only a breath: ``_speculation_missed_words`` decides once the
        speculative decode is in.
        """
        tail = self._audio.slice(u.final_request.audio_end, u.end)
        if tail.size < 480:
            return True
        speech = self._audio.slice(u.start, u.final_request.audio_end)
        level = np.percentile(_frame_rms(speech), 90) if speech.size >= 480 else 0.0
        return float(_frame_rms(tail).max()) < 0.1 * level

    @staticmethod
    def _speculation_missed_words(u: _Utterance) -> bool:
        """A speculative final whose last word runs into the end of its audio
        was cut mid-speech: the words went on past it.

        Breaths after a sentence are loud but hold no words; measured at 8
        tiny.en streams, re-decoding on loudness alone redid one final in
        four.
        """
        d = u.decoding
        if d is None or not d.is_speech or not d.words:
            return False
        return d.words[-1].end >= d.duration - 0.15

    def _check_speculation(self, u: _Utterance) -> None:
        if u.speculation_silence_start is None:
            return
        if self._silence_start() != u.speculation_silence_start:
            log.debug("segment %d: speculation void, speech resumed", u.segment_id)
            self._cancel_final(u)  # speech resumed: the speculation is void

    def _silence_start(self) -> int | None:
        return self._segmenter.speech_end

    def _cancel_final(self, u: _Utterance) -> None:
        if u.final_request is not None:
            self._cancellations.append(u.final_request.id)
        u.final_request = None
        u.decoding = None
        u.speculation_silence_start = None

    # -- partials ---------------------------------------------------------
    def _maybe_request_partial(self, u: _Utterance) -> None:
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
            min_window_s=10.0,
        )
        request = self._request("partial", u, now, options, Priority.PARTIAL)
        u.partial_in_flight = request.id
        u.partial_requested_at = now
        u.partials_sent += 1

    def _on_partial(self, u: _Utterance, decoding: Decoding) -> None:
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
        # LocalAgreement against a hypothesis of at least stable_lag_ms less
        # audio, not merely the previous one: two partials 400 ms apart often
        # agree on the same wrong last words, and a wrong stable prefix is
        # forced on every later partial and, on conflict, on the final.
        lag = self.settings.stable_lag_ms * SAMPLE_RATE // 1000
        earlier = [h for e, h in u.history if e <= end - lag]
        if earlier:
            agreed = common_prefix(earlier[-1], words)
            if len(agreed) > len(u.stable):
                u.stable = agreed
        u.history.append((end, words))
        self._events.append(
            TranscriptPartial(u.segment_id, u.start / SAMPLE_RATE, end / SAMPLE_RATE, " ".join(words), u.stable_text)
        )

    # -- finals -----------------------------------------------------------
    def _request_final(self, u: _Utterance) -> None:
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
        speculative = u.end is None
        priority = Priority.SPECULATIVE if speculative else Priority.FINAL
        u.final_request = self._request("final", u, end, options, priority)
        if speculative:
            u.speculation_silence_start = self._silence_start()

    def _emit_ready_finals(self) -> None:
        while self._utterances:
            u = self._utterances[0]
            if u.end is None or (u.decoding is None and u.failed is None):
                break
            if u.verify_tail:
                u.verify_tail = False
                if self._speculation_missed_words(u):
                    log.debug("segment %d: speculation cut words short, decoding again", u.segment_id)
                    self._cancel_final(u)
                    break
            self._utterances.popleft()
            self._events.append(self._final_event(u))
        if self.state is SessionState.CLOSING and not self._utterances:
            self.state = SessionState.CLOSED
            text = " ".join(t for t in self._finals if t)
            self._events.append(SessionClosed(self.duration, text, self._next_segment_id, self._language))

    def _final_event(self, u: _Utterance) -> TranscriptFinal:
        start, end = u.start / SAMPLE_RATE, u.end / SAMPLE_RATE
        d = u.decoding
        if d is None or not d.is_speech:
            segment = Segment(
                id=u.segment_id, seek=u.start // 160, start=start, end=end, text="", tokens=(),
                temperature=d.temperature if d else 0.0, avg_logprob=d.avg_logprob if d else 0.0,
                compression_ratio=d.compression_ratio if d else 0.0, no_speech_prob=d.no_speech_prob if d else 1.0,
            )
            self._finals.append("")
            return TranscriptFinal(segment, d.language if d else self._language, u.end_reason, end)
        words = stream_words(d.words, start, start, end)
        text = d.text
        if words:
            start, end = words[0].start, words[-1].end
        segment = Segment(
            id=u.segment_id, seek=u.start // 160, start=start, end=end, text=" " + text, tokens=d.tokens,
            temperature=d.temperature, avg_logprob=d.avg_logprob, compression_ratio=d.compression_ratio,
            no_speech_prob=d.no_speech_prob, words=tuple(words),
        )
        self._finals.append(text)
        self._language = d.language
        return TranscriptFinal(segment, d.language, u.end_reason, u.end / SAMPLE_RATE)

    # -- helpers ----------------------------------------------------------
    def _context(self) -> str | None:
        recent = " ".join(t for t in self._finals if t).split()[-self.settings.context_words :]
        parts = [p for p in (self.options.prompt, " ".join(recent)) if p]
        return " ".join(parts) or None

    def _request(self, kind: str, u: _Utterance, end: int, options: DecodeOptions, priority: Priority) -> DecodeRequest:
        job = DecodeJob(
            audio=self._audio.slice(u.start, end),
            options=options,
            priority=priority,
            model=self.model_id,
            stream=self.session_id,
        )
        request = DecodeRequest(next(self._request_ids), kind, u.segment_id, end, job)
        self._requests.append(request)
        return request

    def _error(self, exc: ProtocolError) -> None:
        self._events.append(ErrorEvent(exc.code, exc.message, exc.fatal))
        if exc.fatal:
            self.state = SessionState.CLOSED
