"""The inference engine: the one owner of model work and its scheduling.

Sessions and the batch API submit ``DecodeJob``s and get futures back; they
never run the model themselves. Worker threads (as many as CTranslate2 runs
decodes in parallel) take the most urgent job first:

1. finals of live streams, oldest first: captions must stay real time;
2. speculative finals (started when a pause began, before the endpoint
   confirms it); ``promote`` makes one a final when the endpoint comes;
3. partials of live streams; a stream has at most one pending partial, and a
   newer one replaces it (the older future is cancelled);
4. batch chunks of uploaded files.

Speaker embeddings (``EmbedJob``: who is speaking, for diarization) are
model work too and queue here with their caller's priority: a live
utterance's with its final, a file's with its chunks. The speaker encoder
is loaded at the first one.

Decodes cannot be interrupted, so while live streams are open, partials and
batch together may occupy at most ``workers - 1`` workers: a final never
waits behind them, and under load partials stretch instead (measured: with
partials free to take every worker, 4 tiny.en streams already had a final
latency p95 of 1.7 s). With no stream open, batch may use every worker.

Everything here is thread-based and free of any event loop, so the CLI uses
the same engine as the server; async adapters wrap the futures.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .decoder import SAMPLE_RATE, WhisperDecoder
from .jobs import DecodeJob, EmbedJob, Job, Priority, VoiceWindows
from .models import ModelRegistry
from .records import DecodeOptions, Decoding

log = logging.getLogger(__name__)


class Decoder(Protocol):
    """What the engine needs of a model: decode one piece of audio."""

    def decode(self, audio: np.ndarray, options: DecodeOptions) -> Decoding: ...

    def text_tokens(self, text: str, language: str, task: str) -> tuple[int, ...]: ...


class VoiceEncoder(Protocol):
    """What the engine needs of the speaker encoder (``speakers.VoiceEncoder`` and its ONNX twin)."""

    def embed_windows(self, samples: np.ndarray, hop_s: float = 0.75) -> tuple[np.ndarray, np.ndarray]: ...


DecoderFactory = Callable[[str], Decoder]  # canonical model id -> decoder
EncoderFactory = Callable[[], VoiceEncoder]
Observer = Callable[[str, float, float, Decoding | None], None]  # kind, queued s, decode s, result


@dataclass(order=True)
class _Entry:
    priority: int
    seq: int
    job: Job = field(compare=False)
    future: Future = field(compare=False)
    submitted: float = field(compare=False, default=0.0)
    promoted: bool = field(compare=False, default=False)  # re-queued higher up

    @property
    def dead(self) -> bool:
        """Will not run from this place in the queue: cancelled, or moved up."""
        return self.future.cancelled() or self.promoted


@dataclass(frozen=True)
class EngineLoad:
    """A snapshot for admission control and /metrics."""

    workers: int
    busy: int
    pending_finals: int
    pending_partials: int
    pending_batch: int
    utilisation: float  # share of worker time spent decoding, recent window
    final_utilisation: float  # share spent on finals, speculative ones included
    final_wait_p95: float  # seconds confirmed finals waited in the queue
    final_decode_s: float = 0.0  # median time a final (or speculative) decode took

    @property
    def pressure(self) -> float:
        """0 (idle) .. 1 (saturated): how hard finals compete for workers.

        Partials are elastic (they fill any idle time and stretch under
        load), so the measure is the finals' share of the workers and how
        long finals have been waiting, not plain utilisation.
        """
        return min(1.0, max(self.final_utilisation / 0.8, self.final_wait_p95 / 0.4))


BATCH_AGING_S = 5.0  # a batch chunk waiting this long is queued with the partials
COMPACT_AT = 256  # queue entries, live or dead, before the dead ones are swept out


class EngineClosed(RuntimeError):
    pass


class Engine:
    def __init__(
        self,
        registry: ModelRegistry,
        workers: int | None = None,
        observer: Observer | None = None,
        decoder_factory: DecoderFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        background_workers: int | None = None,
        encoder_factory: EncoderFactory | None = None,
    ):
        """``decoder_factory`` makes the decoder of a model id (default: a
        ``WhisperDecoder`` over the registry's loaded model), ``encoder_factory``
        the speaker encoder (default: ``speakers.onnx_encoder.OnnxVoiceEncoder``
        on the installed weights); ``clock`` times
        the queue and the decodes (tests pass a scripted one)."""
        self.registry = registry
        self.workers = workers or registry.settings.workers
        # Workers partials and batch may hold while live streams are open:
        # by default one fewer than all, so that a final never waits behind
        # them (docs/performance.md, "Partials on both workers", measures
        # the other choice).
        if background_workers is not None and background_workers < 0:
            raise ValueError(f"partial workers must be 0 (the default) or more, not {background_workers}")
        self.background_workers = min(self.workers, background_workers or max(1, self.workers - 1))
        self._live_streams = 0  # leases held by open live streams
        self._observer = observer
        self._decoder_factory = decoder_factory or (lambda model_id: WhisperDecoder(registry.get(model_id)))
        self._clock = clock
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._pending_partial: dict[str, _Entry] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0
        self._busy_background = 0  # partials and batch running
        self._decoders: dict[str, Decoder] = {}
        self._decoders_lock = threading.Lock()
        self._encoder_factory = encoder_factory or _speaker_encoder
        self._encoder: VoiceEncoder | None = None
        # (finished, run seconds, queued seconds, priority, a decode) of recent jobs
        self._history: deque[tuple[float, float, float, int, bool]] = deque(maxlen=2048)
        self._load_cache: tuple[float, float, EngineLoad] | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"decode-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    # -- live streams -------------------------------------------------------
    @contextlib.contextmanager
    def stream_lease(self) -> Iterator[None]:
        """Held by every open live stream for its lifetime: while one is
        held, partials and batch leave a worker free for finals."""
        with self._cond:
            self._live_streams += 1
        try:
            yield
        finally:
            with self._cond:
                self._live_streams -= 1
                self._cond.notify_all()  # background work may take every worker again

    @property
    def live_streams(self) -> int:
        return self._live_streams

    # -- submitting -------------------------------------------------------
    def submit(self, job: Job) -> Future:
        """Queue a job; the future resolves to a ``Decoding`` (an
        ``EmbedJob``'s: ``VoiceWindows``)."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise EngineClosed("the engine is shut down")
            entry = _Entry(int(job.priority), next(self._seq), job, future, self._clock())
            if job.priority == Priority.PARTIAL and job.stream is not None:
                older = self._pending_partial.pop(job.stream, None)
                if older is not None:
                    older.future.cancel()  # skipped by the workers
                self._pending_partial[job.stream] = entry
            heapq.heappush(self._heap, entry)
            if len(self._heap) > COMPACT_AT:
                self._compact()
            self._cond.notify()
        return future

    def _age_batch(self) -> None:
        """Batch work that has waited ``BATCH_AGING_S`` moves up among the
        partials (under the lock). Partials are elastic and come again every
        300 ms from every stream, so at capacity they would otherwise starve
        an upload for ever; this way an upload's chunk waits behind at most
        one partial per stream."""
        now = self._clock()
        aged = [
            e for e in self._heap
            if e.priority == Priority.BATCH and not e.dead
            and now - e.submitted >= BATCH_AGING_S
        ]
        for entry in aged:
            entry.promoted = True  # the old place in the queue is skipped
            heapq.heappush(self._heap, _Entry(int(Priority.PARTIAL), next(self._seq), entry.job, entry.future, entry.submitted))

    def _forget(self, entry: _Entry) -> None:
        """A popped entry that will not run: nothing may keep its audio."""
        stream = entry.job.stream
        if stream is not None and self._pending_partial.get(stream) is entry:
            del self._pending_partial[stream]

    def _compact(self) -> None:
        """Drop cancelled and moved entries from the queue (under the lock).

        They are skipped when they reach the head, but under load
        background work waits behind finals, and replaced partials of every
        stream (each holding up to 10 s of audio) would pile up meanwhile.
        """
        live = []
        for entry in self._heap:
            if entry.dead:
                self._forget(entry)
            else:
                live.append(entry)
        self._heap = live
        heapq.heapify(self._heap)

    @property
    def max_background_workers(self) -> int:
        """Workers partials and batch may hold: one stays free for finals."""
        return self.background_workers if self._live_streams else self.workers

    def _background_may_start(self) -> bool:
        """Partials and batch take idle time only: while live streams are
        open, not beside a running final, whose decode would share the CPU
        with them (measured at 8 tiny.en streams on 2 cores: partials held
        half the decode time and finals took 0.46 s instead of 0.38 s)."""
        if self._busy_background >= self.max_background_workers:
            return False
        return not (self._live_streams and self._busy > self._busy_background)

    def promote(self, future: Future, priority: Priority = Priority.FINAL) -> None:
        """Move a job still waiting in the queue up to ``priority``."""
        with self._cond:
            for entry in self._heap:
                if entry.future is future and entry.priority > priority and not entry.promoted:
                    entry.promoted = True  # the old place in the heap is skipped
                    heapq.heappush(
                        self._heap, _Entry(int(priority), next(self._seq), entry.job, future, entry.submitted)
                    )
                    self._cond.notify()
                    return

    def decode(self, job: DecodeJob) -> Decoding:
        """Submit and wait (for callers that are threads themselves)."""
        return self.submit(job).result()

    def decoder(self, model: str | None) -> Decoder:
        model_id = self.registry.resolve(model)
        decoder = self._decoders.get(model_id)
        if decoder is None:
            with self._decoders_lock:
                decoder = self._decoders.get(model_id)
                if decoder is None:
                    decoder = self._decoder_factory(model_id)
                    self._decoders[model_id] = decoder
        return decoder

    def voice_encoder(self) -> VoiceEncoder:
        """The speaker encoder, loaded at first use (``speakers.WeightsError``
        when its weights are not installed)."""
        encoder = self._encoder
        if encoder is None:
            with self._decoders_lock:
                if self._encoder is None:
                    self._encoder = self._encoder_factory()
                encoder = self._encoder
        return encoder

    def text_tokens(self, model: str | None, text: str, language: str, task: str = "transcribe") -> tuple[int, ...]:
        """``text``'s token ids in a model's tokenizer (a segment split in two
        carries each part's own)."""
        return self.decoder(model).text_tokens(text, language, task)

    def _run(self, job: Job) -> Decoding | VoiceWindows:
        if isinstance(job, EmbedJob):
            return embed_spans(self.voice_encoder(), job)
        return self.decoder(job.model).decode(job.audio, job.options)

    # -- workers ----------------------------------------------------------
    def _next(self) -> _Entry | None:
        """Pop the most urgent runnable job; None when closed and drained."""
        with self._cond:
            while True:
                entry = None
                self._age_batch()
                while self._heap:
                    head = self._heap[0]
                    if head.dead:
                        self._forget(heapq.heappop(self._heap))
                        continue
                    # Finals sort first, so a blocked head means only
                    # background work is left, and all of it must wait.
                    if Priority(head.priority).background and not self._background_may_start():
                        break
                    entry = heapq.heappop(self._heap)
                    break
                if entry is not None:
                    stream = entry.job.stream
                    if stream is not None and self._pending_partial.get(stream) is entry:
                        del self._pending_partial[stream]
                    if not entry.future.set_running_or_notify_cancel():
                        continue
                    self._busy += 1
                    if Priority(entry.priority).background:
                        self._busy_background += 1
                    return entry
                if self._closed and not self._heap:
                    return None
                self._cond.wait()

    def _work(self) -> None:
        while (entry := self._next()) is not None:
            # What it counts as: its place in the queue, but an upload's chunk
            # stays batch work even when its wait moved it up.
            kind = entry.job.priority if entry.job.priority is Priority.BATCH else Priority(entry.priority)
            started = self._clock()
            result: Decoding | VoiceWindows | None
            try:
                result = self._run(entry.job)
            except BaseException as exc:  # reported to the submitter, never lost
                log.exception("decode failed" if isinstance(entry.job, DecodeJob) else "speaker embedding failed")
                entry.future.set_exception(exc)
                result = None
            else:
                entry.future.set_result(result)
            finished = self._clock()
            is_decode = isinstance(entry.job, DecodeJob)
            decoding = result if isinstance(result, Decoding) else None
            if decoding is not None and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s %.2fs audio: %s window, %d attempt(s), waited %.3fs, took %.3fs",
                    Priority(entry.priority).name.lower(), decoding.duration, decoding.window,
                    decoding.attempts, started - entry.submitted, finished - started,
                )
            with self._cond:
                self._busy -= 1
                if Priority(entry.priority).background:
                    self._busy_background -= 1
                self._history.append((finished, finished - started, started - entry.submitted, kind, is_decode))
                self._cond.notify_all()
            if self._observer is not None:
                name = Priority(kind).name.lower() if is_decode else "speakers"
                self._observer(name, started - entry.submitted, finished - started, decoding)

    # -- state ------------------------------------------------------------
    def load(self, window_s: float = 10.0, max_age_s: float = 0.25) -> EngineLoad:
        """Recent load; cached for ``max_age_s`` since every stream asks often."""
        now = self._clock()
        cached = self._load_cache
        if cached is not None and now - cached[0] < max_age_s and cached[1] == window_s:
            return cached[2]
        load = self._measure(now, window_s)
        self._load_cache = (now, window_s, load)
        return load

    def _measure(self, now: float, window_s: float) -> EngineLoad:
        with self._cond:
            live = [e for e in self._heap if not e.dead]
            recent = [h for h in self._history if now - h[0] <= window_s]
            # The last 64 final-class decodes, whatever their age: a pause
            # in speech must not make the engine forget how slow finals are.
            final_decodes = [h[1] for h in self._history if not Priority(h[3]).background and h[4]][-64:]
            busy = self._busy
        busy_time = sum(min(h[1], window_s) for h in recent)
        final_time = sum(min(h[1], window_s) for h in recent if not Priority(h[3]).background)
        waits = sorted(h[2] for h in recent if h[3] == Priority.FINAL and h[4])
        decodes = sorted(final_decodes)
        p95 = waits[int(0.95 * (len(waits) - 1))] if waits else 0.0
        return EngineLoad(
            workers=self.workers,
            busy=busy,
            pending_finals=sum(not Priority(e.priority).background for e in live),
            pending_partials=sum(e.priority == Priority.PARTIAL for e in live),
            pending_batch=sum(e.priority == Priority.BATCH for e in live),
            utilisation=min(1.0, busy_time / (window_s * self.workers)),
            final_utilisation=min(1.0, final_time / (window_s * self.workers)),
            final_wait_p95=p95,
            final_decode_s=decodes[len(decodes) // 2] if decodes else 0.0,
        )

    def close(self, wait: bool = True) -> None:
        """Stop taking jobs; queued jobs still run; workers exit when drained."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join()


def _speaker_encoder() -> VoiceEncoder:
    """Resemblyzer's encoder on ONNX Runtime, one thread a call (measured: 18 ms
    for 2 windows against 71 ms in numpy, whose Python loop also holds the GIL).
    numpy's BLAS (the mel features) goes to one thread as well: its default
    of one per core spent twice the CPU for the same time beside CTranslate2."""
    from threadpoolctl import threadpool_limits

    from speakers.onnx_encoder import OnnxVoiceEncoder  # reads 17 MB of weights: only when diarizing

    threadpool_limits(limits=1, user_api="blas")
    return OnnxVoiceEncoder(threads=1)


def embed_spans(encoder: VoiceEncoder, job: EmbedJob) -> VoiceWindows:
    """The windows of each span, in seconds from the start of the job's audio."""
    parts = []
    for start, end in job.spans:
        if end > start:
            embeddings, centres = encoder.embed_windows(job.audio[start:end])
            parts.append(VoiceWindows(embeddings, centres + start / SAMPLE_RATE))
    return VoiceWindows.join(parts)
