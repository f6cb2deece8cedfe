"""One live stream as a sans-I/O state machine: commands in, events and engine actions out.

Like the protocol objects of h11 and websockets, a ``StreamSession`` never
touches a socket, a thread or an event loop. Its transport (a front door's
runner) hands it ``Command``s with ``handle`` (what the client said, what
the engine answered, what the server decided) and drains two outboxes:

- ``take_events()``: events for the client, in order;
- ``take_actions()``: work for the engine (``Submit``, ``Cancel``,
  ``Promote``), to be carried out in order.

The clock is the sample count of the stream at 16 kHz: every time on the
wire comes from it, never from the wall clock. The session owns the
lifecycle (the states below) and the stream's audio format; the utterances
and their decodes are the ``Transcriber``'s, one per channel of the stream
(each its own VAD, utterances, prompt context and partial slot in the
engine; segment ids are one sequence across them).
"""

from __future__ import annotations

import enum
import itertools
import uuid
from collections.abc import Collection
from typing import Protocol

import numpy as np

from gateway import __version__
from gateway.audio.pcm import decode_samples
from gateway.audio.resample import StreamResampler
from gateway.inference.models import UnknownModelError

from .commands import (
    Audio,
    ClientCommand,
    Command,
    Configure,
    ConnectionLost,
    DecodeCancelled,
    Decoded,
    DecodeFailed,
    Embedded,
    End,
    EngineAction,
    Flush,
    Invalid,
    LoadReport,
    Signal,
    Stop,
)
from .errors import ProtocolError, SessionStateError
from .events import ChannelSummary, ErrorEvent, Event, Flushed, SessionClosed, SessionCreated, SessionUpdated, Signalled
from .languages import english_only_refusal
from .options import SessionOptions, parse_options
from .outbox import Outbox
from .settings import StreamSettings
from .signals import SignalBudget
from .transcriber import ClassifierFactory, Transcriber


class SessionState(enum.Enum):
    CONFIGURING = "configuring"  # open; no audio yet, so options may still change
    STREAMING = "streaming"  # open; audio received, options fixed
    CLOSING = "closing"  # no more input; finals still to come
    CLOSED = "closed"  # session.closed sent, or a fatal error: nothing more will happen

    @property
    def is_open(self) -> bool:
        return self in (SessionState.CONFIGURING, SessionState.STREAMING)


# -- the rules, as data (as h11 writes HTTP's) --------------------------------------
_CONF, _STREAM, _CLOSING, _CLOSED = SessionState
TRIGGERS: dict[type, str] = {Configure: "configure", Audio: "audio", Flush: "flush", End: "end", Signal: "signal"}
# (state, what happened) -> the next state. "end" is also the client going
# away and the server shutting down; "finished": the last final went out;
# "confirm": a Configure that changes nothing (clients that send their whole
# configuration again mid-stream, as OpenAI Realtime clients do, get it confirmed).
TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (_CONF, "configure"): _CONF,
    (_CONF, "confirm"): _CONF,
    (_STREAM, "confirm"): _STREAM,
    (_CONF, "audio"): _STREAM,
    (_STREAM, "audio"): _STREAM,
    (_CONF, "flush"): _CONF,
    (_CONF, "signal"): _CONF,
    (_STREAM, "signal"): _STREAM,
    (_STREAM, "flush"): _STREAM,
    (_CONF, "end"): _CLOSING,
    (_STREAM, "end"): _CLOSING,
    (_CLOSING, "finished"): _CLOSED,
    (_CONF, "fatal"): _CLOSED,
    (_STREAM, "fatal"): _CLOSED,
    (_CLOSING, "fatal"): _CLOSED,
}
_OPTIONS_FIXED = "options can only change before the first audio; these options stay in force. Reconnect to change them."
_NO_MORE = "the stream is closing; no more messages are taken"
# A client command in a state that does not take it: the invalid_state
# error it gets (the session goes on).
REFUSALS: dict[tuple[SessionState, str], str] = {
    (_STREAM, "configure"): _OPTIONS_FIXED,
    (_CLOSING, "configure"): _OPTIONS_FIXED,
    (_CLOSING, "confirm"): _NO_MORE,
    (_CLOSING, "audio"): "audio after end is ignored; open a new stream",
    (_CLOSING, "flush"): _NO_MORE,
    (_CLOSING, "signal"): _NO_MORE,
    (_CLOSING, "end"): _NO_MORE,
}


class ModelCatalog(Protocol):
    """What a session needs of the model registry (see gateway.inference.models)."""

    def resolve(self, name: str | None) -> str: ...

    def is_multilingual(self, model_id: str) -> bool | None: ...


class StreamSession:
    def __init__(
        self,
        options: SessionOptions,
        catalog: ModelCatalog,
        languages: Collection[str],
        settings: StreamSettings = StreamSettings(),
        session_id: str | None = None,
        classifier_factory: ClassifierFactory | None = None,
    ):
        """Raises ``ProtocolError`` (fatal) for options the server cannot serve."""
        self.session_id = session_id or uuid.uuid4().hex
        self.settings = settings
        self.state = SessionState.CONFIGURING
        self.detached = False  # the client is gone; events are produced but unread
        self._catalog = catalog
        self._languages = languages
        self._classifier_factory = classifier_factory
        self._outbox = Outbox()
        self._segment_ids = itertools.count()
        self._load = LoadReport(0.0)
        self._input_samples = 0  # at the client's sample rate
        self._signals = SignalBudget(settings.signals)
        self._configure(options)
        self._outbox.emit(SessionCreated(self.session_id, self.options.to_dict(), __version__))

    # -- input ----------------------------------------------------------------
    def handle(self, command: Command) -> None:
        if isinstance(command, (Decoded, Embedded, DecodeFailed, DecodeCancelled)):
            owner = next((t for t in self._transcribers if t.owns(command.request_id)), None)
            if owner is None:
                pass  # a result no longer wanted (cancelled, replaced)
            elif isinstance(command, Embedded):
                owner.embedded(command.request_id, command.windows)
            elif isinstance(command, Decoded):
                owner.decoded(command.request_id, command.decoding)
            elif isinstance(command, DecodeFailed):
                owner.decoded(command.request_id, None, command.error)
            else:
                owner.decoded(command.request_id, None)
        elif isinstance(command, LoadReport):
            self._load = command
            for t in self._transcribers:
                t.set_load(command.pressure, command.final_decode_s)
        elif isinstance(command, ConnectionLost):
            self.detached = True
            if self.state.is_open:
                self._finish()
        elif isinstance(command, Stop):
            if self.state.is_open:
                self._outbox.emit(ErrorEvent(command.code, command.message, fatal=True))
                self._finish()
        else:
            self._from_client(command)
        self._report_flushes()
        if self.state is SessionState.CLOSING and all(t.idle for t in self._transcribers):
            self._move("finished")
            self._outbox.emit(self._closed())

    def _from_client(self, command: ClientCommand) -> None:
        if self.state is SessionState.CLOSED:
            raise SessionStateError(f"{type(command).__name__} given to a closed session")
        try:
            if isinstance(command, Invalid):
                raise command.error
            trigger = TRIGGERS[type(command)]
            options = None
            if isinstance(command, Configure) and self.state is SessionState.CONFIGURING:
                options = self._parse(command)  # bad options before audio are fatal
            elif isinstance(command, Configure) and self.state is SessionState.STREAMING:
                try:
                    options = self._parse(command)  # after audio, a change is refused, not fatal
                except ProtocolError:
                    options = None
            if options == self.options:
                trigger = "confirm"
            refusal = REFUSALS.get((self.state, trigger))
            if refusal is not None:
                raise ProtocolError("invalid_state", refusal)
            if options is not None:
                if trigger == "configure":
                    self._configure(options)
                self._move(trigger)
                self._outbox.emit(SessionUpdated(self.options.to_dict()))
            elif isinstance(command, Audio):
                self._receive_audio(command.data)
            elif isinstance(command, Flush):
                self._move(trigger)
                for t in self._transcribers:
                    t.flush()
            elif isinstance(command, Signal):
                self._move(trigger)
                refusal = self._signals.admit(self.duration)
                if refusal is None:
                    self._outbox.emit(Signalled(command.kind, command.value, self.options.time_offset + self.duration, command.channel))
                elif refusal:
                    raise ProtocolError("signal_limit", refusal)
            else:
                self._finish()
        except ProtocolError as exc:
            self._outbox.emit(ErrorEvent(exc.code, exc.message, exc.fatal))
            if exc.fatal:
                self._move("fatal")

    def _parse(self, command: Configure) -> SessionOptions:
        return parse_options(command.changes, self.options, self._languages, self.settings.max_prompt_chars)

    def _receive_audio(self, data: bytes) -> None:
        try:
            samples = decode_samples(data, self.options.encoding)
        except ValueError as exc:
            raise ProtocolError("invalid_audio", f"frame dropped: {exc}") from None
        n = self.options.channels
        if samples.size % n:
            raise ProtocolError(
                "invalid_audio",
                f"frame dropped: {n} interleaved channels need whole {n}-sample frames; got {samples.size} samples",
            )
        self._move("audio")
        self._input_samples += samples.size // n
        frames = samples.reshape(-1, n)
        for c, (t, resampler) in enumerate(zip(self._transcribers, self._resamplers)):
            t.feed(resampler.resample(np.ascontiguousarray(frames[:, c]) if n > 1 else samples))

    def _finish(self) -> None:
        """No more audio: finalise everything; ``session.closed`` follows the last final."""
        for t, resampler in zip(self._transcribers, self._resamplers):
            t.feed(resampler.flush())
        self._move("end")
        for t in self._transcribers:
            t.close()

    def _move(self, trigger: str) -> None:
        target = TRANSITIONS.get((self.state, trigger))
        if target is None:
            raise SessionStateError(f"{trigger!r} is not a move from {self.state.value}")
        self.state = target

    def _configure(self, options: SessionOptions) -> None:
        try:
            model_id = self._catalog.resolve(options.model)
        except UnknownModelError as exc:
            raise ProtocolError("invalid_config", str(exc), fatal=True) from None
        refusal = english_only_refusal(options.model, self._catalog.is_multilingual(model_id), options.language, options.task)
        if refusal is not None:
            raise ProtocolError("invalid_config", refusal, fatal=True)
        self.options = options
        self.model_id = model_id
        labels = options.labels
        self._segment_ids = itertools.count(options.first_segment_id)  # no utterance yet: options change only before audio
        self._resamplers = [StreamResampler(options.sample_rate) for _ in labels]
        self._transcribers = [
            Transcriber(
                options, self.settings, model_id,
                self.session_id if len(labels) == 1 else f"{self.session_id}/{c}",  # the engine's partial slot
                self._outbox, self._segment_ids, self._classifier_factory, c, label,
            )
            for c, label in enumerate(labels)
        ]
        for t in self._transcribers:
            t.set_load(self._load.pressure, self._load.final_decode_s)

    def _closed(self) -> SessionClosed:
        ts = self._transcribers
        finals = sorted((start, text) for t in ts for start, text in zip(t.final_starts, t.finals))
        channels = tuple(
            ChannelSummary(t.channel, t.label, " ".join(x for x in t.finals if x), t.utterances, self.duration) for t in ts
        )
        language = next((t.language for t in ts if t.language), None)
        text = " ".join(x for _, x in finals if x)
        speakers = tuple(s for t in ts if t.voices is not None for s in t.voices.summary()) if self.options.diarize else None
        return SessionClosed(self.duration, text, sum(t.utterances for t in ts), language, channels, speakers)

    def _report_flushes(self) -> None:
        """A flush is done when every channel has its finals out."""
        while all(t.flushes_done for t in self._transcribers):
            last = max(t.flushes_done.popleft() for t in self._transcribers)
            self._outbox.emit(Flushed(last if last >= 0 else None))

    # -- output -----------------------------------------------------------------
    def take_events(self) -> list[Event]:
        return self._outbox.take_events()

    def take_actions(self) -> list[EngineAction]:
        return self._outbox.take_actions()

    # -- state --------------------------------------------------------------------
    @property
    def pending_finals(self) -> int:
        """Utterances that ended but whose final is not sent yet."""
        return sum(t.pending_finals for t in self._transcribers)

    @property
    def wants_audio(self) -> bool:
        """False while the transport should stop reading (backpressure)."""
        return self.state.is_open and self.pending_finals < self.settings.max_pending_finals * len(self._transcribers)

    @property
    def last_speech_s(self) -> float:
        """Where speech was last heard, in seconds of audio (0: not yet): it
        stands still while a client sends nothing, or only silence."""
        return max(t.last_speech_s for t in self._transcribers)

    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self._input_samples / self.options.sample_rate
